"""Reading the outbox in feed order, and the opaque cursor of the pull API."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime

from django.db.models import Q

from compliance.audit.hashing import format_time
from compliance.errors import InputError
from compliance.feed.models import Change, ChangeArm, ChangeKind, SubscriptionArm
from compliance.regions import region_alias

CURSOR_VERSION = "f1"


class CursorError(InputError):
    """A cursor that is malformed or belongs to another region."""

    field = "after"


def cursor_encode(*, region: str, change_pk: int) -> str:
    raw = f"{CURSOR_VERSION}:{region}:{change_pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_decode(*, cursor: str, region: str) -> int:
    """The change id of a cursor from ``cursor_encode``; ``CursorError`` when it is not one."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        version, owner, pk = base64.urlsafe_b64decode(padded).decode().split(":")
        position = int(pk)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CursorError("not a cursor returned by this feed") from exc
    if version != CURSOR_VERSION:
        raise CursorError("cursor of an unknown version")
    if owner != region:
        raise CursorError(f"cursor belongs to region {owner!r}, not {region!r}")
    return position


def arm_filter(*, arm: str) -> Q | None:
    """The changes a recipient of ``arm`` (a ``SubscriptionArm``) receives: ``treatment``
    drops membership changes of control stays, ``control`` keeps only those (and consent
    changes, which have no arm), ``all`` everything (``None``: no filter). A membership change
    without an arm was written before arms existed: it is treatment."""
    if arm == SubscriptionArm.ALL:
        return None
    if arm == SubscriptionArm.CONTROL:
        return Q(kind=ChangeKind.CONSENT) | Q(arm=ChangeArm.CONTROL)
    return ~Q(arm=ChangeArm.CONTROL)  # Django keeps the NULLs (consent, older changes)


def changes_after(
    *,
    region: str,
    after: int = 0,
    limit: int = 100,
    kinds: Sequence[str] | None = None,
    segments: Sequence[str] | None = None,
    since: datetime | None = None,
    arm: str = SubscriptionArm.TREATMENT,
) -> list[Change]:
    """Committed changes of ``region`` after change id ``after``, in feed (commit) order.

    ``kinds`` restricts the change kinds; ``segments`` (non-empty) restricts membership
    changes to those segments (consent changes are not filtered by segment); ``since`` drops
    changes that occurred before it (a new subscription does not replay history); ``arm``
    keeps the membership changes of that holdout arm (``arm_filter``; by default treatment
    only: control members are never activated).
    """
    alias = region_alias(region=region)
    rows = Change.objects.using(alias).filter(id__gt=after)
    if kinds is not None:
        rows = rows.filter(kind__in=list(kinds))
    if segments:
        rows = rows.filter(Q(kind="consent") | Q(segment_key__in=list(segments)))
    if since is not None:
        rows = rows.filter(occurred_at__gte=since)
    arms = arm_filter(arm=arm)
    if arms is not None:
        rows = rows.filter(arms)
    return list(rows.order_by("id")[:limit])


def change_payload(*, change: Change, region: str) -> dict:
    """The JSON form of a change, as webhooks and the pull API send it. ``id`` is the
    idempotency id: a consumer that sees it twice must apply it once."""
    return {
        "id": str(change.change_id),
        "type": change.kind,
        "region": region,
        "subject_id": str(change.subject_id),
        "segment": change.segment_key or None,
        "purpose": change.purpose or None,
        "source": change.source or None,
        "decision": change.decision or None,
        "reason": change.reason or None,
        "arm": change.arm or (None if change.kind == ChangeKind.CONSENT else ChangeArm.TREATMENT),
        "occurred_at": format_time(change.occurred_at),
    }
