"""Consent signals carried by events, recorded through the consent app before evaluation.

* ``{"tc_string": ...}``: ``consent_record_tcf`` semantics (our purposes granted or denied
  from the TCF purposes; a string that fails TCF 2.2/2.3 validation is recorded as
  ``invalid_signal`` and evaluation then fails closed with ``unreadable_signal``). A string
  that cannot be decoded at all raises :class:`SignalUnreadable`: nothing is recorded and the
  event is rejected ``unreadable_signal``.
* ``{"gpc": true}``: ``Sec-GPC: 1``; opt-outs of the purposes with a GPC effect where the
  event's jurisdiction makes GPC binding (nothing is recorded elsewhere).

The decoded and validated input is prepared once per distinct signal, source, jurisdiction
and capture time in a batch, then recorded per subject (``consent_record_prepared``).
"""

from __future__ import annotations

from datetime import datetime

from compliance.audit.services.append import Actor
from compliance.consent.services.record import (
    ConsentInputError,
    Prepared,
    consent_record_prepared,
)
from compliance.consent.services.signals import (
    consent_record_gpc_prepared,
    gpc_prepare,
    tcf_prepare,
)
from compliance.errors import InputError
from compliance.events.parsing import ConsentSignal
from compliance.models import Subject


class SignalUnreadable(InputError):
    """The signal could not be turned into consent records (e.g. an undecodable TC string)."""


class SignalRecorder:
    """Records signals for one batch, preparing each distinct signal only once."""

    def __init__(self, *, actor: Actor) -> None:
        self.actor = actor
        self._prepared: dict[tuple, Prepared | None | SignalUnreadable] = {}

    def prepare(
        self,
        *,
        signal: ConsentSignal,
        source: str,
        jurisdiction: str | None,
        captured_at: datetime,
    ) -> Prepared | None:
        key = (signal, source, jurisdiction, captured_at if signal.tc_string else None)
        if key not in self._prepared:
            try:
                if signal.tc_string is not None:
                    prepared, _issues = tcf_prepare(
                        tc_string=signal.tc_string,
                        source=source,
                        jurisdiction=jurisdiction,
                        captured_at=captured_at,
                    )
                else:
                    prepared = gpc_prepare(source=source, jurisdiction=jurisdiction)
                self._prepared[key] = prepared
            except ConsentInputError as exc:
                self._prepared[key] = SignalUnreadable(str(exc))
        found = self._prepared[key]
        if isinstance(found, SignalUnreadable):
            raise found
        return found

    def record(
        self,
        *,
        subject: Subject,
        signal: ConsentSignal,
        source: str,
        jurisdiction: str | None,
        captured_at: datetime,
    ) -> int:
        """Record ``signal`` for ``subject``; returns how many consent events were written."""
        prepared = self.prepare(
            signal=signal, source=source, jurisdiction=jurisdiction, captured_at=captured_at
        )
        if prepared is None:  # GPC where it is not binding
            return 0
        if signal.gpc:
            events = consent_record_gpc_prepared(
                subject=subject, prepared=prepared, actor=self.actor
            )
        else:
            events = consent_record_prepared(subject=subject, prepared=prepared, actor=self.actor)
        return len(events)
