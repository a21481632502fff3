"""Stable integer audit event codes, grouped in hundreds. Never renumber; only add.

100 consent, 200 segment membership, 300 data subject requests, 400 admin access to personal
data, 500 configuration, 600 key management, 700 identity.
"""

from __future__ import annotations

import enum


class AuditCode(enum.IntEnum):
    # 1xx consent
    CONSENT_RECORDED = 101
    # 2xx membership
    MEMBERSHIP_ENTERED = 201
    MEMBERSHIP_EXITED = 202
    # 3xx data subject requests
    REQUEST_OPENED = 301
    REQUEST_STATUS_CHANGED = 302
    # 4xx admin access to personal data
    PERSONAL_DATA_VIEWED = 401
    # 5xx configuration
    CONFIGURATION_CHANGED = 501
    # 6xx keys
    SUBJECT_KEY_CREATED = 601
    SUBJECT_KEY_DESTROYED = 602
    CHECKPOINT_SIGNED = 603
    # 7xx identity
    IDENTITY_LINKED = 701


def code_group(code: int) -> str:
    return {
        1: "consent",
        2: "membership",
        3: "dsar",
        4: "admin_access",
        5: "configuration",
        6: "keys",
        7: "identity",
    }.get(code // 100, "other")
