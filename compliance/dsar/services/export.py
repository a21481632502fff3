"""Access and portability packages: one zip of everything held, encrypted at rest.

The zip holds ``report.html`` and ``report.json`` (the access report a person can read: GDPR
Art. 15(1)/(2) and CCPA right to know, see ``compliance.dsar.services.report``), ``data.json``
(every exportable registered model's rows for the person and every subject merged into it;
identifiers decrypted), ``tables/<app.Model>.csv`` (one per table, with its header even when
empty) and ``summary.txt`` (short, human-readable). Internal columns
(``report_words.INTERNAL_FIELDS``: blind indexes, audit tokens, client ids, idempotency keys, ...)
appear nowhere in it. It is stored AES-256-GCM encrypted under a random
per-package key, itself wrapped by the region key; it can be read only through
``package_read`` (API, admin), which audits the download, until ``expires_at``;
``packages_expire`` (daily beat) deletes expired packages.

Encrypted columns of other apps are decoded by decoders registered with
``export_decoder_register`` (label -> ``fn(*, row: dict, instance, data_key) -> dict``); a
binary column without a decoder is tried as AES-GCM under the subject key without associated
data, and otherwise exported as ``{"encrypted": true}``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from datetime import timedelta
from uuid import UUID

from django.db import models, transaction
from django.utils import timezone

from compliance import crypto
from compliance.audit.codes import AuditCode
from compliance.audit.services.append import Actor, AuditEntry, audit_append
from compliance.dsar.models import Package, PrivacyRequest, RequestType, Status
from compliance.dsar.services.erasure_plan import subjects_reached
from compliance.dsar.services.errors import ExpiredError, NotAvailableError
from compliance.dsar.services.report import access_report_build, access_report_html
from compliance.dsar.services.report_words import INTERNAL_FIELDS
from compliance.dsar.services.transitions import request_entry, request_transition
from compliance.models import Identity, Subject, SubjectKey
from compliance.personal_data import personal_data_models
from compliance.regions import region_alias

PACKAGE_TTL = timedelta(days=7)
SYSTEM = Actor.system("export")
PACKAGE_TYPES = frozenset({RequestType.ACCESS, RequestType.PORTABILITY})

Decoder = Callable[..., dict]
_DECODERS: dict[str, Decoder] = {}


def export_decoder_register(*, label: str, decoder: Decoder) -> None:
    """Register how to decode a model's encrypted columns for packages (idempotent)."""
    _DECODERS[label] = decoder


def _identity_decoder(*, row: dict, instance: Identity, data_key: bytes | None) -> dict:
    row.pop("value_encrypted", None)
    if data_key is not None:
        row["value"] = crypto.decrypt(
            data_key=data_key,
            ciphertext=bytes(instance.value_encrypted),
            aad=f"identity:{instance.subject_id}:{instance.identifier_type}".encode(),
        ).decode()
    return row


def _event_decoder(*, row: dict, instance, data_key: bytes | None) -> dict:
    """``events.Event.properties_encrypted``: JSON under the subject key (see that model)."""
    ciphertext = row.pop("properties_encrypted", None)
    row["properties"] = None
    if data_key is not None and ciphertext is not None:
        try:
            plain = crypto.decrypt(
                data_key=data_key,
                ciphertext=bytes(ciphertext),
                aad=f"event-properties:{instance.subject_id}".encode(),
            )
            row["properties"] = json.loads(plain)
        except (crypto.DecryptionError, ValueError):
            row["properties"] = {"encrypted": True}
    return row


export_decoder_register(label="compliance.Identity", decoder=_identity_decoder)
export_decoder_register(label="events.Event", decoder=_event_decoder)


def _plain(value):
    if isinstance(value, UUID):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        return {"encrypted": True}
    return value


#: columns a decoder renames (ciphertext column -> decoded column)
_DECODED = {"value_encrypted": "value", "properties_encrypted": "properties"}


def _columns(model: type[models.Model]) -> list[str]:
    """The exported columns of ``model``, in order: decoded names, internal fields dropped."""
    names = [_DECODED.get(f.attname, f.attname) for f in model._meta.concrete_fields]
    return [n for n in names if n not in INTERNAL_FIELDS]


def _row(instance: models.Model, *, data_key: bytes | None, label: str) -> dict:
    row = {}
    binary = []
    for field in instance._meta.concrete_fields:
        value = getattr(instance, field.attname)
        if isinstance(field, models.BinaryField) and value is not None:
            binary.append(field.attname)
        row[field.attname] = value
    decoder = _DECODERS.get(label)
    if decoder is not None:
        row = decoder(row=row, instance=instance, data_key=data_key)
    else:
        for name in binary:
            row[name] = _try_decrypt(row[name], data_key)
    return {key: _plain(value) for key, value in row.items() if key not in INTERNAL_FIELDS}


def _try_decrypt(value, data_key: bytes | None):
    if data_key is None or not isinstance(value, bytes | memoryview):
        return value
    try:
        text = crypto.decrypt(data_key=data_key, ciphertext=bytes(value)).decode()
    except (crypto.DecryptionError, UnicodeDecodeError):
        return value
    try:
        return json.loads(text)
    except ValueError:
        return text


def _data_keys(alias: str, region: str, subject_ids: list[UUID]) -> dict[UUID, bytes]:
    keys = {}
    for key in SubjectKey.objects.using(alias).filter(subject_id__in=subject_ids):
        keys[key.subject_id] = crypto.unwrap_data_key(
            region=region, subject_id=str(key.subject_id), wrapped=key.wrapped_key
        )
    return keys


def package_build(
    *,
    alias: str,
    region: str,
    subject_ids: list[UUID],
    request_id: str,
    request: PrivacyRequest | None = None,
) -> tuple:
    """The zip bytes and per-table counts for ``subject_ids`` (nothing stored). With
    ``request`` the zip also holds the access report (``report.json``, ``report.html``)."""
    keys = _data_keys(alias, region, subject_ids)
    tables: dict[str, list[dict]] = {}
    columns: dict[str, list[str]] = {}
    for entry in personal_data_models():
        if not entry.exportable:
            continue
        qs = entry.model._default_manager.using(alias).filter(
            **{f"{entry.subject_field}__in": subject_ids}
        )
        rows = []
        for instance in qs.iterator(chunk_size=2000):
            owner = getattr(instance, entry.subject_field)
            rows.append(_row(instance, data_key=keys.get(owner), label=entry.label))
        tables[entry.label] = rows
        columns[entry.label] = _columns(entry.model)
    generated = timezone.now().isoformat()
    document = {
        "request_id": request_id,
        "region": region,
        "generated_at": generated,
        "subjects": [str(s) for s in subject_ids],
        "tables": tables,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        if request is not None:
            report = access_report_build(
                request=request, region=region, tables=tables, generated_at=generated
            )
            archive.writestr("report.json", json.dumps(report, indent=2, ensure_ascii=False))
            archive.writestr("report.html", access_report_html(report=report))
        archive.writestr("data.json", json.dumps(document, indent=2, ensure_ascii=False))
        for label, rows in tables.items():
            archive.writestr(f"tables/{label}.csv", _csv(rows, columns=columns[label]))
        archive.writestr("summary.txt", _summary(document))
    return buffer.getvalue(), {label: len(rows) for label, rows in tables.items()}


def _csv(rows: list[dict], *, columns: list[str]) -> str:
    """One CSV with its header row always (an empty table is a header and nothing else)."""
    out = io.StringIO()
    names = list(columns)
    for row in rows:
        names.extend(k for k in row if k not in names)
    writer = csv.DictWriter(out, fieldnames=names)
    writer.writeheader()
    if rows:
        for row in rows:
            writer.writerow(
                {
                    k: json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else v
                    for k, v in row.items()
                }
            )
    return out.getvalue()


def _summary(document: dict) -> str:
    described = {e.label: e.description for e in personal_data_models()}
    lines = [
        "Your personal data",
        "==================",
        "",
        f"Request: {document['request_id']}",
        f"Generated: {document['generated_at']}",
        f"Stored in region: {document['region']}",
        "",
        "What we hold about you (rows per kind of data):",
    ]
    for label, rows in document["tables"].items():
        lines.append(f"  - {described.get(label, label)}: {len(rows)}")
    lines += [
        "",
        "report.html explains what we do with your data, why, who receives it, how long we",
        "keep it, where it comes from, the audience segments you are or were in, and your rights",
        "(report.json says the same in machine-readable form).",
        "data.json has everything in machine-readable form; tables/ has one CSV per table.",
        "",
    ]
    return "\n".join(lines)


def request_export_run(*, region: str, request_id: UUID | str, actor: Actor = SYSTEM):
    """Build, encrypt and store the package of an access/portability request, then complete it.
    Idempotent: a request already completed (or with a package) is left as it is."""
    alias = region_alias(region=region)
    request = PrivacyRequest.objects.using(alias).get(pk=request_id)
    if request.status != Status.PROCESSING or request.type not in PACKAGE_TYPES:
        return request
    subjects = subjects_reached(alias=alias, subject_id=request.subject_id)
    data, counts = package_build(
        alias=alias,
        region=region,
        subject_ids=[s.pk for s in subjects],
        request_id=str(request.pk),
        request=request,
    )
    with transaction.atomic(using=alias):
        request = PrivacyRequest.objects.using(alias).select_for_update().get(pk=request.pk)
        if request.status != Status.PROCESSING:
            return request
        package = Package(request_id=request.pk, subject_id=request.subject_id)
        key = crypto.new_data_key()
        package.ciphertext = crypto.encrypt(
            data_key=key, plaintext=data, aad=f"package:{package.pk}".encode()
        )
        package.wrapped_key = crypto.wrap_data_key(
            region=region, subject_id=f"package:{package.pk}", data_key=key
        )
        package.sha256 = hashlib.sha256(data).hexdigest()
        package.size = len(data)
        package.expires_at = timezone.now() + PACKAGE_TTL
        package.save(using=alias, force_insert=True)
        audit_append(
            using=alias,
            entries=[
                request_entry(
                    request=request,
                    code=AuditCode.PACKAGE_CREATED,
                    actor=actor,
                    payload={
                        "tables": len(counts),
                        "rows": sum(counts.values()),
                        "size": package.size,
                        "expires_at": package.expires_at.isoformat(),
                    },
                )
            ],
        )
        return request_transition(
            request=request,
            to=Status.COMPLETED,
            actor=actor,
            update_fields={
                "result_counts": counts,
                "progress_done": 1,
                "progress_total": 1,
            },
        )


def package_for(*, request: PrivacyRequest) -> Package:
    """The request's live package, or ``NotAvailableError`` / ``ExpiredError`` saying why not."""
    if request.type not in PACKAGE_TYPES:
        raise NotAvailableError("only access and portability requests have a package", field="type")
    if request.status != Status.COMPLETED:
        raise NotAvailableError(f"no package: the request is '{request.status}'", field="status")
    if request.result_counts.get("no_data_held"):
        raise NotAvailableError("no data held for these identifiers: no package")
    package = Package.objects.using(request._state.db).filter(request_id=request.pk).first()
    if package is None or package.expires_at <= timezone.now():
        raise ExpiredError("the package expired and was deleted")
    return package


def package_read(*, request: PrivacyRequest, actor: Actor) -> tuple[bytes, Package]:
    """Decrypt the package for download (audited ``PACKAGE_DOWNLOADED``)."""
    package = package_for(request=request)
    alias = request._state.db
    key = crypto.unwrap_data_key(
        region=request.region, subject_id=f"package:{package.pk}", wrapped=package.wrapped_key
    )
    data = crypto.decrypt(
        data_key=key, ciphertext=bytes(package.ciphertext), aad=f"package:{package.pk}".encode()
    )
    audit_append(
        using=alias,
        entries=[
            request_entry(
                request=request,
                code=AuditCode.PACKAGE_DOWNLOADED,
                actor=actor,
                payload={"size": package.size},
            )
        ],
    )
    return data, package


def packages_expire(*, region: str, actor: Actor = SYSTEM, now=None) -> int:
    """Delete expired packages (``PACKAGE_EXPIRED`` each); returns how many."""
    alias = region_alias(region=region)
    now = now or timezone.now()
    removed = 0
    for package in (
        Package.objects.using(alias)
        .filter(expires_at__lte=now)
        .only("pk", "request_id", "subject_id")
    ):
        with transaction.atomic(using=alias):
            if not Package.objects.using(alias).filter(pk=package.pk).delete()[0]:
                continue
            token = ""
            if package.subject_id:
                subject = Subject.objects.using(alias).filter(pk=package.subject_id).first()
                token = subject.audit_token if subject else ""
            audit_append(
                using=alias,
                entries=[
                    AuditEntry(
                        code=AuditCode.PACKAGE_EXPIRED,
                        actor=actor,
                        subject_token=token,
                        object_type="privacy_request",
                        object_id=str(package.request_id),
                    )
                ],
            )
            removed += 1
    return removed
