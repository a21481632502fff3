"""Soak: ``make run``'s own script (scripts/run.sh) on the embedded default for 10 minutes under a
bounded, scripted workload on loopback: support-tool requests, officer approvals, consents and
events, segment membership changes. Zero worker deaths, zero requests left unfinished, the
audit chains verify; the figures are printed at the end.

Not part of ``make test``: run it with ``make soak`` (``COMPLIANCE_SOAK=1``; CI runs it once, on
the embedded default). ``COMPLIANCE_SOAK_SECONDS`` shortens or lengthens the load (600).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from datetime import datetime

import pytest

from tests.core.test_make_run import ROOT, RunScript

pytestmark = [pytest.mark.soak, pytest.mark.slow]
SECONDS = float(os.environ.get("COMPLIANCE_SOAK_SECONDS", "600"))
INTERVAL = 1.5  # seconds between iterations: bounded load, about 400 requests in 10 minutes
TYPES = ["access", "erasure", "restriction", "portability", "objection"]
TERMINAL = {"completed", "rejected", "cancelled", "failed"}


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)] if ordered else 0.0


def test_soak_run_script_under_scripted_workload(tmp_path, capsys):
    var_dir = tmp_path / "var"
    run = RunScript(var_dir=var_dir, log=tmp_path / "run.log")
    made: dict[str, str] = {}  # request id -> type
    finished: dict[str, dict] = {}
    figures = {"consents": 0, "events": 0, "membership_calls": 0, "approvals": 0, "errors": []}
    try:
        run.wait_serving()
        tool = (
            run.manage(
                "create_api_client",
                "soak-support-tool",
                "--scopes",
                "dsar:write,dsar:read,consent:write,events:write,segments:read,segments:write",
            )
            .strip()
            .splitlines()[-1]
        )
        officer = (
            run.manage(
                "create_api_client",
                "soak-officer",
                "--scopes",
                "dsar:approve,dsar:read",
                "--user",
                "officer",
            )
            .strip()
            .splitlines()[-1]
        )

        def expect(ok: bool, what: str) -> None:
            if not ok:
                figures["errors"].append(what)

        def poll() -> None:
            for request_id in [r for r in made if r not in finished]:
                status, body = run.get(f"/api/v1/requests/{request_id}/", token=tool)
                if status == 200 and json.loads(body)["status"] in TERMINAL:
                    finished[request_id] = json.loads(body)

        started = time.monotonic()
        i = 0
        while time.monotonic() - started < SECONDS:
            tick = time.monotonic()
            i += 1
            eu = i % 2 == 0
            email = f"soak-{i}@example.org"
            jurisdiction = "FR" if eu else "US-CA"
            status, body = run.post(
                "/api/v1/consents/",
                {
                    "identifier": {"type": "email", "value": email},
                    "jurisdiction": jurisdiction,
                    "source": "web",
                    "decisions": [
                        {"purpose": p, "decision": "granted"}
                        for p in ("storage", "measurement", "audience_segmentation")
                    ],
                },
                token=tool,
            )
            expect(status == 201, f"consent {status} {body}")
            figures["consents"] += 1
            event = {
                "source": "web",
                "identifiers": [{"type": "email", "value": email}],
                "event": "page_view",
                "properties": {"path": f"/pricing/{i}"},
                "time": datetime.now().astimezone().isoformat(),
                "purpose": "measurement",
                "jurisdiction": jurisdiction,
            }
            status, body = run.post("/api/v1/events/", {"events": [event, event]}, token=tool)
            expect(status in (200, 201, 207), f"events {status} {body}")
            figures["events"] += 2
            if i % 2 == 1:
                changes = {"enters": [{"identifier_type": "email", "value": email}]}
                if i > 10 and i % 4 == 1:
                    changes["exits"] = [
                        {"identifier_type": "email", "value": f"soak-{i - 10}@example.org"}
                    ]
                status, body = run.post(
                    "/api/v1/segments/demo-engaged-readers/memberships/", changes, token=tool
                )
                expect(status in (200, 201, 207), f"memberships {status} {body}")
                figures["membership_calls"] += 1
            kind = TYPES[i % len(TYPES)]
            opened = {
                "type": kind,
                "regulation": "gdpr" if eu else "ccpa",
                "identifiers": [{"type": "email", "value": f"soak-{max(1, i - 1)}@example.org"}],
                "verification_method": "email_confirmation",
                "jurisdiction": jurisdiction,
            }
            if kind == "objection":
                opened["purposes"] = ["measurement"]
            status, body = run.post("/api/v1/requests/", opened, token=tool)
            expect(status == 201, f"request {status} {body}")
            if status == 201:
                made[body["id"]] = kind
                if body["status"] == "awaiting_approval":
                    status, approved = run.post(
                        f"/api/v1/requests/{body['id']}/approve/", {}, token=officer
                    )
                    expect(status == 200, f"approve {status} {approved}")
                    figures["approvals"] += 1
            if i % 5 == 0:
                poll()
                expect(run.get("/health/")[0] == 200, "health")
            time.sleep(max(0.0, INTERVAL - (time.monotonic() - tick)))

        deadline = time.monotonic() + 300
        while len(finished) < len(made) and time.monotonic() < deadline:
            poll()
            time.sleep(1)
        output = run.output
        run.ctrl_c()
    finally:
        run.kill()

    worker_log = (var_dir / "worker.log").read_text()
    verify = subprocess.run(
        [sys.executable, "manage.py", "audit_verify"],
        cwd=ROOT,
        env=run.env,
        capture_output=True,
        text=True,
    )
    completed = [r for r in finished.values() if r["status"] == "completed"]
    durations = [
        (_when(r["completed_at"]) - _when(r["received_at"])).total_seconds() for r in completed
    ]
    summary = {
        "seconds": SECONDS,
        "iterations": i,
        "requests_made": len(made),
        "requests_completed": len(completed),
        "requests_unfinished": len(made) - len(finished),
        "requests_other_terminal": {
            s: sum(1 for r in finished.values() if r["status"] == s)
            for s in TERMINAL - {"completed"}
        },
        "p50_completion_s": round(sorted(durations)[len(durations) // 2], 2) if durations else 0,
        "p99_completion_s": round(_p99(durations), 2),
        "max_completion_s": round(max(durations), 2) if durations else 0,
        "officer_approvals": figures["approvals"],
        "consent_calls": figures["consents"],
        "events_sent": figures["events"],
        "membership_calls": figures["membership_calls"],
        "worker_deaths": output.count("the Celery worker stopped"),
        "worker_starts": worker_log.count("=== worker started"),
        "audit_verify_exit": verify.returncode,
        "client_errors": len(figures["errors"]),
    }
    with capsys.disabled():
        print("\nSOAK FIGURES " + json.dumps(summary, indent=1))
    (tmp_path / "soak-figures.json").write_text(json.dumps(summary, indent=1))
    assert summary["worker_deaths"] == 0 and summary["worker_starts"] == 1, output[-3000:]
    assert summary["requests_unfinished"] == 0, summary
    assert len(completed) == len(made), summary  # nothing failed, nothing rejected
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert not figures["errors"], figures["errors"][:10]
    assert "Unrecoverable error" not in worker_log
