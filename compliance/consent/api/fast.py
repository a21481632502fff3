"""The consent API's hot path without DRF's per-field machinery, for the common case only.

* ``consent_body_parsed(data)``: a body of the usual shape (identifier or identifiers, source,
  jurisdiction, decisions, method) read into what ``ConsentIn`` would validate it to; ``None``
  for anything else or anything doubtful, and ``ConsentIn`` then validates and words every
  error, so errors have one source.
* ``events_rendered(events)``: ``ConsentEventOut``'s representation of ledger rows.

Both are held equal to the serializers by ``tests/consent/test_api_fast.py``.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from compliance.consent.api.serializers import API_DECISIONS, API_METHODS, MAX_DECISIONS
from compliance.consent.models import LawfulBasis, Method
from compliance.identifiers import IdentifierError, identifier_normalize
from compliance.models import IdentifierType

_BODY_KEYS = frozenset(
    {"identifier", "identifiers", "jurisdiction", "source", "decisions", "method"}
)
_DECISION_KEYS = frozenset({"purpose", "decision", "lawful_basis"})
_IDENTIFIER_TYPES = frozenset(IdentifierType.values)
_DECISIONS = frozenset(str(d) for d in API_DECISIONS)
_METHODS = frozenset(str(m) for m in API_METHODS)
_BASES = frozenset(LawfulBasis.values)


def _one_of(value, allowed: frozenset) -> bool:
    return type(value) is str and value in allowed


def _text(value, limit: int, *, blank: bool = False) -> bool:
    """A string DRF's ``CharField`` would keep as it is (no trimming, within ``limit``)."""
    return (
        type(value) is str
        and len(value) <= limit
        and value == value.strip()
        and (blank or bool(value))
    )


def _identifier(raw) -> tuple[str, str] | None:
    if type(raw) is not dict or raw.keys() != {"type", "value"}:
        return None
    kind, value = raw["type"], raw["value"]
    if not _one_of(kind, _IDENTIFIER_TYPES):
        return None
    if type(value) is not str or not value or len(value) > 320:
        return None
    try:
        normalized = identifier_normalize(identifier_type=kind, value=value)
    except IdentifierError:
        return None
    return (normalized.type, normalized.value)


def _decision(raw) -> dict | None:
    if type(raw) is not dict or not {"purpose", "decision"} <= raw.keys() <= _DECISION_KEYS:
        return None
    if not _text(raw["purpose"], 64) or not _one_of(raw["decision"], _DECISIONS):
        return None
    if "lawful_basis" in raw and not _one_of(raw["lawful_basis"], _BASES):
        return None
    return dict(raw)


def consent_body_parsed(data) -> dict | None:
    """``ConsentIn``'s validated data for a body of the usual shape; ``None`` otherwise."""
    if type(data) is not dict or not data.keys() <= _BODY_KEYS:
        return None
    if ("identifier" in data) == ("identifiers" in data):
        return None
    raws = [data["identifier"]] if "identifier" in data else data["identifiers"]
    if type(raws) is not list or not 1 <= len(raws) <= 10:
        return None
    identifiers = [_identifier(raw) for raw in raws]
    decisions_raw = data.get("decisions")
    if type(decisions_raw) is not list or not 1 <= len(decisions_raw) <= MAX_DECISIONS:
        return None
    decisions = [_decision(raw) for raw in decisions_raw]
    method = data.get("method", str(Method.API))
    if None in identifiers or None in decisions or not _one_of(method, _METHODS):
        return None
    if not _text(data.get("source"), 64):
        return None
    parsed = {"identifiers": identifiers, "source": data["source"], "decisions": decisions}
    if "jurisdiction" in data:
        if not _text(data["jurisdiction"], 16, blank=True):
            return None
        parsed["jurisdiction"] = data["jurisdiction"]
    parsed["method"] = method
    return parsed


def _time(value: datetime | None) -> str | None:
    """DRF's ISO 8601 rendering of an aware time (in the current zone, ``Z`` for UTC)."""
    if value is None:
        return None
    text = timezone.localtime(value).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def events_rendered(events) -> list[dict]:
    """``ConsentEventOut(events, many=True).data`` (ledger rows)."""
    return [
        {
            "id": e.pk,
            "purpose": e.purpose,
            "purpose_version": e.purpose_version,
            "source": e.source,
            "scope": str(e.scope),
            "jurisdiction": e.jurisdiction,
            "lawful_basis": str(e.lawful_basis),
            "decision": str(e.decision),
            "method": str(e.method),
            "captured_at": _time(e.captured_at),
            "received_at": _time(e.received_at),
            "expires_at": _time(e.expires_at),
            "notice_version_id": e.notice_version_id,
            "collection_point": e.collection_point,
            "actor_type": e.actor_type,
            "actor_id": e.actor_id,
            "raw_signal": e.raw_signal,
            "decoder_version": e.decoder_version,
            "copied_from": e.copied_from,
        }
        for e in events
    ]


__all__ = ["consent_body_parsed", "events_rendered"]
