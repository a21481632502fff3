"""10,000 membership changes committed in batches, delivered by a real worker to a local
receiver: changes/s delivered and commit-to-receipt latency (p50, p99).

``python -m bench feed_delivery [N] [--batch B]``

* setup (not timed): N/2 consented subjects in ``eu`` (COPY, as in ``segments_apply``), an
  active ``behavioral`` segment, a webhook subscription pointing at an HTTP receiver started
  by the bench on 127.0.0.1, and a real Celery worker on ``compliance.eu``;
* measured: N/2 enters then N/2 exits through ``memberships_apply`` in batches of B subjects
  (one region transaction each: memberships, audit entries and outbox rows commit together;
  delivery is enqueued on commit). Each change's latency is the receiver's clock at receipt
  minus the wall clock right after its batch committed; throughput is N divided by the time
  from the first commit to the last receipt;
* baselines in the same run: (a) the receiver's own ceiling - the same number of requests with
  bodies of the same size posted in a plain loop (no database, no signing); (b) the outbox's
  cost on the commit path - ``memberships_apply`` of the same enters into another segment with
  the outbox write replaced by a no-op, against the same call with the outbox.

Target (issue 8): a change committed is delivered within 2 seconds under normal load.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench import bench_databases, machine


class _Receiver:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: dict[str, float] = {}
        self.requests = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                now = time.time()
                changes = json.loads(body).get("changes", [])
                with receiver.lock:
                    receiver.requests += 1
                    for change in changes:
                        receiver.seen.setdefault(change["id"], now)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def count(self) -> int:
        with self.lock:
            return len(self.seen)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main(argv) -> int:
    parser = argparse.ArgumentParser(prog="bench feed_delivery")
    parser.add_argument("n", nargs="?", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args(argv)

    from django.db import connections

    if connections["eu"].vendor != "postgresql":
        print("feed_delivery seeds with COPY: run it with DATABASE_URL* on PostgreSQL")
        return 2

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db.models import Max

    from bench.segments_apply import _seed
    from compliance.audit.services.append import Actor
    from compliance.feed.models import Change, DeliveryReceipt, SubscriptionArm
    from compliance.feed.services import outbox
    from compliance.feed.services.subscriptions import subscription_create, subscription_save
    from compliance.roles import PRIVACY_OFFICER
    from segments.services import memberships
    from segments.services.definitions import segment_activate, segment_approve, segment_create
    from tests.conftest import WorkerProcess, purge_queues

    actor = Actor.system("bench")
    half = args.n // 2
    with bench_databases():
        officer = get_user_model().objects.create_user("bench-officer", is_staff=True)
        officer.groups.add(Group.objects.get(name=PRIVACY_OFFICER))
        officer = get_user_model().objects.get(pk=officer.pk)

        def segment(key: str):
            created = segment_create(
                key=key,
                name=key,
                layers=["behavioral"],
                owner=officer,
                motion="campaign",
                measurement_metric="conversion",
                control_group_share="0.1",
                user=officer,
            )
            return segment_activate(
                segment=segment_approve(segment=created, user=officer), user=officer
            )

        feed_segment, plain_segment, outbox_segment = (
            segment("bench-feed"),
            segment("bench-plain"),
            segment("bench-outbox"),
        )
        ids = _seed(half, list(feed_segment.required_purposes))
        receiver = _Receiver()
        purge_queues()
        log = Path(tempfile.mkdtemp()) / "worker.log"
        worker = WorkerProcess(queues=["compliance.eu"], regions=["eu"], log=log)
        subscription, _ = subscription_create(
            name="bench",
            url=receiver.url,
            event_types=["enter", "exit", "retract"],
            actor=actor,
            segments=[feed_segment.key],
            # both holdout arms (a measurement tool's subscription): every change must arrive
            arm=SubscriptionArm.ALL,
        )
        try:
            batches = [ids[i : i + args.batch] for i in range(0, half, args.batch)]
            committed: list[tuple[int, float]] = []  # (highest change pk, wall time)
            started = time.time()
            for batch in batches:
                memberships.memberships_apply(
                    segment=feed_segment, enters=batch, exits=[], actor=actor
                )
                committed.append(
                    (Change.objects.using("eu").aggregate(m=Max("id"))["m"], time.time())
                )
            for batch in batches:
                memberships.memberships_apply(
                    segment=feed_segment, enters=[], exits=batch, actor=actor
                )
                committed.append(
                    (Change.objects.using("eu").aggregate(m=Max("id"))["m"], time.time())
                )
            commit_seconds = time.time() - started
            deadline = time.monotonic() + 180
            while receiver.count() < args.n and time.monotonic() < deadline:
                time.sleep(0.05)
            delivered = receiver.count()
        finally:
            worker.stop()
            receiver.close()
        pk_of = dict(
            Change.objects.using("eu")
            .filter(segment_key=feed_segment.key)
            .values_list("change_id", "id")
        )
        latencies = []
        for change_id, received in receiver.seen.items():
            pk = pk_of[__import__("uuid").UUID(change_id)]
            commit_time = next(t for top, t in committed if top >= pk)
            latencies.append(received - commit_time)
        last = max(receiver.seen.values())
        rate = delivered / (last - started)
        requests = (
            DeliveryReceipt.objects.using("eu").filter(subscription_id=subscription.pk).count()
        )

        # --- baseline (a): the receiver's ceiling with a plain loop of the same requests ----
        body = json.dumps(
            {"changes": [{"id": str(i), "type": "enter", "x": "y" * 150} for i in range(500)]}
        ).encode()
        loops = max(1, requests)
        began = time.perf_counter()
        probe = _Receiver()
        for _ in range(loops):
            request = urllib.request.Request(probe.url, data=body, method="POST")
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
        raw_seconds = time.perf_counter() - began
        probe.close()
        raw_rate = loops * 500 / raw_seconds

        # --- baseline (b): commit path with and without the outbox --------------------------
        subscription.is_active = False
        subscription_save(subscription=subscription, actor=actor, changed=["is_active"])
        real = memberships.membership_changes_record
        memberships.membership_changes_record = lambda **kwargs: 0
        try:
            began = time.perf_counter()
            for batch in batches:
                memberships.memberships_apply(
                    segment=plain_segment, enters=batch, exits=[], actor=actor
                )
            plain_seconds = time.perf_counter() - began
        finally:
            memberships.membership_changes_record = real
        began = time.perf_counter()
        for batch in batches:
            memberships.memberships_apply(
                segment=outbox_segment, enters=batch, exits=[], actor=actor
            )
        outbox_seconds = time.perf_counter() - began
        assert outbox.RETRACT_REASONS  # the module under test is the real one

    print(f"machine: {machine()}")
    print(f"changes: {args.n:,} ({half:,} enters + {half:,} exits) in batches of {args.batch}")
    print(f"committed in {commit_seconds:.2f}s ({args.n / commit_seconds:,.0f} changes/s)")
    print(f"delivered: {delivered:,} of {args.n:,} in {requests} signed requests")
    print(f"delivered throughput: {rate:,.0f} changes/s (first commit to last receipt)")
    print(
        f"commit-to-receipt latency: p50 {statistics.median(latencies) * 1000:,.0f} ms, "
        f"p99 {_percentile(latencies, 0.99) * 1000:,.0f} ms, "
        f"max {max(latencies) * 1000:,.0f} ms"
    )
    print(
        f"baseline (a) receiver ceiling, plain POST loop: {raw_rate:,.0f} changes/s; "
        f"feed / ceiling = {rate / raw_rate:.2f}"
    )
    print(
        f"baseline (b) memberships_apply {half:,} enters: without outbox {plain_seconds:.2f}s, "
        f"with outbox {outbox_seconds:.2f}s; ratio {outbox_seconds / plain_seconds:.2f}"
    )
    ok = delivered == args.n and _percentile(latencies, 0.99) < 2.0
    print(f"target p99 < 2 s and nothing lost: {'met' if ok else 'NOT met'}")
    return 0 if delivered == args.n else 1
