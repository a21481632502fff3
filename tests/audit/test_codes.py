"""Audit codes: stable integers, one name each, grouped in hundreds."""

from __future__ import annotations

from compliance.audit.codes import AuditCode


def test_every_code_has_one_name_and_a_group():
    assert len(AuditCode.__members__) == len(list(AuditCode)), "a code has two names"
    assert all(100 <= code < 900 for code in AuditCode)
