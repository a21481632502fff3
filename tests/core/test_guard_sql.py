"""The SQL text the migrations install is pinned: the guard builders (split per function in
``compliance.db``) must keep producing, byte for byte, what the installed migrations ran.
A change here needs a new migration that installs the new text, and new digests."""

from __future__ import annotations

import hashlib

import pytest

from compliance.audit.hashing import GENESIS
from compliance.db_guards import (
    PERMIT_SQL,
    audit_trigger_function_sql,
    head_functions_sql,
    regional_sql,
)

SCHEMA = '"public"'
#: sha256 of each text as generated on main before the split (commit 3b5bcd4)
PINNED = {
    "PERMIT_SQL": "aa9ef834dd334eb5e4537f85f290deff4a2beae14234c6276506e5017b55bf9a",
    "head_functions_sql": "69336d113d411075a62233dc9e9d930bcd13cb6950a83497d3a6a0408f92e53e",
    "audit_trigger_function_sql": (
        "efe6982c48979a3ef698cb525aaf9a0a6ee2d733fae2b264fc8e382c79373a35"
    ),
    # segments 0007 installs it again: exit reason ``merged``
    "regional_sql": "defda7421451e1e73b2f152cd60c6a0d635edc024a25c8732dab803ee926fa75",
}


def _texts() -> dict[str, str]:
    return {
        "PERMIT_SQL": PERMIT_SQL,
        "head_functions_sql": head_functions_sql(schema=SCHEMA, genesis=GENESIS),
        "audit_trigger_function_sql": audit_trigger_function_sql(schema=SCHEMA),
        "regional_sql": regional_sql(schema=SCHEMA),
    }


@pytest.mark.parametrize("name", sorted(PINNED))
def test_installed_sql_is_unchanged(name):
    text = _texts()[name]
    assert hashlib.sha256(text.encode()).hexdigest() == PINNED[name], name


def test_every_guard_function_is_installed_once():
    """Each function the runtime role may execute is created by exactly one builder."""
    from compliance.db_guards import DEFINER_FUNCTIONS

    text = "".join(_texts().values())
    for signature in DEFINER_FUNCTIONS:
        name = signature.split("(", 1)[0]
        assert text.count(f"CREATE OR REPLACE FUNCTION {name}(") == 1, name
