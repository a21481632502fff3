"""The access report's fixed words: internal columns never exported, category, motion and
change words, and the rights each regulation grants (with their articles)."""

from __future__ import annotations

#: columns never exported to the person: lookup keys, pseudonymous tokens, our own plumbing
INTERNAL_FIELDS = frozenset(
    {
        "blind_index",
        "audit_token",
        "subject_token",
        "client_id",
        "idempotency_key",
        "identifier_indexes",
        "erasure_subjects",
        "receipt_signature",
        "callback_url",
        "external_reference",
        "heartbeat_at",
        "progress_done",
        "progress_total",
        "due_flag",
        "merged_into",
        "copied_from",
        "actor_type",
        "actor_id",
        "decoder_version",
        "event_id",
        "notice_version_id",
        "consent_event_ids",
        "client_event_id",
        "wrapped_key",
        "key_version",
        "value_encrypted",
        "properties_encrypted",
        "body_hash",
    }
)

#: registry label -> retention rule category (``compliance.retention.models.Category``)
RETENTION_CATEGORY = {
    "events.Event": "behavioral_events",
    "segments.SegmentMembership": "exited_memberships",
    "consent.ConsentEvent": "consent_events",
    "dsar.PrivacyRequest": "request_records",
    "dsar.Package": "export_packages",
}

#: what "rows" means per kind, in the person's words
CATEGORY_WORDS = {
    "compliance.Identity": "Your identifiers (e-mail address, user ids, device ids)",
    "compliance.Subject": "Your record (a random id, the region it is stored in)",
    "consent.ConsentEvent": "Your consent decisions, each as you made it",
    "consent.ConsentState": "Your current consent choices",
    "events.Event": "Activity we recorded (page views, app events, ...)",
    "segments.SegmentMembership": "Audience segments you are or were in",
    "dsar.PrivacyRequest": "Your privacy requests",
    "dsar.LegalHold": "Legal holds on your data",
    "dsar.Restriction": "Restrictions of processing you asked for",
}

MOTION_WORDS = {
    "campaign": "you may receive a marketing campaign aimed at this group",
    "sales_play": "our sales team may contact you or prioritise your account",
    "ad_audience": "you may be shown advertising aimed at this group",
    "web_experience": "our website or app may show you different content",
}

CHANGE_KIND_WORDS = {
    "enter": "that you entered an audience segment",
    "exit": "that you left an audience segment",
    "retract": "that you must be removed from an audience",
    "consent": "your consent decisions",
}

GDPR_RIGHTS = [
    ("access", "Art. 15", "get a copy of your data and this information"),
    ("rectification", "Art. 16", "have inaccurate data corrected"),
    ("erasure", "Art. 17", "have your data erased"),
    ("restriction", "Art. 18", "have the processing of your data restricted"),
    ("portability", "Art. 20", "receive your data in a machine-readable form"),
    ("objection", "Art. 21", "object to processing, including profiling and direct marketing"),
    (
        "withdraw_consent",
        "Art. 7(3)",
        "withdraw your consent at any time, as easily as you gave it",
    ),
    (
        "automated_decisions",
        "Art. 22",
        "not be subject to a decision based solely on automated "
        "processing that has legal or similarly significant effects on you",
    ),
    ("complaint", "Art. 77", "lodge a complaint with a data protection supervisory authority"),
]
CCPA_RIGHTS = [
    ("know", "Cal. Civ. Code 1798.110", "know what personal information we collect, use and share"),
    ("delete", "1798.105", "have your personal information deleted"),
    ("correct", "1798.106", "have inaccurate personal information corrected"),
    (
        "opt_out",
        "1798.120",
        "opt out of the sale or sharing of your personal information "
        "(a Global Privacy Control signal counts)",
    ),
    ("limit", "1798.121", "limit the use of sensitive personal information"),
    ("non_discrimination", "1798.125", "not be treated differently for using these rights"),
]
