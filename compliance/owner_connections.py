"""Connect as the database owner for the commands that need it (``migrate_all``, ``db_roles``).

Production runs two roles per database: ``DATABASE_URL`` / ``DATABASE_URL_<REGION>`` name the
runtime role the web and workers use; ``DATABASE_OWNER_URL`` / ``DATABASE_OWNER_URL_<REGION>``
name the owner, which runs migrations and grants. Where no owner URL is set, the alias's own
URL is used (embedded default, tests, single-role setups).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator

import dj_database_url
from django.db import connections

KEYS = ("NAME", "USER", "PASSWORD", "HOST", "PORT")


def owner_url_variable(alias: str) -> str:
    return "DATABASE_OWNER_URL" if alias == "default" else f"DATABASE_OWNER_URL_{alias.upper()}"


@contextlib.contextmanager
def owner_connections(aliases: Iterable[str]) -> Iterator[list[str]]:
    """Inside: each alias with an owner URL connects as the owner; yields those aliases."""
    saved: dict[str, dict] = {}
    for alias in aliases:
        url = os.environ.get(owner_url_variable(alias))
        if not url:
            continue
        connection = connections[alias]
        connection.close()
        saved[alias] = {key: connection.settings_dict.get(key) for key in KEYS}
        parsed = dj_database_url.parse(url)
        connection.settings_dict.update({key: parsed.get(key) for key in KEYS})
    try:
        yield list(saved)
    finally:
        for alias, values in saved.items():
            connections[alias].close()
            connections[alias].settings_dict.update(values)
