"""Benchmarks: ``python -m bench NAME [args]`` (or ``make bench BENCH_ARGS="NAME ..."``).

Each ``bench/<name>.py`` has ``main(argv) -> int`` and measures side by side, in one run,
against a baseline on the same machine and database (ratios, not absolute times). Databases:
whatever ``DATABASE_URL*`` configure (PostgreSQL for the published figures); ``bench_databases``
creates throwaway test databases and drops them afterwards.
"""

from __future__ import annotations

import contextlib
import os
import platform
import time
from collections.abc import Iterator


def django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


@contextlib.contextmanager
def bench_databases() -> Iterator[None]:
    """Create fresh test databases for every alias (migrated), drop them on exit."""
    from django.test.utils import setup_databases, setup_test_environment, teardown_databases

    setup_test_environment(debug=False)  # as production runs: no query log
    old = setup_databases(verbosity=0, interactive=False, aliases=None)
    try:
        yield
    finally:
        teardown_databases(old, verbosity=0)


@contextlib.contextmanager
def timed(results: dict, key: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    results[key] = time.perf_counter() - start


def machine() -> str:
    from django.db import connections

    vendor = connections["default"].vendor
    return (
        f"{platform.node()} ({os.cpu_count()} cores, Python {platform.python_version()}, {vendor})"
    )


@contextlib.contextmanager
def guards_off(alias: str) -> Iterator[None]:
    """A transaction on ``alias`` in which no trigger fires (PostgreSQL, superuser): seeding and
    plain baselines write as the table owner would, behind the guards."""
    from django.db import connections, transaction

    with transaction.atomic(using=alias):
        if connections[alias].vendor == "postgresql":
            with connections[alias].cursor() as cursor:
                cursor.execute("SET LOCAL session_replication_role = replica")
        yield


def copy_rows(alias: str, table: str, columns: list[str], rows) -> None:
    """Seed ``table`` of ``alias`` with ``rows`` (tuples in ``columns`` order) by ``COPY``
    (PostgreSQL, as the table owner would: the seeding behind the measured paths)."""
    from django.db import connections

    with connections[alias].cursor() as cursor:
        with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def seed_subjects(*, alias: str, region: str, ids, now, wrapped_key) -> None:
    """COPY a subject row and a data-key row for each of ``ids`` (``wrapped_key(sid)`` gives
    the stored key: random bytes where nothing is ever decrypted, a real wrapped key where
    the benchmark reads values)."""
    import secrets

    copy_rows(
        alias,
        "compliance_subject",
        ["id", "region", "audit_token", "created_at"],
        ((sid, region, secrets.token_hex(16), now) for sid in ids),
    )
    copy_rows(
        alias,
        "compliance_subjectkey",
        ["subject_id", "wrapped_key", "key_version", "created_at"],
        ((sid, wrapped_key(sid), "v1", now) for sid in ids),
    )


def seed_granted(*, emails, jurisdiction: str = "FR") -> dict:
    """Create a subject per e-mail through the services, each with a ``measurement`` grant on
    ``web``: e-mail -> subject (the seeding of the benchmarks that need consenting people)."""
    from compliance.audit.services.append import Actor
    from compliance.consent.services.record import consent_record
    from compliance.services.subjects import subject_resolve

    actor = Actor.system("bench")
    subjects = {}
    for email in emails:
        subject = subject_resolve(
            identifier_type="email", value=email, jurisdiction=jurisdiction, actor=actor
        )
        consent_record(
            subject=subject,
            purpose="measurement",
            decision="granted",
            source="web",
            actor=actor,
            jurisdiction=jurisdiction,
        )
        subjects[email] = subject
    return subjects
