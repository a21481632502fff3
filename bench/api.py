"""The HTTP API under gunicorn vs a minimal DRF view, side by side in one server.

    python -m bench api [--rounds 300] [--warmup 20] [--clients 8,16] [--seconds 10]
                        [--slices 10] [--subjects 160] [--json PATH]

Needs PostgreSQL (``DATABASE_URL``, ``DATABASE_URL_EU``, ``DATABASE_URL_US``; exit 2 without)
and a broker the requests can publish to (``CELERY_BROKER_URL``, a scratch Redis database: no
worker runs, the published tasks stay there). Setup (not timed): throwaway migrated databases
per alias (``<NAME>_test``), the runtime role of ``db_roles`` (``bapi_runtime``, dropped
afterwards) with its grants, a table ``bench_api_baseline`` on ``default``, an API client made
by ``create_api_client`` (consent, events and DSAR scopes), ``--subjects`` EU subjects (``FR``)
with a ``measurement`` grant on ``web``. Then ``manage.py check --deploy`` and gunicorn as
``make serve`` runs it (``config/gunicorn.conf.py``, 2 sync workers, production settings, the
runtime role, persistent connections) on ``bench.api_settings``: the project's URLs plus the
baseline, and a middleware that answers each request's statements, savepoint statements and
new connections per database alias in ``X-Bench-*`` headers (``bench/api_middleware.py``).

Endpoints (the bodies of ``compliance/api/examples.py``):

* **baseline** ``POST /api/bench/baseline/``: a DRF ``APIView`` with the API's token
  authentication, scope permission and throttle that inserts one row (``bench/api_urls.py``);
* **consents (existing subject)** ``POST /api/v1/consents/``: a ``measurement`` grant on ``web``;
* **consents (new subject)**: the same for a new email every time (the subject is created);
* **events (10)** ``POST /api/v1/events/``: 10 ``page_view`` events of 10 granted subjects,
  each with a client event id (all must be accepted);
* **lookup** ``POST /api/v1/subjects/lookup``: by email;
* **access request** ``POST /api/v1/requests/``: a GDPR access request for an existing subject
  with a fresh ``Idempotency-Key`` (opened, verification recorded, processing task published).

Latency: ``--warmup`` rounds (not counted), then ``--rounds`` rounds of one request to every
endpoint, in an order that rotates each round, one client, a new connection per request.
Throughput: ``N`` client threads for each of ``--clients`` for baseline, consents (existing)
and events, ``--seconds`` each, in ``--slices`` slices whose order rotates by one each slice
(a drift in machine load hits all three alike; each slice's rate against the baseline's slice
next to it is printed too, min / median / max, so that the spread shows). The client runs on
the same cores as the server and PostgreSQL. Any non-2xx answer stops the benchmark with its
body.

Targets: p50 at most 2.0x the baseline's for consents (existing subject) and events (10), 4.0x
for a new subject, 3.0x for an access request, 1.5x for lookup; at 8 clients, consents and
events at least 0.5x the baseline's requests per second. Figures: ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from io import StringIO

from bench import bench_databases, machine, seed_granted
from bench.api_endpoints import Endpoint, endpoints_build
from bench.api_server import (
    PROXY,
    BenchError,
    Reply,
    call,
    databases_prepare,
    gunicorn,
    password_new,
)
from bench.api_server import runtime_role_drop as _role_drop

SCOPES = "consent:write,consent:read,events:write,dsar:write,dsar:read"
ALIASES = ("default", "eu", "us")
THROUGHPUT = ("baseline", "consent", "events")
THROUGHPUT_TARGET = 0.5


@dataclass
class Samples:
    seconds: list[float] = field(default_factory=list)
    counts: dict[str, list[dict[str, int]]] = field(
        default_factory=lambda: {"statements": [], "savepoints": [], "connections": []}
    )


def main(argv: list[str]) -> int:
    from django.db import connections

    parser = argparse.ArgumentParser(prog="python -m bench api")
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--clients", default="8,16", help="client threads, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--slices", type=int, default=10, help="interleaved slices per endpoint")
    parser.add_argument("--subjects", type=int, default=160)
    parser.add_argument("--json", help="also write the figures as JSON to this file")
    args = parser.parse_args(argv)
    args.clients = [int(c) for c in args.clients.split(",") if c.strip()]
    if any(connections[a].vendor != "postgresql" for a in ALIASES):
        print(
            "bench api needs PostgreSQL for every alias: set DATABASE_URL, DATABASE_URL_EU "
            "and DATABASE_URL_US (postgresql://...)"
        )
        return 2
    if args.slices < 1:
        parser.error("--slices must be at least 1")
    if any(args.subjects % c or args.subjects < 10 * c for c in [*args.clients, 1]):
        parser.error("--subjects must be a multiple of every --clients value, at least 10x it")
    for alias in ALIASES:  # throwaway databases named after the configured ones
        test = connections[alias].settings_dict.setdefault("TEST", {})
        test.setdefault("NAME", f"{connections[alias].settings_dict['NAME']}_test")
    try:
        with bench_databases():
            return _run(args)
    except BenchError as error:
        print(f"ERROR: {error}")
        return 1
    finally:
        _role_drop()


def _run(args) -> int:
    started = time.perf_counter()
    token, emails = _seed(subjects=args.subjects)
    urls = databases_prepare(password=password_new())
    endpoints = endpoints_build(emails)
    print(f"machine: {machine()}")
    print(
        f"setup: {len(emails)} EU subjects with a measurement grant, API client, runtime role, "
        f"baseline table in {time.perf_counter() - started:.1f}s"
    )
    with gunicorn(urls=urls) as port:
        send = _sender(port=port, token=token)
        _latency(send, endpoints, rounds=args.warmup, start=0)
        started = time.perf_counter()
        samples = _latency(send, endpoints, rounds=args.rounds, start=args.warmup)
        print(
            f"latency: {args.rounds} rounds of {len(endpoints)} requests in "
            f"{time.perf_counter() - started:.1f}s after {args.warmup} warm-up rounds "
            "(1 client, gunicorn 2 sync workers, production settings, runtime role)"
        )
        latency = _latency_table(endpoints, samples)
        by_key = {e.key: e for e in endpoints}
        throughput = {
            clients: _throughput(
                send, [by_key[k] for k in THROUGHPUT], clients, args.seconds, args.slices
            )
            for clients in args.clients
        }
    _throughput_table(throughput, by_key)
    _verdicts(latency, throughput, endpoints)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"latency": latency, "throughput": throughput}, fh, indent=2)
    return 0


def _seed(*, subjects: int) -> tuple[str, list[str]]:
    """An API client (its token) and ``subjects`` EU subjects with a ``measurement`` grant."""
    from django.core.management import call_command

    out = StringIO()
    call_command("create_api_client", "bench-api", scopes=SCOPES, stdout=out)
    token = out.getvalue().strip().splitlines()[-1]
    emails = [f"bench{i}@example.fr" for i in range(subjects)]
    seed_granted(emails=emails)
    return token, emails


def _sender(*, port: int, token: str) -> Callable[..., Reply]:
    """``send(endpoint, index, stride=1)``: one checked request; a wrong answer stops the bench."""
    base = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        **PROXY,
    }

    def send(endpoint: Endpoint, index: int, stride: int = 1) -> Reply:
        body, extra = endpoint.request(index, stride)
        reply = call(
            port=port,
            method="POST",
            path=endpoint.path,
            body=json.dumps(body).encode(),
            headers={**base, **extra},
        )
        if reply.status != endpoint.expect:
            problem = f"HTTP {reply.status} (expected {endpoint.expect})"
        else:
            problem = endpoint.check(json.loads(reply.body))
        if problem:
            raise BenchError(
                f"{endpoint.label}: {problem} from POST {endpoint.path}\n"
                f"request: {json.dumps(body)[:1000]}\n"
                f"answer: {reply.body[:2000].decode(errors='replace')}"
            )
        return reply

    return send


def _latency(send, endpoints: list[Endpoint], *, rounds: int, start: int) -> dict[str, Samples]:
    """``rounds`` rounds of one request per endpoint, the order rotating by one each round."""
    from bench.api_middleware import HEADERS

    samples = {e.key: Samples() for e in endpoints}
    for number in range(start, start + rounds):
        shift = number % len(endpoints)
        for endpoint in endpoints[shift:] + endpoints[:shift]:
            reply = send(endpoint, number)
            found = samples[endpoint.key]
            found.seconds.append(reply.seconds)
            for kind, header in HEADERS.items():
                found.counts[kind].append(_per_alias(reply.headers[header.lower()]))
    return samples


def _per_alias(header: str) -> dict[str, int]:
    pairs = (item.split("=") for item in header.split(";"))
    return {alias: int(value) for alias, value in pairs}


def _latency_table(endpoints: list[Endpoint], samples: dict[str, Samples]) -> dict:
    """Print the latency table; the figures by endpoint."""
    out = {}
    for endpoint in endpoints:
        found = samples[endpoint.key]
        ms = sorted(s * 1000 for s in found.seconds)
        cuts = statistics.quantiles(ms, n=100, method="inclusive")

        def per_alias(kind: str, summary, counts=found.counts) -> dict[str, float]:
            return {a: summary([c[a] for c in counts[kind]]) for a in ALIASES}

        out[endpoint.key] = {
            "label": endpoint.label,
            "p50_ms": statistics.median(ms),
            "p95_ms": cuts[94],
            "p99_ms": cuts[98],
            "target": endpoint.target,
            "statements_median": per_alias("statements", statistics.median),
            "savepoints_median": per_alias("savepoints", statistics.median),
            "connections_mean": per_alias("connections", statistics.mean),
        }
    base = out["baseline"]["p50_ms"]
    print(
        f"{'endpoint':<28} {'p50':>7} {'p95':>7} {'p99':>7} {'x base':>7} {'target':>7}  "
        f"{'statements':>14} {'savepoints':>12} {'connections':>16}"
    )
    print(f"{'':<28} {'ms':>7} {'ms':>7} {'ms':>7} {'p50':>7} {'':>7}  {'default/eu/us (median)':>43} "
          f"{'(mean)':>10}")  # fmt: skip
    for row in out.values():
        row["ratio"] = row["p50_ms"] / base
        target = f"<= {row['target']:.1f}" if row["target"] else ""
        statements = "/".join(f"{v:g}" for v in row["statements_median"].values())
        savepoints = "/".join(f"{v:g}" for v in row["savepoints_median"].values())
        conns = "/".join(f"{v:.2f}" for v in row["connections_mean"].values())
        print(
            f"{row['label']:<28} {row['p50_ms']:7.1f} {row['p95_ms']:7.1f} {row['p99_ms']:7.1f} "
            f"{row['ratio']:6.2f}x {target:>7}  {statements:>14} {savepoints:>12} {conns:>16}"
        )
    return out


def _throughput(send, endpoints: list[Endpoint], clients: int, seconds: float, slices: int) -> dict:
    """Requests per second of each endpoint with ``clients`` threads: ``seconds`` each, in
    ``slices`` slices, the order rotating by one each slice, so that a drift in machine load
    hits every endpoint alike; also each slice's rate (``per_slice``, in order)."""
    done = {e.key: [0, 0.0, []] for e in endpoints}
    for number in range(slices):
        shift = number % len(endpoints)
        for endpoint in endpoints[shift:] + endpoints[:shift]:
            requests, elapsed = _clients_run(
                send, endpoint, clients=clients, seconds=seconds / slices
            )
            done[endpoint.key][0] += requests
            done[endpoint.key][1] += elapsed
            done[endpoint.key][2].append(requests / elapsed)
    return {
        key: {"requests": n, "seconds": s, "per_second": n / s, "per_slice": rates}
        for key, (n, s, rates) in done.items()
    }


def _clients_run(send, endpoint: Endpoint, *, clients: int, seconds: float) -> tuple[int, float]:
    """``clients`` threads sending back to back until ``seconds`` have passed; thread ``t``
    uses indexes congruent to ``t`` modulo ``clients`` (its own subjects)."""
    stop_at = time.perf_counter() + seconds
    counts = [0] * clients
    errors: list[BaseException] = []

    def client(t: int) -> None:
        try:
            while time.perf_counter() < stop_at and not errors:
                send(endpoint, t + clients * counts[t], clients)
                counts[t] += 1
        except BaseException as error:  # noqa: BLE001 - re-raised in the main thread
            errors.append(error)

    threads = [threading.Thread(target=client, args=(t,)) for t in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return sum(counts), elapsed


def _throughput_table(throughput: dict[int, dict], by_key: dict[str, Endpoint]) -> None:
    print("throughput (requests/s; client threads on the same 2 cores; x baseline):")
    print(f"{'clients':>8}" + "".join(f"  {by_key[k].label:>30}" for k in THROUGHPUT))
    for clients, rows in throughput.items():
        base = rows["baseline"]["per_second"]
        cells = [f"{base:30.1f}"] + [
            f"{rows[k]['per_second']:22.1f} ({rows[k]['per_second'] / base:4.2f}x)"
            for k in THROUGHPUT[1:]
        ]
        print(f"{clients:>8}" + "".join(f"  {cell}" for cell in cells))
    print("x baseline slice by slice (min / median / max; each slice against the baseline's):")
    for clients, rows in throughput.items():
        spreads = [
            sorted(
                rate / base
                for rate, base in zip(
                    rows[k]["per_slice"], rows["baseline"]["per_slice"], strict=True
                )
            )
            for k in THROUGHPUT[1:]
        ]
        cells = [f"{len(spreads[0]):>24} slices"] + [
            f"{r[0]:.2f} / {statistics.median(r):.2f} / {r[-1]:.2f}".rjust(30) for r in spreads
        ]
        print(f"{clients:>8}" + "".join(f"  {cell}" for cell in cells))


def _verdicts(latency: dict, throughput: dict[int, dict], endpoints: list[Endpoint]) -> None:
    verdicts = []
    for endpoint in endpoints:
        if endpoint.target is None:
            continue
        ratio = latency[endpoint.key]["ratio"]
        verdicts.append(
            (ratio <= endpoint.target, f"p50 {endpoint.label}: {ratio:.2f}x <= {endpoint.target}x")
        )
    rows = throughput.get(8)
    for key in THROUGHPUT[1:]:
        label = next(e.label for e in endpoints if e.key == key)
        if rows is None:
            verdicts.append((False, f"throughput {label} at 8 clients: not measured (--clients)"))
            continue
        ratio = rows[key]["per_second"] / rows["baseline"]["per_second"]
        verdicts.append(
            (ratio >= THROUGHPUT_TARGET, f"throughput {label} at 8 clients: {ratio:.2f}x >= 0.5x")
        )
    for ok, text in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    met = sum(ok for ok, _ in verdicts)
    print(f"targets met: {met} of {len(verdicts)}{'' if met == len(verdicts) else ' (FAIL)'}")
