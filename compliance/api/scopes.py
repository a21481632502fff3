"""Every API scope, with what it allows. Views name one of these in ``required_scopes``."""

SCOPES = {
    "consent:write": "record consent decisions and signals",
    "consent:read": "read subjects' consent state and history",
    "events:write": "send behavioral events (consent-gated)",
    "segments:write": "propose segments, push memberships",
    "segments:read": "read segments, members and history",
    "segments:review": "approve, activate, pause, review segments (privacy officer token)",
    "dsar:write": "open and cancel data subject requests",
    "dsar:read": "track requests, download packages and receipts",
    "dsar:approve": "approve, reject, extend requests (privacy officer token)",
    "changes:read": "pull the change feed",
    "sources:read": "read event sources' tracking plans and the instrumentation audit",
    "sources:write": "publish tracking plan versions of event sources",
    "signals:decode": "decode TCF strings",
}

#: scopes whose endpoints act as a person: the token must be tied to a privacy officer
OFFICER_SCOPES = frozenset({"dsar:approve", "segments:review"})
