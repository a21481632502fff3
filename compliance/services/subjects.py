"""Creating and finding subjects from an identifier, in the right region."""

from __future__ import annotations

import uuid

from django.db import IntegrityError, transaction

from compliance import crypto
from compliance.audit.codes import AuditCode
from compliance.audit.services.append import Actor, AuditEntry, audit_append
from compliance.errors import ConflictError
from compliance.identifiers import Identifier, identifier_normalize
from compliance.models import Identity, Subject, SubjectDirectory, SubjectKey
from compliance.regions import region_alias, region_for_country
from compliance.selectors.rows import directory_entries, subject_row
from compliance.services.suppressions import suppressed_regions


class SubjectSuppressedError(ConflictError):
    """The identifier belongs to an erased person; re-ingestion is refused."""

    code, field = "suppressed", "identifiers"


def identifier_blind_index(*, identifier: Identifier) -> str:
    return crypto.blind_index(identifier_type=identifier.type, normalized_value=identifier.value)


def is_suppressed(*, blind_index: str) -> bool:
    """True if this blind index was erased in any region: ONE query on the control database's
    mirror (``compliance.services.suppressions``), no region asked."""
    return bool(suppressed_regions(blind_indexes=[blind_index]))


def subject_data_key(*, subject: Subject) -> bytes:
    """The subject's unwrapped data key (raises ``SubjectKey.DoesNotExist`` once erased)."""
    wrapped = SubjectKey.objects.using(subject.region).get(subject_id=subject.pk).wrapped_key
    return crypto.unwrap_data_key(
        region=subject.region, subject_id=str(subject.pk), wrapped=wrapped
    )


def subject_resolve(
    *,
    identifier_type: str,
    value: str,
    jurisdiction: str | None,
    actor: Actor,
    create: bool = True,
) -> Subject | None:
    """Find the subject holding an identifier, or create it in the jurisdiction's region.

    The region is fixed when the subject is first seen and never changes afterwards: an
    existing subject is returned from its own region whatever ``jurisdiction`` says now.
    Raises ``IdentifierError`` for a bad identifier and ``SubjectSuppressedError`` for an
    erased one. Returns ``None`` when nothing is found and ``create`` is false.
    Safe under concurrency: the directory's unique blind index decides the winner.
    """
    identifier = identifier_normalize(identifier_type=identifier_type, value=value)
    index = identifier_blind_index(identifier=identifier)
    entry = directory_entries(blind_indexes=[index]).get(index)
    if entry is None:
        if is_suppressed(blind_index=index):
            raise SubjectSuppressedError("this identifier was erased and may not be re-ingested")
        if not create:
            return None
    elif not create:  # a look-up: read, never repair
        return subject_row(alias=region_alias(region=entry.region), subject_id=entry.subject_id)
    return subject_create(
        identifier=identifier,
        index=index,
        region=region_for_country(country=jurisdiction),
        actor=actor,
        entry=entry,
    )


def subject_create(
    *,
    identifier: Identifier,
    index: str,
    region: str,
    actor: Actor,
    entry: SubjectDirectory | None = None,
) -> Subject:
    """The subject of a new identifier (its blind ``index`` checked against suppression by the
    caller): the directory row in ``region`` (unless ``entry`` is the one found), then the
    regional rows if missing, in the caller's transaction of that region if it has one (no
    savepoint). Safe under concurrency: the directory's unique blind index decides the winner,
    and a loser goes on with the winner's entry (whose region may differ from ``region``)."""
    new = entry is None
    if new:
        try:
            with transaction.atomic(using="default"):
                entry = SubjectDirectory.objects.create(
                    blind_index=index,
                    identifier_type=identifier.type,
                    region=region,
                    subject_id=uuid.uuid4(),
                )
        except IntegrityError:
            entry, new = SubjectDirectory.objects.get(blind_index=index), False
    return _ensure_regional_subject(
        entry=entry, identifier=identifier, index=index, actor=actor, new=new
    )


def _ensure_regional_subject(
    *, entry: SubjectDirectory, identifier: Identifier, index: str, actor: Actor, new: bool
) -> Subject:
    """Create the regional rows for a directory entry if missing (idempotent, self-healing);
    ``new``: the entry was created just now, so nothing regional can exist yet."""
    alias = region_alias(region=entry.region)
    subject = None if new else Subject.objects.using(alias).filter(pk=entry.subject_id).first()
    if subject is not None and Identity.objects.using(alias).filter(blind_index=index).exists():
        return subject
    with transaction.atomic(using=alias, savepoint=False):
        if subject is not None:
            identity_attach(subject=subject, identifier=identifier, blind_index=index, actor=actor)
            return subject
        subject = Subject.objects.using(alias).create(id=entry.subject_id, region=entry.region)
        data_key = crypto.new_data_key()
        SubjectKey.objects.using(alias).create(
            subject=subject,
            wrapped_key=crypto.wrap_data_key(
                region=entry.region, subject_id=str(subject.pk), data_key=data_key
            ),
        )
        audit_append(
            using=alias,
            entries=[
                AuditEntry(
                    code=AuditCode.SUBJECT_KEY_CREATED,
                    actor=actor,
                    subject_token=subject.audit_token,
                    object_type="subject",
                    payload={"region": entry.region},
                )
            ],
        )
        _identity_store(
            subject=subject,
            identifier=identifier,
            blind_index=index,
            data_key=data_key,
            actor=actor,
        )
    return subject


def identity_attach(
    *, subject: Subject, identifier: Identifier, blind_index: str, actor: Actor
) -> Identity:
    """Store an identifier of ``subject`` encrypted under its data key, and audit the link."""
    alias = region_alias(region=subject.region)
    existing = Identity.objects.using(alias).filter(blind_index=blind_index).first()
    if existing is not None:
        return existing
    return _identity_store(
        subject=subject,
        identifier=identifier,
        blind_index=blind_index,
        data_key=subject_data_key(subject=subject),
        actor=actor,
    )


def _identity_store(
    *, subject: Subject, identifier: Identifier, blind_index: str, data_key: bytes, actor: Actor
) -> Identity:
    """The identity row, encrypted under ``data_key``, and its ``IDENTITY_LINKED`` entry."""
    alias = region_alias(region=subject.region)
    ciphertext = crypto.encrypt(
        data_key=data_key,
        plaintext=identifier.value.encode(),
        aad=f"identity:{subject.pk}:{identifier.type}".encode(),
    )
    with transaction.atomic(using=alias, savepoint=False):
        identity = Identity.objects.using(alias).create(
            subject=subject,
            identifier_type=identifier.type,
            blind_index=blind_index,
            value_encrypted=ciphertext,
        )
        audit_append(
            using=alias,
            entries=[
                AuditEntry(
                    code=AuditCode.IDENTITY_LINKED,
                    actor=actor,
                    subject_token=subject.audit_token,
                    object_type="identity",
                    object_id=str(identity.pk),
                    payload={"identifier_type": identifier.type},
                )
            ],
        )
    return identity


def identity_value(*, identity: Identity, subject: Subject) -> str:
    """Decrypt an identity's value (callers that show it must audit the access)."""
    return crypto.decrypt(
        data_key=subject_data_key(subject=subject),
        ciphertext=bytes(identity.value_encrypted),
        aad=f"identity:{subject.pk}:{identity.identifier_type}".encode(),
    ).decode()
