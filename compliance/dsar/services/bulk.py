"""Bulk erasure: many approved erasure requests of one region in one job, set-based.

``requests_erase_bulk(region=, request_ids=, actor=)`` erases the requests in batches of
``batch_size`` (default 500). Each batch is ONE transaction of the region database (consent
events and memberships deleted through ``compliance_erase_rows``, which checks the requests) and
costs a constant number of statements, whatever the number of
subjects in it:

1. lock the batch's requests; keep those in ``processing``, of type erasure and not started by
   the per-request job (``erasure_subjects`` empty: that job owns them); others are skipped
   (a finished request is skipped: running a batch again does nothing);
2. reach every subject (the person plus the subjects merged into it, one query per merge
   level); requests under an active legal hold are rejected with its reason;
3. close every active segment membership (``segments.services.exits``, reason ``erasure``, one
   ``MEMBERSHIP_EXITED`` per stay), add every identifier's blind index to ``Suppression``,
   delete each registered model's rows with one statement per table
   (``subject = ANY(...)``; on PostgreSQL ``DELETE ... RETURNING`` counts rows per subject),
   destroy the subject keys and append them to the ``DestroyedKey`` ledger, strip the subject
   from privacy requests, sweep (rows that arrived meanwhile are deleted again, up to 3
   rounds), then remove the control-directory rows;
4. write ALL the batch's audit events in ONE ``audit_append`` call: the membership exits,
   ``SUPPRESSION_ADDED`` per identifier, ``SUBJECT_KEY_DESTROYED`` and ``SUBJECT_ERASED`` per
   subject, ``ERASURE_RECEIPT_ISSUED`` and ``REQUEST_STATUS_CHANGED`` per request; THEN (the
   change feed's lock order: audit head, then outbox) one *erasure notice* per closed stay in
   the feed's outbox (``retract``, reason ``erasure``: random subject id and segment key), which
   erasure keeps (registry ``retained``) so webhooks and pull consumers learn of the erasure
   (GDPR Art. 17(2)/19); then sign one receipt per request (Ed25519, same format as the
   per-request job plus ``"mode": "bulk"``, with ``retained``: the notices kept and why) and
   move every request to ``completed`` (one ``UPDATE``).

**Resumable and idempotent**: the batch's requests become ``completed`` in the transaction
that erased them, so the committed statuses are the progress record. A worker killed mid-batch
loses only that batch's uncommitted transaction; running the job again (Celery redelivers it)
skips the finished batches' requests and redoes the interrupted one. Nothing is audited twice.

Quirks: the control-directory rows are deleted in the control database's own transaction,
committed just before the region's: if the process dies between the two commits, the region
rolls back and the rerun reports ``directory_rows_removed`` 0 for that batch (the rows are gone
either way; the sweep proves it). Two requests of one batch for the same person: the first one
carries the counts, the second's receipt says ``subjects: 0``. A person with a very large
amount of data makes a big transaction: use the per-request job (step by step) for them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from uuid import UUID

from django.apps import apps
from django.db import connections, transaction
from django.db.models import Count
from django.utils import timezone

from compliance.audit.codes import AuditCode
from compliance.audit.services.append import Actor, AuditEntry, audit_append
from compliance.db_guards import erase_rows, is_guarded
from compliance.dsar.models import DestroyedKey, PrivacyRequest, RequestType, Status
from compliance.dsar.services.erasure import ErasureIncompleteError, erasure_counts
from compliance.dsar.services.receipts import receipt_body, receipt_sign
from compliance.dsar.services.suppression import suppressions_add
from compliance.dsar.services.transitions import request_entry, request_transition, status_payload
from compliance.models import Subject, SubjectDirectory, SubjectKey
from compliance.personal_data import PersonalDataModel, personal_data_models
from compliance.regions import region_alias

BULK_BATCH = 500
SWEEP_ROUNDS = 3
SYSTEM = Actor.system("erasure")


@dataclass
class BulkErasureResult:
    """Request ids (as strings) completed, rejected (-> reason) and skipped (-> why)."""

    completed: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    batches: int = 0


def requests_erase_pending(*, region: str, limit: int = 10_000) -> list[str]:
    """Approved erasure requests (``processing``) that no job has started yet, oldest first."""
    rows = (
        PrivacyRequest.objects.using(region_alias(region=region))
        .filter(type=RequestType.ERASURE, status=Status.PROCESSING)
        .order_by("received_at")
        .values_list("id", "erasure_subjects")
    )
    return [str(pk) for pk, planned in rows[:limit] if not planned]


def requests_erase_bulk(
    *,
    region: str,
    request_ids: Sequence[UUID | str],
    actor: Actor = SYSTEM,
    batch_size: int = BULK_BATCH,
) -> BulkErasureResult:
    """Erase the given approved erasure requests, ``batch_size`` per transaction (see the
    module docstring). Idempotent; returns what happened to each request."""
    alias = region_alias(region=region)
    ids = list(dict.fromkeys(UUID(str(r)) for r in request_ids))
    result = BulkErasureResult()
    for start in range(0, len(ids), batch_size):
        _Batch(alias=alias, actor=actor, result=result).run(ids[start : start + batch_size])
        result.batches += 1
    return result


def _column(entry: PersonalDataModel) -> str:
    return entry.model._meta.get_field(entry.subject_field).column


class _Batch:
    def __init__(self, *, alias: str, actor: Actor, result: BulkErasureResult) -> None:
        self.alias = alias
        self.actor = actor
        self.result = result
        self.entries: list[AuditEntry] = []
        #: subject id -> (audit token, request id that owns it in this batch)
        self.subjects: dict[UUID, tuple[str, UUID]] = {}
        #: request id -> Counter of table label -> rows
        self.tables: dict[UUID, Counter] = defaultdict(Counter)
        self.extra: dict[UUID, Counter] = defaultdict(Counter)
        #: the stays closed by this batch (segments.services.exits.ClosedStays), or None
        self.closed = None

    # --- the batch -------------------------------------------------------------------------

    def run(self, request_ids: list[UUID]) -> None:
        alias = self.alias
        with transaction.atomic(using=alias):
            requests = self._eligible(request_ids)
            if not requests:
                return
            self._reach(requests)
            requests = self._reject_held(requests)
            if not requests:
                return
            now = timezone.now()
            ids = list(self.subjects)
            self._exit_memberships(ids, now)
            self._suppress(ids)
            self._delete_all(ids)
            sweep = self._sweep(ids)
            directory_left = self._directory(ids)
            self._complete(requests, now, sweep, directory_left)

    def _eligible(self, request_ids: list[UUID]) -> list[PrivacyRequest]:
        found = {
            r.pk: r
            for r in PrivacyRequest.objects.using(self.alias)
            .select_for_update()
            .filter(pk__in=request_ids)
        }
        eligible = []
        for pk in request_ids:
            request = found.get(pk)
            why = None
            if request is None:
                why = "unknown request"
            elif request.type != RequestType.ERASURE:
                why = f"not an erasure ({request.type})"
            elif request.status != Status.PROCESSING:
                why = f"status {request.status}"
            elif request.erasure_subjects:
                why = "started by the per-request job"
            if why:
                self.result.skipped[str(pk)] = why
            else:
                eligible.append(request)
        return eligible

    def _reach(self, requests: list[PrivacyRequest]) -> None:
        """Subjects of each request: the person and, transitively, subjects merged into it."""
        owner: dict[UUID, UUID] = {}
        for request in requests:
            if request.subject_id is not None:
                owner.setdefault(request.subject_id, request.pk)
        frontier = list(
            Subject.objects.using(self.alias)
            .filter(pk__in=list(owner))
            .values_list("id", "audit_token", "merged_into")
        )
        while frontier:
            for sid, token, _ in frontier:
                if sid not in self.subjects:
                    self.subjects[sid] = (token, owner[sid])
            children = list(
                Subject.objects.using(self.alias)
                .filter(merged_into__in=[sid for sid, _, _ in frontier])
                .values_list("id", "audit_token", "merged_into")
            )
            frontier = []
            for sid, token, parent in children:
                if sid not in self.subjects:
                    owner[sid] = owner[parent]
                    frontier.append((sid, token, parent))

    def _reject_held(self, requests: list[PrivacyRequest]) -> list[PrivacyRequest]:
        from compliance.dsar.models import LegalHold

        holds: dict[UUID, str] = {}
        for sid, reason in (
            LegalHold.objects.using(self.alias)
            .filter(subject_id__in=list(self.subjects), active=True)
            .order_by("-created_at")
            .values_list("subject_id", "reason")
        ):
            holds[sid] = reason  # the oldest hold wins (last written)
        if not holds:
            return requests
        held = {self.subjects[sid][1]: reason for sid, reason in holds.items()}
        kept = []
        for request in requests:
            if request.pk in held:
                request_transition(
                    request=request,
                    to=Status.REJECTED,
                    actor=self.actor,
                    reason=f"legal hold: {held[request.pk]}",
                )
                self.result.rejected[str(request.pk)] = f"legal hold: {held[request.pk]}"
            else:
                kept.append(request)
        self.subjects = {s: v for s, v in self.subjects.items() if v[1] not in held}
        return kept

    # --- the steps -------------------------------------------------------------------------

    def _exit_memberships(self, ids: list[UUID], now) -> None:
        if not apps.is_installed("segments"):
            return
        from segments.services.exits import memberships_close

        tokens = {sid: token for sid, (token, _) in self.subjects.items()}
        self.closed = memberships_close(
            alias=self.alias,
            subject_ids=ids,
            reason="erasure",
            actor=self.actor,
            at=now,
            tokens=tokens,
        )
        for _, sid, _ in self.closed.stays:
            self.extra[self.subjects[sid][1]]["memberships_exited"] += 1
        self.entries.extend(self.closed.entries)

    def _publish_exits(self) -> None:
        """The erasure notices of the closed stays, in the outbox; after the audit append."""
        if self.closed is not None and self.closed.stays:
            from segments.services.exits import memberships_closed_publish

            memberships_closed_publish(alias=self.alias, closed=self.closed)

    def _suppress(self, ids: list[UUID]) -> None:
        added = suppressions_add(
            alias=self.alias,
            subject_ids=ids,
            request_of={sid: self.subjects[sid][1] for sid in ids},
        )
        for kind, sid in added:
            token, owner = self.subjects[sid]
            self.extra[owner]["identifiers_suppressed"] += 1
            self.entries.append(
                AuditEntry(
                    code=AuditCode.SUPPRESSION_ADDED,
                    actor=self.actor,
                    subject_token=token,
                    object_type="privacy_request",
                    object_id=str(owner),
                    payload={"identifier_type": kind, "reason": "erasure"},
                )
            )

    def _delete_all(self, ids: list[UUID]) -> None:
        for entry in personal_data_models():
            if entry.model is PrivacyRequest:
                self._anonymise(ids)
            elif entry.model is SubjectKey:
                self._destroy_keys(ids, entry)
            else:
                self._count(entry, self._delete(entry, ids))

    def _count(self, entry: PersonalDataModel, per_subject: dict[UUID, int]) -> None:
        for sid, rows in per_subject.items():
            owner = self.subjects[sid][1]
            self.tables[owner][entry.label] += rows

    def _delete(self, entry: PersonalDataModel, ids: list[UUID]) -> dict[UUID, int]:
        """Delete ``entry``'s rows of ``ids`` (but its ``retained`` ones) in one statement;
        rows per subject."""
        connection = connections[self.alias]
        table, column = entry.model._meta.db_table, _column(entry)
        if connection.vendor == "postgresql" and is_guarded(entry.model):
            owners = {owner for _, owner in self.subjects.values()}
            return erase_rows(using=self.alias, table=table, subject_ids=ids, request_ids=owners)
        if connection.vendor == "postgresql":
            keep, keep_params = _retained_sql(entry, connection)
            with connection.cursor() as cursor:
                cursor.execute(
                    f"WITH d AS (DELETE FROM {table} WHERE {column} = ANY(%s::uuid[]){keep} "
                    f"RETURNING {column}) SELECT {column}, count(*) FROM d GROUP BY {column}",
                    [ids, *keep_params],
                )
                return {
                    sid if isinstance(sid, UUID) else UUID(str(sid)): n
                    for sid, n in cursor.fetchall()
                }
        qs = entry.erasable(using=self.alias, subject_ids=ids)
        counts = dict(
            qs.order_by()
            .values_list(entry.subject_field)
            .annotate(n=Count("pk"))
            .values_list(entry.subject_field, "n")
        )
        if counts:
            qs._raw_delete(self.alias)
        return counts

    def _destroy_keys(self, ids: list[UUID], entry: PersonalDataModel) -> None:
        destroyed = self._delete(entry, ids)
        self._count(entry, destroyed)
        now = timezone.now()
        DestroyedKey.objects.using(self.alias).bulk_create(
            [
                DestroyedKey(subject_id=sid, destroyed_at=now, request_id=owner)
                for sid, (_, owner) in self.subjects.items()
            ],
            ignore_conflicts=True,
        )
        for sid in ids:
            if destroyed.get(sid):
                token, owner = self.subjects[sid]
                self.entries.append(
                    AuditEntry(
                        code=AuditCode.SUBJECT_KEY_DESTROYED,
                        actor=self.actor,
                        subject_token=token,
                        object_type="subject_key",
                        object_id=str(owner),
                        payload={"reason": "erasure"},
                    )
                )

    def _anonymise(self, ids: list[UUID]) -> None:
        qs = PrivacyRequest.objects.using(self.alias).filter(subject_id__in=ids)
        counts = dict(
            qs.order_by()
            .values_list("subject_id")
            .annotate(n=Count("pk"))
            .values_list("subject_id", "n")
        )
        qs.update(subject_id=None, identifier_indexes=[])
        self._count(_entry_of(PrivacyRequest), counts)

    def _sweep(self, ids: list[UUID]) -> dict[str, int]:
        """Count what is left; delete rows that arrived meanwhile again (bounded rounds)."""
        for _round in range(SWEEP_ROUNDS):
            counts = erasure_counts(alias=self.alias, subject_ids=ids)
            left = [label for label, n in counts.items() if n]
            if not left:
                return counts
            for entry in personal_data_models():
                if entry.label not in left:
                    continue
                if entry.model is PrivacyRequest:
                    self._anonymise(ids)
                else:
                    self._count(entry, self._delete(entry, ids))
        raise ErasureIncompleteError(f"rows left after {SWEEP_ROUNDS} sweeps: {sorted(left)}")

    def _directory(self, ids: list[UUID]) -> int:
        """Control-database rows: counted per subject, deleted, committed (see quirks)."""
        with transaction.atomic(using="default"):
            qs = SubjectDirectory.objects.filter(subject_id__in=ids)
            counts = dict(
                qs.order_by()
                .values_list("subject_id")
                .annotate(n=Count("pk"))
                .values_list("subject_id", "n")
            )
            qs.delete()
            left = SubjectDirectory.objects.filter(subject_id__in=ids).count()
        for sid, n in counts.items():
            self.extra[self.subjects[sid][1]]["directory_rows_removed"] += n
        return left

    def _complete(self, requests, now, sweep: dict[str, int], directory_left: int) -> None:
        if any(sweep.values()) or directory_left:
            raise ErasureIncompleteError("the sweep found rows of the subjects")
        labels = [e.label for e in personal_data_models()]
        by_owner: dict[UUID, list[str]] = defaultdict(list)
        subject_ids: dict[UUID, list[UUID]] = defaultdict(list)
        for sid, (token, owner) in self.subjects.items():
            by_owner[owner].append(token)
            subject_ids[owner].append(sid)
        receipts = {}
        for request in requests:
            tokens = by_owner.get(request.pk, [])
            extra = self.extra[request.pk]
            receipt = receipts[request.pk] = receipt_body(
                request=request,
                now=now,
                subjects=len(tokens),
                tables={label: self.tables[request.pk][label] for label in labels},
                memberships_exited=extra["memberships_exited"],
                identifiers_suppressed=extra["identifiers_suppressed"],
                directory_rows_removed=extra["directory_rows_removed"],
                sweep={**sweep, "compliance.SubjectDirectory": directory_left},
                retained={},
                mode="bulk",
            )
            self.entries.extend(
                request_entry(
                    request=request,
                    code=AuditCode.SUBJECT_ERASED,
                    actor=self.actor,
                    subject_token=token,
                    payload={"request_type": request.type, "regulation": request.regulation},
                )
                for token in tokens
            )
            self.entries.append(
                request_entry(
                    request=request,
                    code=AuditCode.ERASURE_RECEIPT_ISSUED,
                    actor=self.actor,
                    payload={"receipt_id": receipt["receipt_id"], "subjects": len(tokens)},
                )
            )
            self.entries.append(
                request_entry(
                    request=request,
                    code=AuditCode.REQUEST_STATUS_CHANGED,
                    actor=self.actor,
                    payload=status_payload(
                        request=request, from_status=request.status, to_status=Status.COMPLETED
                    ),
                )
            )
        audit_append(using=self.alias, entries=self.entries, at=now)
        self._publish_exits()  # after the audit append: the feed's lock order
        retained = self._retained(requests)
        for request in requests:
            receipt = receipts[request.pk]
            receipt["retained"] = retained[request.pk]
            request.status = Status.COMPLETED
            request.receipt = receipt
            request.receipt_signature = receipt_sign(receipt)
            request.result_counts = receipt["tables"]
            request.erasure_subjects = [{"id": str(sid)} for sid in subject_ids[request.pk]]
        _save_completed(alias=self.alias, requests=requests, now=now)
        self._callbacks(requests)
        self.result.completed.extend(str(r.pk) for r in requests)

    def _retained(self, requests: list[PrivacyRequest]) -> dict[UUID, dict[str, dict]]:
        """Per request: rows kept on purpose (registry ``retained``), ``{label: {"rows",
        "why"}}``; one grouped query per model that retains rows."""
        kept: dict[UUID, dict[str, dict]] = {r.pk: {} for r in requests}
        for entry in personal_data_models():
            if not entry.retained:
                continue
            counts = dict(
                entry.kept(using=self.alias, subject_ids=list(self.subjects))
                .order_by()
                .values_list(entry.subject_field)
                .annotate(n=Count("pk"))
                .values_list(entry.subject_field, "n")
            )
            per_owner: Counter = Counter()
            for sid, n in counts.items():
                per_owner[self.subjects[_as_uuid(sid)][1]] += n
            for owner in kept:
                kept[owner][entry.label] = {"rows": per_owner[owner], "why": entry.retained_why}
        return kept

    def _callbacks(self, requests: list[PrivacyRequest]) -> None:
        wanted = [r for r in requests if r.callback_url and r.client_id]
        if not wanted:
            return
        from compliance.dsar.tasks import callback_send
        from compliance.tasking import enqueue_on_commit

        for request in wanted:
            enqueue_on_commit(
                callback_send,
                region=request.region,
                request_id=str(request.pk),
                status=Status.COMPLETED,
            )


def _save_completed(*, alias: str, requests: list[PrivacyRequest], now) -> None:
    """Write the completed requests with ONE ``UPDATE ... FROM (VALUES ...)``: the columns
    every request shares are constants, the receipt, signature, counts and subjects travel as
    rows (Django's ``bulk_update`` builds a ``CASE`` per column and row: seconds per 500)."""
    connection = connections[alias]
    meta = PrivacyRequest._meta

    def prep(name: str, value):
        return meta.get_field(name).get_db_prep_save(value, connection)

    pg = connection.vendor == "postgresql"
    row = "(%s::uuid, %s::jsonb, %s, %s::jsonb, %s::jsonb)" if pg else "(%s, %s, %s, %s, %s)"
    params = [
        prep("status", Status.COMPLETED),
        prep("completed_at", now),
        prep("heartbeat_at", now),
        prep("updated_at", now),
        prep("identifier_indexes", []),
    ]
    for request in requests:
        params.extend(
            [
                prep("id", request.pk),
                prep("receipt", request.receipt),
                request.receipt_signature,
                prep("result_counts", request.result_counts),
                prep("erasure_subjects", request.erasure_subjects),
            ]
        )
    table = meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET status = %s, completed_at = %s, heartbeat_at = %s, "
            "updated_at = %s, identifier_indexes = %s, subject_id = NULL, subject_token = '', "
            "progress_done = 1, progress_total = 1, receipt = v.column2, "
            "receipt_signature = v.column3, result_counts = v.column4, "
            f"erasure_subjects = v.column5 FROM (VALUES {', '.join([row] * len(requests))}) AS v "
            f"WHERE {table}.id = v.column1",
            params,
        )
        if cursor.rowcount != len(requests):
            raise ErasureIncompleteError("not every request of the batch could be completed")
    for request in requests:
        request.progress_done = request.progress_total = 1
        request.completed_at = request.heartbeat_at = request.updated_at = now
        request.subject_id = None
        request.identifier_indexes = []
        request.subject_token = ""


def _as_uuid(value) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def _retained_sql(entry: PersonalDataModel, connection) -> tuple[str, list]:
    """``AND NOT (col IS NOT DISTINCT FROM %s AND ...)`` keeping ``entry``'s retained rows."""
    if not entry.retained:
        return "", []
    meta = entry.model._meta
    clauses, params = [], []
    for name, value in entry.retained.items():
        field = meta.get_field(name)
        clauses.append(f"{connection.ops.quote_name(field.column)} IS NOT DISTINCT FROM %s")
        params.append(field.get_db_prep_value(value, connection))
    return f" AND NOT ({' AND '.join(clauses)})", params


def _entry_of(model) -> PersonalDataModel:
    return next(e for e in personal_data_models() if e.model is model)
