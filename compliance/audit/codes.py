"""Stable integer audit event codes, grouped in hundreds. Never renumber; only add.

100 consent, 200 segment membership, 300 data subject requests, 400 admin access to personal
data and evidence, 500 configuration, 600 key management, 700 identity, 800 retention.
"""

from __future__ import annotations

import enum


@enum.unique
class AuditCode(enum.IntEnum):
    # 1xx consent
    CONSENT_RECORDED = 101
    CONSENT_WITHDRAWN = 102
    CONSENT_EXPIRED = 103
    GPC_OPT_OUT_RECORDED = 104
    TCF_SIGNAL_RECORDED = 105
    EVENT_BATCH_INGESTED = 106  # counts only
    CONSENT_STATE_REBUILT = 107
    # 2xx membership
    MEMBERSHIP_ENTERED = 201
    MEMBERSHIP_EXITED = 202
    MEMBERSHIP_WRITE_CAPTURED = 203  # a write that bypassed the service, captured by the database
    # 3xx data subject requests
    REQUEST_OPENED = 301
    REQUEST_STATUS_CHANGED = 302
    REQUEST_EXTENDED = 303
    ERASURE_STEP_COMPLETED = 304
    ERASURE_RECEIPT_ISSUED = 305
    PACKAGE_CREATED = 306
    PACKAGE_DOWNLOADED = 307
    PACKAGE_EXPIRED = 308
    LEGAL_HOLD_SET = 309
    LEGAL_HOLD_RELEASED = 310
    REQUEST_DUE_FLAGGED = 311
    CALLBACK_SENT = 312
    RESTRICTION_LIFTED = 313
    REQUEST_NOTE_ADDED = 314  # payload: note id only, never the text
    REQUEST_ASSIGNED = 315
    # 4xx admin access to personal data, evidence
    PERSONAL_DATA_VIEWED = 401
    AUDIT_EXPORTED = 402
    EVIDENCE_REPORT_VIEWED = 403
    # 5xx configuration
    CONFIGURATION_CHANGED = 501
    PURPOSE_CHANGED = 502
    SOURCE_CHANGED = 503
    NOTICE_PUBLISHED = 504
    SEGMENT_CREATED = 505
    SEGMENT_CHANGED = 506
    SEGMENT_STATUS_CHANGED = 507
    SEGMENT_REVIEWED = 508
    API_CLIENT_CHANGED = 509
    TRACKING_PLAN_PUBLISHED = 510  # payload: source, version, mode, sha256, counts
    # 6xx keys
    SUBJECT_KEY_CREATED = 601
    SUBJECT_KEY_DESTROYED = 602
    CHECKPOINT_SIGNED = 603
    # 7xx identity
    IDENTITY_LINKED = 701
    SUBJECTS_MERGED = 702
    SUBJECT_ERASED = 703
    SUPPRESSION_ADDED = 704
    # 8xx retention
    RETENTION_APPLIED = 801  # counts per rule; payload "pruned_through" when audit entries go


GROUPS = {
    1: "consent",
    2: "membership",
    3: "dsar",
    4: "admin_access",
    5: "configuration",
    6: "keys",
    7: "identity",
    8: "retention",
}


def code_group(code: int) -> str:
    return GROUPS.get(code // 100, "other")


def code_name(code: int) -> str:
    try:
        return AuditCode(code).name.lower()
    except ValueError:
        return f"code_{code}"
