"""Feed test helpers: a real HTTP receiver on 127.0.0.1 and subscriptions pointing at it."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from compliance.audit.services.append import Actor
from compliance.feed.services.subscriptions import subscription_create
from compliance.feed.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature_valid

ACTOR = Actor.system("test")


@dataclass
class Delivery:
    received_at: float
    status: int
    headers: dict
    body: bytes

    @property
    def payload(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Records every request; ``respond(n)`` decides the status of the n-th request (0-based)
    and may sleep to simulate a slow receiver."""

    url: str = ""
    requests: list[Delivery] = field(default_factory=list)
    respond: object = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accepted(self) -> list[Delivery]:
        with self.lock:
            return [d for d in self.requests if 200 <= d.status < 300]

    def accepted_changes(self) -> list[dict]:
        return [c for d in self.accepted() for c in d.payload["changes"]]

    def verify(self, delivery: Delivery, secret: str) -> bool:
        return signature_valid(
            secret=secret,
            body=delivery.body,
            timestamp=delivery.headers.get(TIMESTAMP_HEADER),
            signature_header=delivery.headers.get(SIGNATURE_HEADER),
        )


@pytest.fixture
def receiver():
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with state.lock:
                index = len(state.requests)
            status = state.respond(index) if state.respond else 200
            delivery = Delivery(time.monotonic(), status, dict(self.headers), body)
            with state.lock:
                state.requests.append(delivery)
            try:
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except OSError:
                pass  # the sender is gone (a killed worker)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    yield state
    server.shutdown()
    server.server_close()


def subscribe(receiver: Receiver, *, types=("enter", "exit", "retract", "consent"), **kw):
    return subscription_create(
        name=kw.pop("name", "test-hook"),
        url=receiver.url,
        event_types=list(types),
        actor=ACTOR,
        **kw,
    )


@pytest.fixture
def officer(db):
    from tests.factories import StaffFactory

    return StaffFactory(username="feed-officer")
