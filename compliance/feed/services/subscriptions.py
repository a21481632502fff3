"""Creating and changing webhook subscriptions (control database, audited in its chain)."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence

from django.db import transaction

from compliance.audit.services.append import Actor
from compliance.audit.services.configuration import configuration_changed
from compliance.errors import InputError
from compliance.feed.models import ChangeKind, Subscription, SubscriptionArm
from compliance.feed.services.outbox import subscriptions_changed
from compliance.outbound import OutboundUrlError, outbound_url_check
from compliance.regions import regions


class SubscriptionInputError(InputError):
    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


def subscription_validate(*, subscription: Subscription) -> None:
    """Raise ``SubscriptionInputError`` naming the field for a bad URL, type, region, segment
    list or arm."""
    try:
        outbound_url_check(url=subscription.url or "")
    except OutboundUrlError as exc:
        raise SubscriptionInputError(f"url {exc}", field="url") from None
    types = list(subscription.event_types or [])
    if not types or not isinstance(subscription.event_types, list):
        raise SubscriptionInputError("at least one event type is needed", field="event_types")
    unknown = sorted(set(map(str, types)) - set(ChangeKind.values))
    if unknown:
        raise SubscriptionInputError(
            f"unknown event types {unknown}; use {ChangeKind.values}", field="event_types"
        )
    unknown_regions = sorted(set(map(str, subscription.regions or [])) - set(regions()))
    if unknown_regions:
        raise SubscriptionInputError(f"unknown regions {unknown_regions}", field="regions")
    if not all(isinstance(key, str) for key in subscription.segments or []):
        raise SubscriptionInputError("segments must be a list of segment keys", field="segments")
    if subscription.arm not in SubscriptionArm.values:
        raise SubscriptionInputError(
            f"unknown arm {subscription.arm!r}; use {SubscriptionArm.values}", field="arm"
        )


def _new_secret(subscription: Subscription) -> str:
    secret = "whsec_" + secrets.token_hex(24)
    subscription.secret = secret
    subscription.secret_hint = secret[:10]
    return secret


def _audit(*, subscription: Subscription, actor: Actor, action: str, fields: Iterable[str]):
    configuration_changed(
        actor=actor,
        object_type="webhook_subscription",
        object_id=str(subscription.pk),
        payload={"action": action, "fields": sorted(set(fields))},
    )


def subscription_create(
    *,
    name: str,
    url: str,
    event_types: Sequence[str],
    actor: Actor,
    segments: Sequence[str] = (),
    regions: Sequence[str] = (),
    is_active: bool = True,
    purpose: str = "",
    arm: str = SubscriptionArm.TREATMENT,
) -> tuple[Subscription, str]:
    """Create a subscription; returns it and its secret (shown this once, never again).
    ``purpose`` says why the recipient gets the data (people read it in access reports);
    ``arm`` which holdout arm's membership changes it gets (``treatment``, the default, for
    activation; ``control`` or ``all`` for measurement tools)."""
    subscription = Subscription(
        name=name,
        purpose=purpose,
        arm=arm,
        url=url,
        event_types=list(event_types),
        segments=list(segments),
        regions=list(regions),
        is_active=is_active,
    )
    return subscription, subscription_save(subscription=subscription, actor=actor)


def subscription_save(
    *, subscription: Subscription, actor: Actor, changed: Iterable[str] = ()
) -> str:
    """Validate and save (create or change) ``subscription``, audited as
    ``CONFIGURATION_CHANGED`` in the control chain. A new subscription gets a secret, which is
    returned (``""`` when the subscription already had one)."""
    subscription_validate(subscription=subscription)
    creating = subscription.pk is None
    secret = _new_secret(subscription) if creating or not subscription.secret else ""
    with transaction.atomic(using="default"):
        subscription.save()
        _audit(
            subscription=subscription,
            actor=actor,
            action="created" if creating else "changed",
            fields=changed
            if not creating
            else ["url", "event_types", "segments", "regions", "arm"],
        )
    subscriptions_changed()
    return secret


def subscription_secret_rotate(*, subscription: Subscription, actor: Actor) -> str:
    """Replace the secret; returns the new one (shown once). Audited."""
    secret = _new_secret(subscription)
    with transaction.atomic(using="default"):
        subscription.save(update_fields=["secret", "secret_hint", "updated_at"])
        _audit(subscription=subscription, actor=actor, action="secret_rotated", fields=["secret"])
    return secret


def subscription_delete(*, subscription: Subscription, actor: Actor) -> None:
    pk = subscription.pk
    with transaction.atomic(using="default"):
        subscription.delete()
        subscription.pk = pk
        _audit(subscription=subscription, actor=actor, action="deleted", fields=[])
    subscriptions_changed()
