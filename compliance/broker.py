"""The embedded broker: a kombu transport on plain files that cannot lose, double or choke on a
message. Used by ``make run`` and the embedded default (``CELERY_BROKER_URL=embedded://``);
production keeps Redis or RabbitMQ.

Layout under ``data_folder`` (``var/broker/`` by default)::

    tmp/                      messages being written (never read)
    queues/<queue>/           ready messages, one file each, oldest name first
    claimed/<owner>/          messages a consumer took and has not acknowledged yet
    exchanges/<name>.json     fanout/topic bindings (written the same way)

The rules that make it safe, where kombu's ``filesystem://`` transport is not (it creates the
file, then writes it, so a consumer can read it empty and the worker dies on the JSON):

* **A message appears whole or not at all.** It is written and flushed under ``tmp/``, then
  renamed into its queue's folder (``rename`` is atomic on one filesystem).
* **One consumer takes it.** Taking is a rename from the queue folder into the consumer's
  ``claimed/<owner>/`` folder; of two consumers racing for a file exactly one rename succeeds.
* **Nothing is lost when a consumer dies.** The file stays claimed until the message is
  acknowledged (deleted) or rejected/restored (renamed back). Every consumer regularly moves
  the claims of owners that no longer run (process gone, or its pid reused by another process:
  the owner name carries the process start time) back to their queue, so the task of a worker
  killed with ``kill -9`` is delivered again (tasks are idempotent and acknowledge late).
* **An unreadable file is not fatal.** A file that cannot be decoded is put back and skipped
  for now (it cannot happen with the rules above, but a disk error must not kill a worker);
  after a minute of failing it is moved to ``broken/`` and logged, never silently dropped.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import time
import uuid
from pathlib import Path
from queue import Empty

from kombu.transport import virtual

logger = logging.getLogger(__name__)

_SAFE = re.compile(r"[^A-Za-z0-9._@-]")
_UNREADABLE_GRACE = 60.0


def _folder_name(name: str) -> str:
    cleaned = _SAFE.sub("_", name) or "_"
    return cleaned if cleaned.strip(".") else f"_{cleaned}"


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), or "" elsewhere; None when
    no such process runs."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read().decode(errors="replace")
        return stat.rsplit(")", 1)[1].split()[19]
    except FileNotFoundError:
        return None
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return ""


def _owner_name() -> str:
    pid = os.getpid()
    return f"{socket.gethostname()}~{pid}~{_start_time(pid) or ''}"


def _owner_alive(owner: str) -> bool:
    try:
        host, pid, started = owner.rsplit("~", 2)
    except ValueError:
        return True  # not ours: leave it alone
    if host != socket.gethostname():
        return True  # another machine's claim: its own consumers restore it
    current = _start_time(int(pid))
    return current is not None and (not started or not current or current == started)


def write_atomically(path: Path, data: bytes, *, tmp_dir: Path) -> None:
    """Write ``data`` to ``path`` so that readers see either nothing or all of it."""
    tmp = tmp_dir / f"{uuid.uuid4().hex}.tmp"
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class Channel(virtual.Channel):
    supports_fanout = True
    #: how often (seconds) a consumer looks for claims of dead owners
    restore_interval = 2.0

    def __init__(self, connection, **kwargs):
        super().__init__(connection, **kwargs)
        options = self.connection.client.transport_options
        root = Path(options.get("data_folder") or "broker")
        self.root = root
        self.tmp_dir = root / "tmp"
        self.queues_dir = root / "queues"
        self.claimed_root = root / "claimed"
        self.exchanges_dir = root / "exchanges"
        self.broken_dir = root / "broken"
        for folder in (self.tmp_dir, self.queues_dir, self.claimed_root, self.exchanges_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self._claim_dir: Path | None = None
        self._claim_pid: int | None = None
        self._claims: dict[str, tuple[Path, Path]] = {}  # delivery tag -> (claimed, queue dir)
        self._no_ack_queues: set[str] = set()
        self._unreadable: dict[str, float] = {}
        self._next_restore = 0.0
        self._listed: dict[str, list[str]] = {}  # queue -> names still to try, oldest last

    # --- helpers ---------------------------------------------------------------------------
    def _queue_dir(self, queue: str) -> Path:
        folder = self.queues_dir / _folder_name(queue)
        folder.mkdir(exist_ok=True)
        return folder

    def _my_claims(self) -> Path:
        # a forked child must not reuse its parent's folder: the owner is the process
        if self._claim_dir is None or self._claim_pid != os.getpid():
            self._claim_pid = os.getpid()
            self._claim_dir = self.claimed_root / _owner_name()
            self._claim_dir.mkdir(parents=True, exist_ok=True)
            self._claims = {}
        return self._claim_dir

    def restore_dead_claims(self) -> int:
        """Put the messages claimed by consumers that no longer run back in their queues."""
        restored = 0
        try:
            owners = list(os.scandir(self.claimed_root))
        except FileNotFoundError:
            return 0
        mine = self._claim_dir.name if self._claim_dir is not None else None
        for owner in owners:
            try:
                if owner.name == mine or not owner.is_dir() or _owner_alive(owner.name):
                    continue
                entries = list(os.scandir(owner.path))
            except (OSError, ValueError):
                continue  # gone meanwhile (another consumer restored it), or not an owner
            for entry in entries:
                queue, _, name = entry.name.partition("~")
                if not name:
                    continue
                try:
                    os.rename(entry.path, self._queue_dir(queue) / name)
                    restored += 1
                except FileNotFoundError:
                    continue  # another consumer restored it first
            try:
                os.rmdir(owner.path)
            except OSError:
                pass
        if restored:
            logger.warning(
                "embedded broker: %s message(s) of a stopped consumer requeued", restored
            )
        self._sweep_tmp()
        return restored

    def _sweep_tmp(self, older_than: float = 3600.0) -> None:
        """Remove what producers that died while writing left in ``tmp/`` (never delivered)."""
        limit = time.time() - older_than
        try:
            entries = list(os.scandir(self.tmp_dir))
        except FileNotFoundError:
            return
        for entry in entries:
            try:
                if entry.stat().st_mtime < limit:
                    os.unlink(entry.path)
            except FileNotFoundError:
                pass

    # --- the virtual transport's storage interface ---------------------------------------
    def _put(self, queue, message, **kwargs):
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex}.msg"
        write_atomically(
            self._queue_dir(queue) / name, json.dumps(message).encode(), tmp_dir=self.tmp_dir
        )

    def _get(self, queue, timeout=None):
        now = time.monotonic()
        if now >= self._next_restore:
            self._next_restore = now + self.restore_interval
            self.restore_dead_claims()
        folder = self._queue_dir(queue)
        names = self._listed.get(queue)
        if not names:
            # one listing serves many gets (a long queue is not listed once per message)
            names = sorted((n for n in os.listdir(folder) if n.endswith(".msg")), reverse=True)
            self._listed[queue] = names
        claims = self._my_claims()
        while names:
            name = names.pop()
            claimed = claims / f"{_folder_name(queue)}~{name}"
            try:
                os.rename(folder / name, claimed)
            except FileNotFoundError:
                continue  # another consumer took it
            try:
                payload = json.loads(claimed.read_bytes())
                tag = payload["properties"]["delivery_tag"]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                self._unreadable_later(claimed, folder / name, exc)
                continue
            self._unreadable.pop(name, None)
            if queue in self._no_ack_queues:
                claimed.unlink(missing_ok=True)
            else:
                self._claims[tag] = (claimed, folder)
            return payload
        raise Empty()

    def _unreadable_later(self, claimed: Path, back: Path, exc: Exception) -> None:
        first = self._unreadable.setdefault(back.name, time.monotonic())
        if time.monotonic() - first < _UNREADABLE_GRACE:
            os.replace(claimed, back)  # not ready: leave it for a later poll
            return
        self.broken_dir.mkdir(exist_ok=True)
        os.replace(claimed, self.broken_dir / back.name)
        self._unreadable.pop(back.name, None)
        logger.error("embedded broker: unreadable message moved to %s (%s)", self.broken_dir, exc)

    def _size(self, queue):
        try:
            return sum(1 for n in os.listdir(self._queue_dir(queue)) if n.endswith(".msg"))
        except FileNotFoundError:
            return 0

    def _purge(self, queue):
        self._listed.pop(queue, None)
        count = 0
        folder = self._queue_dir(queue)
        for name in os.listdir(folder):
            try:
                os.unlink(folder / name)
                count += 1
            except FileNotFoundError:
                pass
        return count

    def _delete(self, queue, *args, **kwargs):
        super()._delete(queue, *args, **kwargs)
        if args and args[0]:
            self._binding_change(args[0], queue=queue)

    # --- acknowledgements: only now does a claimed file go away ----------------------------
    def basic_consume(self, queue, no_ack, callback, consumer_tag, **kwargs):
        if no_ack:
            self._no_ack_queues.add(queue)
        return super().basic_consume(queue, no_ack, callback, consumer_tag, **kwargs)

    def basic_get(self, queue, no_ack=False, **kwargs):
        if no_ack:
            self._no_ack_queues.add(queue)
            try:
                return super().basic_get(queue, no_ack=no_ack, **kwargs)
            finally:
                self._no_ack_queues.discard(queue)
        return super().basic_get(queue, no_ack=no_ack, **kwargs)

    def basic_ack(self, delivery_tag, multiple=False):
        super().basic_ack(delivery_tag, multiple=multiple)
        claim = self._claims.pop(delivery_tag, None)
        if claim is not None:
            claim[0].unlink(missing_ok=True)

    def basic_reject(self, delivery_tag, requeue=False):
        super().basic_reject(delivery_tag, requeue=requeue)
        claim = self._claims.pop(delivery_tag, None)
        if claim is not None and not requeue:
            claim[0].unlink(missing_ok=True)

    def _restore(self, message):
        """Unacknowledged message (rejected with requeue, or left at shutdown): the claimed
        file goes back to its queue as it was, never a second copy."""
        claim = self._claims.pop(message.delivery_tag, None)
        if claim is None or self._claim_pid != os.getpid():
            if claim is None:
                return super()._restore(message)
            return None  # a forked child never restores its parent's claims
        claimed, folder = claim
        try:
            os.rename(claimed, folder / claimed.name.partition("~")[2])
        except FileNotFoundError:
            pass

    # --- bindings shared between processes (fanout: Celery's remote control) --------------
    def _exchange_file(self, exchange: str) -> Path:
        return self.exchanges_dir / f"{_folder_name(exchange or '_default')}.json"

    def get_table(self, exchange):
        try:
            return [tuple(row) for row in json.loads(self._exchange_file(exchange).read_bytes())]
        except FileNotFoundError:
            return []
        except ValueError:
            return []  # cannot happen (atomic writes); an empty table is not fatal

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        self._binding_change(exchange, add=(routing_key or "", pattern or "", queue or ""))

    def _binding_change(self, exchange, *, add=None, queue=None) -> None:
        import fcntl  # POSIX only: imported where the lock is taken, not on module import

        path = self._exchange_file(exchange)
        with open(self.exchanges_dir / ".lock", "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            rows = [tuple(r) for r in self.get_table(exchange)]
            if add is not None and tuple(add) not in rows:
                rows.insert(0, tuple(add))
            elif add is None:
                rows = [r for r in rows if r[2] != queue]
            write_atomically(path, json.dumps(rows).encode(), tmp_dir=self.tmp_dir)

    def _put_fanout(self, exchange, message, routing_key, **kwargs):
        for row in self.get_table(exchange):
            self._put(row[2], message, **kwargs)


class Transport(virtual.Transport):
    """``embedded://``: see the module docstring."""

    Channel = Channel
    implements = virtual.Transport.implements.extend(
        asynchronous=False, exchange_type=frozenset(["direct", "topic", "fanout"])
    )
    global_state = virtual.BrokerState()
    default_port = 0
    driver_type = "embedded"
    driver_name = "embedded"

    def __init__(self, client, **kwargs):
        super().__init__(client, **kwargs)
        self.state = self.global_state

    @property
    def default_connection_params(self):
        # no hostname: a file broker has none (and kombu then does not warn about it)
        return {"port": self.default_port}

    def driver_version(self):
        return "1"

    def drain_events(self, connection, timeout=None):
        """As kombu's, but while a consumer waits only for its own acknowledgement (prefetch
        full) it looks again after 5 ms, not after the idle polling interval: a task takes
        milliseconds more than it runs, not a tenth of a second."""
        started = time.monotonic()
        while True:
            try:
                self.cycle.get(self._deliver, timeout=timeout)
                return
            except Empty:
                waited = time.monotonic() - started
                if timeout is not None and waited >= timeout:
                    raise TimeoutError()
                pause = self.polling_interval or 0.0
                if any(ch._consumers and not ch.qos.can_consume() for ch in self.channels):
                    pause = min(pause, 0.005)
                if timeout is not None:
                    pause = min(pause, max(timeout - waited, 0.0))
                if pause:
                    time.sleep(pause)


__all__ = ["Channel", "Transport", "write_atomically"]
