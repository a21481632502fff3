"""The consent rules: THE definition of "may we process", for one subject and purpose, no queries.

``evaluate(purpose=, global_record=, source_record=, jurisdiction=, at=) -> Verdict``. Every
other answer (``can_process``, ``can_process_bulk``, the SQL gate ``consent_gate_positions``)
calls this code on the records it read; ``tests/consent/test_gate_differential.py`` checks the
gate against ``can_process_bulk`` over randomised ledgers.

Rules, in order (each has a test in ``tests/consent/test_evaluation.py``):

1. Unknown or inactive purpose: not allowed (``unknown_purpose``; decided by the caller, which
   has no purpose to pass).
2. The deciding record: the latest global-scope record, and, when ``source`` is given, the
   latest record scoped to that source. The source-scoped record beats the global one, except
   that a *later* global negative decision (withdrawn, denied, objected, opted out, expired,
   invalid signal) beats any grant; a later global grant replaces a source record that lapsed
   (expired).
3. Which basis applies: if the purpose allows consent and the jurisdiction is one where consent
   is required (or the jurisdiction is unknown: fail closed), only a live grant allows it. If
   consent is not required there, the purpose's other basis applies: ``us_opt_out`` (US
   jurisdictions only) or legitimate interests/public task are allowed unless the latest record
   is negative (objected, opted out, withdrawn, denied); contract, legal obligation and vital
   interests are allowed whatever was recorded. A live grant is always reported as basis
   ``consent``.
4. Consent model, fail closed: no record (``no_record``), a grant past its expiry
   (``expired``), a signal that failed validation (``unreadable_signal``) or any negative
   decision (the decision is the reason) means not allowed.

``jurisdiction`` defaults to the jurisdiction of the latest of the two records; when there is
none either, consent is required (fail closed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from compliance.consent.models import NEGATIVE_DECISIONS, Decision
from compliance.consent.models import Purpose as PurposeModel
from compliance.consent.selectors.config import jurisdiction_matches
from compliance.regions import country_of

#: non-consent bases stopped by an objection (Art. 21) and the order they are preferred in
_OBJECTABLE = ("legitimate_interests", "public_task")
_UNCONDITIONAL = ("contract", "legal_obligation", "vital_interests")
# Plain strings: on Python 3.11 every ``Decision.X`` attribute access costs microseconds, and
# comparing a str with an enum member goes through the member's ``__eq__`` first.
_GRANTED = Decision.GRANTED.value
_EXPIRED = Decision.EXPIRED.value
_INVALID_SIGNAL = Decision.INVALID_SIGNAL.value
_NEGATIVE = frozenset(d.value for d in NEGATIVE_DECISIONS)
_BLOCKS_ALTERNATIVE = frozenset(
    d.value for d in (Decision.OBJECTED, Decision.OPTED_OUT, Decision.WITHDRAWN, Decision.DENIED)
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer: ``event_ids`` are the deciding consent events (may be empty)."""

    allowed: bool
    basis: str | None
    event_ids: tuple[int, ...]
    reason: str


#: the answer for a purpose that does not exist or is inactive
UNKNOWN_PURPOSE = Verdict(False, None, (), "unknown_purpose")


class Record(NamedTuple):
    """The latest decision of one (subject, purpose, scope), as the rules read it. Times are
    POSIX seconds (100,000 records are built and compared per bulk call); ``expires`` None
    means the record never expires."""

    event_id: int
    decision: str
    jurisdiction: str
    captured: float
    expires: float | None

    def live_grant(self, at: float) -> bool:
        return self.decision == _GRANTED and (self.expires is None or self.expires > at)

    def lapsed(self, at: float) -> bool:
        """An expiry record, or a grant whose expiry is not after ``at``."""
        if self.decision == _EXPIRED:
            return True
        return self.decision == _GRANTED and self.expires is not None and self.expires <= at


class _Rules(NamedTuple):
    has_consent: bool
    consent_required: bool
    alternative: str | None


def evaluate(
    *,
    purpose: PurposeModel,
    global_record: Record | None,
    source_record: Record | None,
    jurisdiction: str | None,
    at: datetime,
) -> Verdict:
    """The rules of the module docstring for one subject and an active ``purpose``."""
    return evaluate_fast(purpose, global_record, source_record, jurisdiction, at.timestamp(), {})


def evaluate_fast(
    purpose: PurposeModel,
    global_record: Record | None,
    source_record: Record | None,
    jurisdiction: str | None,
    at: float,
    cache: dict,
) -> Verdict:
    """``evaluate`` for the bulk paths: positional, ``at`` in POSIX seconds, and ``cache``
    (one dict per bulk call) keeps the purpose's rules per jurisdiction."""
    deciding = _deciding(global_record, source_record, at)
    if not jurisdiction:
        jurisdiction = _latest_jurisdiction(global_record, source_record)
    rules = cache.get((purpose.key, jurisdiction)) or _rules(purpose, jurisdiction, cache)
    has_consent, consent_required, alternative = rules
    ids = (deciding.event_id,) if deciding is not None else ()
    if deciding is not None and has_consent and deciding.live_grant(at):
        return Verdict(True, "consent", ids, "granted")
    if consent_required:
        if deciding is None:
            return Verdict(False, None, (), "no_record")
        if deciding.lapsed(at):
            return Verdict(False, None, ids, "expired")
        if deciding.decision == _INVALID_SIGNAL:
            return Verdict(False, None, ids, "unreadable_signal")
        return Verdict(False, None, ids, deciding.decision)
    if alternative is None:
        return Verdict(False, None, ids, "no_lawful_basis")
    if alternative in _UNCONDITIONAL:
        return Verdict(True, alternative, ids, alternative)
    if deciding is not None and deciding.decision in _BLOCKS_ALTERNATIVE:
        return Verdict(False, None, ids, deciding.decision)
    reason = "not_opted_out" if alternative == "us_opt_out" else "no_objection"
    return Verdict(True, alternative, ids, reason)


def _deciding(global_record: Record | None, source_record: Record | None, at: float):
    if source_record is None or global_record is None:
        return source_record or global_record
    if (source_record.captured, source_record.event_id) >= (
        global_record.captured,
        global_record.event_id,
    ):
        return source_record
    # the global record is later
    if global_record.decision in _NEGATIVE:
        return global_record  # a later global withdrawal beats any grant
    if source_record.lapsed(at):
        return global_record
    return source_record  # a source-scoped decision beats a global one for that source


def _latest_jurisdiction(global_record: Record | None, source_record: Record | None) -> str | None:
    """The later record's jurisdiction, else the earlier one's, else None."""
    if global_record is not None and source_record is not None:
        earlier, later = sorted(
            (global_record, source_record), key=lambda r: (r.captured, r.event_id)
        )
        return later.jurisdiction or earlier.jurisdiction or None
    record = global_record or source_record
    return (record.jurisdiction or None) if record is not None else None


def _rules(purpose: PurposeModel, jurisdiction: str | None, cache: dict) -> _Rules:
    bases = list(purpose.lawful_bases)
    alternative = _alternative_basis(bases=bases, jurisdiction=jurisdiction)
    has_consent = "consent" in bases
    consent_required = has_consent and (
        jurisdiction is None
        or alternative is None
        or jurisdiction_matches(jurisdiction=jurisdiction, codes=purpose.consent_required_in)
    )
    rules = cache[(purpose.key, jurisdiction)] = _Rules(has_consent, consent_required, alternative)
    return rules


def _alternative_basis(*, bases: list[str], jurisdiction: str | None) -> str | None:
    if "us_opt_out" in bases and jurisdiction and country_of(jurisdiction=jurisdiction) == "US":
        return "us_opt_out"
    for basis in (*_UNCONDITIONAL, *_OBJECTABLE):
        if basis in bases:
            return basis
    return None
