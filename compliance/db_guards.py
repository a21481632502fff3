"""Database-level guards on PostgreSQL, and the only ways through them.

Two roles per database (see ``docs/audit.md``, "Who can change history"): the **owner** runs
migrations and owns every table and function; the **runtime role** (``db_roles``) that the web
and the workers connect as may read, and insert where the application needs to, but holds no
UPDATE, DELETE or TRUNCATE on audit entries, checkpoints, the chain head, consent events and
memberships, and no INSERT on the chain head. The legitimate privileged writes go through
``SECURITY DEFINER`` functions owned by the owner, each checking its own preconditions:

================================  ============================================================
function                          precondition
================================  ============================================================
``audit_head_lock``               none (creates the head at genesis, locks it)
``audit_head_advance``            moves forward only, over entries that exist, to the hash of
                                  the entry at the new size; clears the membership changes of
                                  the transaction that these entries audit
``audit_prune``                   a checkpoint row at exactly that size matching the entry's
                                  hash, every pruned entry older than the minimum age
``compliance_erase_rows``         each subject belongs to an erasure request in ``processing``
                                  or is in the destroyed-keys ledger (backup-restore replay)
``compliance_retention_delete``   memberships: exited stays only; both tables: older than the
                                  retention floor
``segments_stays_close``          a known exit reason; closes open stays only
================================  ============================================================

The triggers on the protected tables let a write through only while one of these functions
holds a **permit**: a row for the current transaction in ``compliance_guard_permit``, a table
only the owner can write, inserted and removed by the function itself. Nothing a session can
set (``set_config``, ``SET LOCAL``) opens a guard. Every membership row inserted or closed in a
transaction must be audited (an entry with its ``membership_id``) before the transaction
commits, or the commit fails (a deferred constraint trigger).

SQLite (embedded default) has neither roles nor triggers: the services are the only writers
and ``audit_verify`` finds changes made behind their back; the functions below fall back to
the ORM there.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from django.db import connections

from compliance.audit.codes import AuditCode

PERMIT_TABLE = "compliance_guard_permit"
SETTING_TABLE = "compliance_guard_setting"
MEMBERSHIP_TABLE = "segments_segmentmembership"
CONSENT_EVENT_TABLE = "consent_consentevent"
#: tables a runtime role may insert into but never change (no UPDATE, DELETE, TRUNCATE)
APPEND_ONLY_TABLES = (
    "audit_auditevent",
    "audit_auditcheckpoint",
    CONSENT_EVENT_TABLE,
    MEMBERSHIP_TABLE,
    "dsar_destroyedkey",
)
#: tables a runtime role may only read
READ_ONLY_TABLES = ("audit_auditchainhead", "django_migrations", SETTING_TABLE)
#: owner-only bookkeeping of the guards (no privilege at all for the runtime role)
PRIVATE_TABLES = (PERMIT_TABLE, "compliance_membership_pending", "compliance_membership_txcheck")
#: ``SECURITY DEFINER`` functions the runtime role may execute, with their argument types
DEFINER_FUNCTIONS = (
    "audit_head_lock(text)",
    "audit_head_advance(text, bigint, text)",
    "audit_prune(text, bigint, integer)",
    "compliance_erase_rows(text, uuid[], uuid[], bigint[])",
    "compliance_retention_delete(text, bigint[])",
    "segments_stays_close(uuid[], text, bigint[], timestamptz, text)",
)
#: tables ``compliance_erase_rows`` and ``compliance_retention_delete`` may delete from
ERASABLE = {CONSENT_EVENT_TABLE: "subject_id", MEMBERSHIP_TABLE: "subject_id"}


def is_postgresql(using: str) -> bool:
    return connections[using].vendor == "postgresql"


def postgresql_only(sql: str):
    """A ``RunPython`` function running ``sql`` on PostgreSQL aliases only (the guards' triggers
    do not exist on SQLite)."""

    def run(apps, schema_editor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, None)

    return run


def definer(schema: str) -> str:
    """The clause every guard function carries: owner's rights, a search path no caller can
    hijack (``pg_temp`` last)."""
    return f"SECURITY DEFINER SET search_path = {schema}, pg_temp"


def schema_of(connection) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        return connection.ops.quote_name(cursor.fetchone()[0])


# --- SQL installed by migrations ------------------------------------------------------------

PERMIT_SQL = f"""
CREATE TABLE IF NOT EXISTS {PERMIT_TABLE} (
    txid xid8 NOT NULL, path text NOT NULL, PRIMARY KEY (txid, path));
CREATE TABLE IF NOT EXISTS {SETTING_TABLE} (key text PRIMARY KEY, value text NOT NULL);
CREATE UNLOGGED TABLE IF NOT EXISTS compliance_membership_pending (
    txid xid8 NOT NULL, membership_id bigint NOT NULL, code integer NOT NULL);
CREATE INDEX IF NOT EXISTS compliance_membership_pending_tx
    ON compliance_membership_pending (txid);
CREATE TABLE IF NOT EXISTS compliance_membership_txcheck (txid xid8 PRIMARY KEY);

CREATE OR REPLACE FUNCTION compliance_permit_open(p_path text) RETURNS void LANGUAGE sql AS $$
    INSERT INTO {PERMIT_TABLE} VALUES (pg_current_xact_id(), p_path) ON CONFLICT DO NOTHING
$$;
CREATE OR REPLACE FUNCTION compliance_permit_close(p_path text) RETURNS void LANGUAGE sql AS $$
    DELETE FROM {PERMIT_TABLE} WHERE txid = pg_current_xact_id() AND path = p_path
$$;
CREATE OR REPLACE FUNCTION compliance_permit_held(p_path text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM {PERMIT_TABLE}
                   WHERE txid = pg_current_xact_id() AND path = p_path)
$$;
CREATE OR REPLACE FUNCTION compliance_guard_setting_int(p_key text, p_default integer)
RETURNS integer LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT value::integer FROM {SETTING_TABLE} WHERE key = p_key), p_default)
$$;
REVOKE ALL ON FUNCTION compliance_permit_open(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION compliance_permit_close(text) FROM PUBLIC;
"""


def head_functions_sql(*, schema: str, genesis: str) -> str:
    """``audit_head_lock`` and ``audit_head_advance`` (every database)."""
    entered, exited = int(AuditCode.MEMBERSHIP_ENTERED), int(AuditCode.MEMBERSHIP_EXITED)
    return f"""
CREATE OR REPLACE FUNCTION audit_head_lock(p_chain text)
RETURNS TABLE (head_size bigint, head_value text) LANGUAGE plpgsql {definer(schema)} AS $$
BEGIN
    INSERT INTO audit_auditchainhead (chain_id, size, head_hash)
    VALUES (p_chain, 0, '{genesis}') ON CONFLICT DO NOTHING;
    RETURN QUERY SELECT h.size, h.head_hash::text FROM audit_auditchainhead h
        WHERE h.chain_id = p_chain FOR UPDATE;
END;
$$;

CREATE OR REPLACE FUNCTION audit_head_advance(p_chain text, p_size bigint, p_hash text)
RETURNS void LANGUAGE plpgsql {definer(schema)}
-- the pending table has no statistics inside the transaction that filled it: never a nested
-- loop over it (100,000 stays would mean 10^10 probes), hash the entries instead
SET enable_nestloop = off AS $$
DECLARE
    old_size bigint;
    present bigint;
    last_hash text;
BEGIN
    SELECT h.size INTO old_size FROM audit_auditchainhead h
        WHERE h.chain_id = p_chain FOR UPDATE;
    IF old_size IS NULL THEN
        RAISE EXCEPTION 'audit chain % has no head (call audit_head_lock first)', p_chain
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_size <= old_size THEN
        RAISE EXCEPTION 'the audit chain head only moves forward (% -> % refused)', old_size, p_size
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT count(*), max(CASE WHEN e.seq = p_size THEN e.hash END)
        INTO present, last_hash
        FROM audit_auditevent e WHERE e.seq > old_size AND e.seq <= p_size;
    IF present <> p_size - old_size OR last_hash IS DISTINCT FROM p_hash THEN
        RAISE EXCEPTION 'audit chain head % refused: entries % to % are not all there with that hash',
            p_size, old_size + 1, p_size USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF EXISTS (SELECT 1 FROM compliance_membership_pending WHERE txid = pg_current_xact_id()) THEN
        WITH covered AS MATERIALIZED (
            SELECT e.code, e.payload ->> 'membership_id' AS membership_id
            FROM audit_auditevent e
            WHERE e.seq > old_size AND e.seq <= p_size AND e.code IN ({entered}, {exited})
        )
        DELETE FROM compliance_membership_pending p USING covered c
            WHERE p.txid = pg_current_xact_id() AND p.membership_id::text = c.membership_id
              AND p.code = c.code;
    END IF;
    PERFORM compliance_permit_open('audit_head');
    UPDATE audit_auditchainhead SET size = p_size, head_hash = p_hash WHERE chain_id = p_chain;
    PERFORM compliance_permit_close('audit_head');
END;
$$;

CREATE OR REPLACE FUNCTION audit_prune(p_chain text, p_through bigint, p_min_days integer)
RETURNS bigint LANGUAGE plpgsql {definer(schema)} AS $$
DECLARE
    min_days integer := greatest(p_min_days, compliance_guard_setting_int('audit_min_days', 0));
    removed bigint;
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM audit_auditcheckpoint c JOIN audit_auditevent e
            ON e.seq = c.size AND e.hash = c.head_hash
        WHERE c.chain_id = p_chain AND c.size = p_through
    ) THEN
        RAISE EXCEPTION 'audit prune through % refused: no checkpoint at that entry', p_through
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF EXISTS (SELECT 1 FROM audit_auditevent WHERE seq <= p_through
               AND occurred_at >= now() - make_interval(days => min_days)) THEN
        RAISE EXCEPTION 'audit prune through % refused: entries younger than % days', p_through,
            min_days USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM compliance_permit_open('audit_prune');
    DELETE FROM audit_auditevent WHERE seq <= p_through;
    GET DIAGNOSTICS removed = ROW_COUNT;
    PERFORM compliance_permit_close('audit_prune');
    RETURN removed;
END;
$$;
"""


def audit_trigger_function_sql(*, schema: str) -> str:
    """The trigger function on the audit tables: refuses every change but the ones a guard
    function holds a permit for (and TRUNCATE in test databases, an owner-only setting)."""
    return f"""
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger
LANGUAGE plpgsql {definer(schema)} AS $$
BEGIN
    IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'audit_auditevent'
       AND compliance_permit_held('audit_prune') THEN
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'audit_auditchainhead'
       AND compliance_permit_held('audit_head') THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'TRUNCATE' AND EXISTS (
        SELECT 1 FROM {SETTING_TABLE} WHERE key = 'test_database_truncate' AND value = 'on') THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION USING
        MESSAGE = 'audit log is append-only: ' || TG_OP || ' on ' || TG_TABLE_NAME || ' refused',
        ERRCODE = 'insufficient_privilege';
END;
$$;
"""


def regional_sql(*, schema: str) -> str:
    """Triggers and guard functions of the regional tables (consent events, memberships)."""
    entered, exited = int(AuditCode.MEMBERSHIP_ENTERED), int(AuditCode.MEMBERSHIP_EXITED)
    from segments.models import ExitReason  # noqa: PLC0415 - migration-time only, avoids a cycle

    reasons = ", ".join(f"'{value}'" for value in ExitReason.values)
    return f"""
CREATE OR REPLACE FUNCTION consent_event_guard() RETURNS trigger
LANGUAGE plpgsql {definer(schema)} AS $$
BEGIN
    IF compliance_permit_held('delete') THEN
        IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    END IF;
    RAISE EXCEPTION 'consent_consentevent is append-only: % refused (only erasure or retention '
        'may remove consent events)', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
DROP TRIGGER IF EXISTS consent_event_append_only ON {CONSENT_EVENT_TABLE};
CREATE TRIGGER consent_event_append_only BEFORE UPDATE OR DELETE ON {CONSENT_EVENT_TABLE}
    FOR EACH ROW EXECUTE FUNCTION consent_event_guard();

CREATE OR REPLACE FUNCTION segments_membership_guard() RETURNS trigger
LANGUAGE plpgsql {definer(schema)} AS $$
BEGIN
    IF (TG_OP = 'DELETE' AND compliance_permit_held('delete'))
       OR (TG_OP = 'UPDATE' AND compliance_permit_held('stays_close')) THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'segment memberships change only through the membership service (% refused)',
        TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
DROP TRIGGER IF EXISTS segments_membership_guard ON {MEMBERSHIP_TABLE};
CREATE TRIGGER segments_membership_guard BEFORE UPDATE OR DELETE ON {MEMBERSHIP_TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION segments_membership_guard();

-- every inserted stay must be open and audited before commit
CREATE OR REPLACE FUNCTION segments_membership_inserted() RETURNS trigger
LANGUAGE plpgsql {definer(schema)} AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows WHERE exited_at IS NOT NULL OR exited_reason <> '') THEN
        RAISE EXCEPTION 'a new segment membership must be an open stay'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    INSERT INTO compliance_membership_pending
        SELECT pg_current_xact_id(), id, {entered} FROM new_rows;
    INSERT INTO compliance_membership_txcheck VALUES (pg_current_xact_id())
        ON CONFLICT DO NOTHING;
    RETURN NULL;
END;
$$;
DROP TRIGGER IF EXISTS segments_membership_inserted ON {MEMBERSHIP_TABLE};
CREATE TRIGGER segments_membership_inserted AFTER INSERT ON {MEMBERSHIP_TABLE}
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION segments_membership_inserted();

CREATE OR REPLACE FUNCTION compliance_membership_audited() RETURNS trigger
LANGUAGE plpgsql {definer(schema)} AS $$
DECLARE
    missing bigint;
BEGIN
    SELECT membership_id INTO missing FROM compliance_membership_pending
        WHERE txid = NEW.txid LIMIT 1;
    DELETE FROM compliance_membership_txcheck WHERE txid = NEW.txid;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'segment membership % changed without its audit entry: commit refused',
            missing USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END;
$$;
DROP TRIGGER IF EXISTS compliance_membership_audited ON compliance_membership_txcheck;
CREATE CONSTRAINT TRIGGER compliance_membership_audited
    AFTER INSERT ON compliance_membership_txcheck DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION compliance_membership_audited();

CREATE OR REPLACE FUNCTION segments_stays_close(
    p_subjects uuid[], p_segment text, p_ids bigint[], p_at timestamptz, p_reason text)
RETURNS TABLE (stay_id bigint, stay_subject uuid, stay_segment text)
LANGUAGE plpgsql {definer(schema)} AS $$
DECLARE
    conditions text := 'm.exited_at IS NULL';
BEGIN
    IF p_reason IS NULL OR p_reason NOT IN ({reasons}) THEN
        RAISE EXCEPTION 'unknown exit reason %', p_reason USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_subjects IS NULL AND p_ids IS NULL THEN
        RAISE EXCEPTION 'segments_stays_close needs subjects or stay ids'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_subjects IS NOT NULL THEN conditions := conditions || ' AND m.subject_id = ANY($1)'; END IF;
    IF p_segment IS NOT NULL THEN conditions := conditions || ' AND m.segment_key = $2'; END IF;
    IF p_ids IS NOT NULL THEN conditions := conditions || ' AND m.id = ANY($3)'; END IF;
    PERFORM compliance_permit_open('stays_close');
    RETURN QUERY EXECUTE format(
        'WITH locked AS (SELECT m.id FROM {MEMBERSHIP_TABLE} m WHERE %s ORDER BY m.id FOR UPDATE), '
        'closed AS (UPDATE {MEMBERSHIP_TABLE} m SET exited_at = $4, exited_reason = $5 '
        '  FROM locked WHERE m.id = locked.id RETURNING m.id, m.subject_id, m.segment_key), '
        'pending AS (INSERT INTO compliance_membership_pending '
        '  SELECT pg_current_xact_id(), id, {exited} FROM closed) '
        'SELECT id, subject_id, segment_key::text FROM closed ORDER BY id', conditions)
        USING p_subjects, p_segment, p_ids, p_at, p_reason;
    INSERT INTO compliance_membership_txcheck VALUES (pg_current_xact_id())
        ON CONFLICT DO NOTHING;
    PERFORM compliance_permit_close('stays_close');
END;
$$;

CREATE OR REPLACE FUNCTION compliance_erase_rows(
    p_table text, p_subjects uuid[], p_requests uuid[], p_ids bigint[] DEFAULT NULL)
RETURNS TABLE (row_subject uuid, removed bigint)
LANGUAGE plpgsql {definer(schema)} AS $$
DECLARE
    stray uuid;
BEGIN
    IF p_table NOT IN ('{CONSENT_EVENT_TABLE}', '{MEMBERSHIP_TABLE}') THEN
        RAISE EXCEPTION 'compliance_erase_rows: % is not a guarded table', p_table
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH requested AS (
        SELECT r.subject_id, r.erasure_subjects FROM dsar_privacyrequest r
        WHERE r.id = ANY(coalesce(p_requests, '{{}}')) AND r.type = 'erasure'
          AND r.status = 'processing'
    ), allowed AS (
        SELECT subject_id AS sid FROM requested WHERE subject_id IS NOT NULL
        UNION SELECT (s ->> 'id')::uuid FROM requested,
            jsonb_array_elements(requested.erasure_subjects) s
        UNION SELECT k.subject_id FROM dsar_destroyedkey k
            WHERE k.subject_id = ANY(p_subjects)
    )
    SELECT s INTO stray FROM unnest(p_subjects) s
        WHERE s NOT IN (SELECT sid FROM allowed) LIMIT 1;
    IF stray IS NOT NULL THEN
        RAISE EXCEPTION 'erasure of % rows refused: a subject is not covered by an erasure '
            'request in processing nor by the destroyed-keys ledger', p_table
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM compliance_permit_open('delete');
    RETURN QUERY EXECUTE format(
        'WITH d AS (DELETE FROM %I WHERE subject_id = ANY($1) AND ($2 IS NULL OR id = ANY($2)) '
        'RETURNING subject_id) SELECT subject_id, count(*) FROM d GROUP BY subject_id', p_table)
        USING p_subjects, p_ids;
    PERFORM compliance_permit_close('delete');
END;
$$;

CREATE OR REPLACE FUNCTION compliance_retention_delete(p_table text, p_ids bigint[])
RETURNS bigint LANGUAGE plpgsql {definer(schema)} AS $$
DECLARE
    floor_days integer := compliance_guard_setting_int('retention_floor_days', 0);
    young boolean;
    removed bigint;
BEGIN
    IF p_table = '{MEMBERSHIP_TABLE}' THEN
        SELECT EXISTS (SELECT 1 FROM {MEMBERSHIP_TABLE} WHERE id = ANY(p_ids) AND (exited_at IS NULL
            OR exited_at >= now() - make_interval(days => floor_days))) INTO young;
    ELSIF p_table = '{CONSENT_EVENT_TABLE}' THEN
        SELECT EXISTS (SELECT 1 FROM {CONSENT_EVENT_TABLE} WHERE id = ANY(p_ids)
            AND received_at >= now() - make_interval(days => floor_days)) INTO young;
    ELSE
        RAISE EXCEPTION 'compliance_retention_delete: % is not a guarded table', p_table
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF young THEN
        RAISE EXCEPTION 'retention of % rows refused: an active stay or a row younger than the '
            'retention floor (% days)', p_table, floor_days USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM compliance_permit_open('delete');
    EXECUTE format('DELETE FROM %I WHERE id = ANY($1)', p_table) USING p_ids;
    GET DIAGNOSTICS removed = ROW_COUNT;
    PERFORM compliance_permit_close('delete');
    RETURN removed;
END;
$$;
"""


# --- the application's calls ----------------------------------------------------------------


def stays_close(
    *,
    using: str,
    at: datetime,
    reason: str,
    subject_ids: Sequence[UUID] | None = None,
    segment_key: str | None = None,
    ids: Sequence[int] | None = None,
) -> list[tuple[int, UUID, str]]:
    """Close the open stays selected by subjects, segment and/or stay ids (at least one of
    subjects or ids): sorted ``(membership id, subject id, segment key)``. The caller audits
    each closed stay (``MEMBERSHIP_EXITED`` with its ``membership_id``) in the same
    transaction; on PostgreSQL the commit is refused otherwise."""
    if is_postgresql(using):
        with connections[using].cursor() as cursor:
            cursor.execute(
                "SELECT stay_id, stay_subject, stay_segment FROM segments_stays_close("
                "%s::uuid[], %s, %s::bigint[], %s, %s)",
                [
                    None if subject_ids is None else list(subject_ids),
                    segment_key,
                    None if ids is None else list(ids),
                    at,
                    reason,
                ],
            )
            return [(pk, _uuid(sid), key) for pk, sid, key in cursor.fetchall()]
    from segments.models import SegmentMembership  # noqa: PLC0415 - segments imports this module

    rows = SegmentMembership.objects.using(using).filter(exited_at__isnull=True)
    if subject_ids is not None:
        rows = rows.filter(subject_id__in=list(subject_ids))
    if segment_key is not None:
        rows = rows.filter(segment_key=segment_key)
    if ids is not None:
        rows = rows.filter(id__in=list(ids))
    closed = sorted(rows.values_list("id", "subject_id", "segment_key"))
    if closed:
        SegmentMembership.objects.using(using).filter(id__in=[pk for pk, _, _ in closed]).update(
            exited_at=at, exited_reason=reason
        )
    return [(pk, _uuid(sid), key) for pk, sid, key in closed]


def is_guarded(model) -> bool:
    """Whether ``model``'s rows are removed only through the guard functions."""
    return model._meta.db_table in ERASABLE


def erase_rows(
    *,
    using: str,
    table: str,
    subject_ids: Sequence[UUID],
    request_ids: Sequence[UUID],
    ids: Sequence[int] | None = None,
) -> dict[UUID, int]:
    """PostgreSQL: delete a guarded table's rows of ``subject_ids`` (only ``ids`` among them
    when given) through ``compliance_erase_rows``; rows per subject. Refused unless every
    subject is covered by one of ``request_ids`` (erasure, processing) or by the ledger."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT row_subject, removed FROM compliance_erase_rows(%s, %s::uuid[], %s::uuid[], "
            "%s::bigint[])",
            [table, list(subject_ids), list(request_ids), None if ids is None else list(ids)],
        )
        return {_uuid(sid): n for sid, n in cursor.fetchall()}


def retention_delete(*, using: str, table: str, ids: Sequence[int]) -> int:
    """PostgreSQL: delete a guarded table's rows by id through ``compliance_retention_delete``."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT compliance_retention_delete(%s, %s::bigint[])", [table, list(ids)]
        )
        return cursor.fetchone()[0]


def _uuid(value) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))
