"""Delivering the outbox to webhooks: signed JSON batches, in feed order, at least once.

Per subscription and region one run at a time owns the cursor (a lease in ``DeliveryState``,
taken with a conditional UPDATE, renewed each batch; a run on a killed worker loses it when it
expires). A run sends batches in feed (commit) order - so in order per subject - and moves the
cursor only after a 2xx answer, so a crash between sending and moving the cursor sends the
batch again: receivers deduplicate by each change's ``id``. A failed request (non-2xx,
timeout, refused connection) keeps the cursor, records the attempt and backs off
exponentially (``RETRY_BASE_SECONDS`` doubling up to ``RETRY_MAX_SECONDS``); the task retries
after that delay. Every request leaves a ``DeliveryReceipt`` (status, duration, attempt; never
the response body).
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from compliance.feed.conf import feed_settings
from compliance.feed.models import Change, DeliveryReceipt, DeliveryState, Subscription
from compliance.feed.selectors.changes import change_payload, changes_after
from compliance.feed.selectors.subscriptions import subscriptions_for_region
from compliance.feed.signing import signed_headers
from compliance.outbound import OutboundUrlError, outbound_opener, outbound_url_check
from compliance.regions import region_alias

USER_AGENT = "compliance-feed/1"


@dataclass
class DeliveryOutcome:
    delivered: int = 0
    requests: int = 0
    #: another run holds the lease (seconds until it expires)
    busy_for: float | None = None
    #: the last request failed; retry after this many seconds
    retry_in: float | None = None
    #: the run used its time budget with changes left
    more: bool = False


def backoff(*, attempts: int) -> float:
    return min(
        feed_settings.RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0),
        feed_settings.RETRY_MAX_SECONDS,
    )


def feed_deliver(*, region: str) -> dict[int, DeliveryOutcome]:
    """Deliver pending changes of ``region`` to every active subscription of the region."""
    return {
        sub.pk: subscription_deliver(region=region, subscription=sub)
        for sub in subscriptions_for_region(region=region)
    }


def _state(alias: str, subscription_id: int) -> DeliveryState:
    states = DeliveryState.objects.using(alias)
    state = states.filter(subscription_id=subscription_id).first()
    if state is None:
        try:
            with transaction.atomic(using=alias):
                state = states.create(subscription_id=subscription_id)
        except IntegrityError:
            state = states.get(subscription_id=subscription_id)
    return state


def _claim(alias: str, subscription_id: int) -> str | None:
    now = timezone.now()
    token = secrets.token_hex(8)
    taken = (
        DeliveryState.objects.using(alias)
        .filter(subscription_id=subscription_id)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(
            lease_token=token,
            lease_until=now + timedelta(seconds=feed_settings.LEASE_SECONDS),
        )
    )
    return token if taken else None


def _release(alias: str, subscription_id: int, token: str) -> None:
    DeliveryState.objects.using(alias).filter(
        subscription_id=subscription_id, lease_token=token
    ).update(lease_token="", lease_until=None)


def _pending(region: str, subscription: Subscription, state: DeliveryState, limit: int):
    return changes_after(
        region=region,
        after=state.cursor_id,
        limit=limit,
        kinds=subscription.event_types,
        segments=subscription.segments,
        since=subscription.created_at,
        arm=subscription.arm,
    )


def subscription_deliver(*, region: str, subscription: Subscription) -> DeliveryOutcome:
    """Send everything pending for ``subscription`` in ``region`` (see the module docstring)."""
    alias = region_alias(region=region)
    outcome = DeliveryOutcome()
    _state(alias, subscription.pk)
    started = time.monotonic()
    while True:
        token = _claim(alias, subscription.pk)
        if token is None:
            state = DeliveryState.objects.using(alias).get(subscription_id=subscription.pk)
            now = timezone.now()
            if state.next_attempt_at and state.next_attempt_at > now:
                outcome.retry_in = (state.next_attempt_at - now).total_seconds()
            elif state.lease_until and state.lease_until > now:
                outcome.busy_for = (state.lease_until - now).total_seconds()
            return outcome
        try:
            while True:
                if time.monotonic() - started > feed_settings.RUN_SECONDS:
                    outcome.more = True
                    return outcome
                state = DeliveryState.objects.using(alias).get(subscription_id=subscription.pk)
                if state.lease_token != token:
                    return outcome  # lease lost (expired and taken over)
                batch = _pending(region, subscription, state, feed_settings.BATCH_SIZE)
                if not batch:
                    break
                ok = _send(
                    alias=alias,
                    region=region,
                    subscription=subscription,
                    state=state,
                    batch=batch,
                    outcome=outcome,
                )
                if not ok:
                    return outcome
        finally:
            _release(alias, subscription.pk, token)
        # changes committed while we held the lease, whose own task found it taken
        state = DeliveryState.objects.using(alias).get(subscription_id=subscription.pk)
        if not _pending(region, subscription, state, 1):
            return outcome


def _send(
    *,
    alias: str,
    region: str,
    subscription: Subscription,
    state: DeliveryState,
    batch: list[Change],
    outcome: DeliveryOutcome,
) -> bool:
    batch_id = uuid.uuid4()
    attempt = state.attempts + 1
    body = json.dumps(
        {
            "batch_id": str(batch_id),
            "attempt": attempt,
            "region": region,
            "subscription": subscription.name,
            "changes": [change_payload(change=c, region=region) for c in batch],
        },
        separators=(",", ":"),
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Compliance-Batch": str(batch_id),
        "X-Compliance-Event-Id": str(batch_id),
        "X-Compliance-Attempt": str(attempt),
        **signed_headers(secret=subscription.secret, body=body),
    }
    sent_at = timezone.now()
    began = time.perf_counter()
    status, error = _post(url=subscription.url, body=body, headers=headers)
    duration = int((time.perf_counter() - began) * 1000)
    outcome.requests += 1
    DeliveryReceipt.objects.using(alias).create(
        subscription_id=subscription.pk,
        batch_id=batch_id,
        first_change_id=batch[0].pk,
        last_change_id=batch[-1].pk,
        count=len(batch),
        attempt=attempt,
        status_code=status,
        error=error[:200],
        duration_ms=duration,
        sent_at=sent_at,
    )
    states = DeliveryState.objects.using(alias).filter(
        subscription_id=subscription.pk, lease_token=state.lease_token
    )
    now = timezone.now()
    if status is not None and 200 <= status < 300:
        last = batch[-1]
        states.update(
            cursor_id=last.pk,
            attempts=0,
            next_attempt_at=None,
            last_delivered_at=now,
            delivered=F("delivered") + len(batch),
            lease_until=now + timedelta(seconds=feed_settings.LEASE_SECONDS),
        )
        outcome.delivered += len(batch)
        return True
    delay = backoff(attempts=attempt)
    states.update(attempts=attempt, next_attempt_at=now + timedelta(seconds=delay))
    outcome.retry_in = delay
    return False


def _post(*, url: str, body: bytes, headers: dict) -> tuple[int | None, str]:
    """POST and return (status code, error); the response body is read and dropped."""
    try:
        outbound_url_check(url=url)  # again at delivery: the name may resolve elsewhere now
    except OutboundUrlError as exc:
        return None, f"refused: {exc}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with outbound_opener.open(request, timeout=feed_settings.HTTP_TIMEOUT) as response:
            response.read(65536)
            return response.status, ""
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code, ""
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, f"{type(exc).__name__}: {reason}"
