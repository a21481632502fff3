"""The SQL text of the PostgreSQL guards that every database carries (``compliance.db_guards``
explains the design): table lists, the permit bookkeeping, the chain head's functions
(``audit_head_lock``, ``audit_head_advance``, ``audit_prune``) and the audit tables' trigger
function. Migrations install it; the text must not change without a migration that installs it
again (``tests/core/test_guard_sql.py`` pins it)."""

from __future__ import annotations

from compliance.audit.codes import AuditCode
from compliance.audit.sql import CHECKPOINT_TABLE, EVENT_TABLE, HEAD_TABLE

PERMIT_TABLE = "compliance_guard_permit"
SETTING_TABLE = "compliance_guard_setting"
MEMBERSHIP_TABLE = "segments_segmentmembership"
CONSENT_EVENT_TABLE = "consent_consentevent"
#: tables a runtime role may insert into but never change (no UPDATE, DELETE, TRUNCATE)
APPEND_ONLY_TABLES = (
    EVENT_TABLE,
    CHECKPOINT_TABLE,
    CONSENT_EVENT_TABLE,
    MEMBERSHIP_TABLE,
    "dsar_destroyedkey",
    # the control database's suppression mirror: a removed row would let an erased identifier
    # back in (no trigger: no application path updates or deletes it)
    "compliance_suppressedidentifier",
)
#: tables a runtime role may only read
READ_ONLY_TABLES = (HEAD_TABLE, "django_migrations", SETTING_TABLE)
#: owner-only bookkeeping of the guards (no privilege at all for the runtime role)
PRIVATE_TABLES = (PERMIT_TABLE, "compliance_membership_pending", "compliance_membership_txcheck")
#: ``SECURITY DEFINER`` functions the runtime role may execute, with their argument types
DEFINER_FUNCTIONS = (
    "audit_head_lock(text)",
    "audit_head_advance(text, bigint, text)",
    "audit_prune(text, bigint, integer)",
    "compliance_erase_rows(text, uuid[], uuid[], bigint[])",
    "compliance_retention_delete(text, bigint[])",
    "segments_stays_close(uuid[], text, bigint[], timestamptz, text)",
)
#: tables ``compliance_erase_rows`` and ``compliance_retention_delete`` may delete from
ERASABLE = {CONSENT_EVENT_TABLE: "subject_id", MEMBERSHIP_TABLE: "subject_id"}
#: the audit codes of a membership's entry and exit (the guards match stays to their entries)
ENTERED, EXITED = int(AuditCode.MEMBERSHIP_ENTERED), int(AuditCode.MEMBERSHIP_EXITED)


def postgresql_only(sql: str):
    """A ``RunPython`` function running ``sql`` on PostgreSQL aliases only (the guards' triggers
    do not exist on SQLite)."""

    def run(apps, schema_editor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, None)

    return run


def definer(schema: str) -> str:
    """The clause every guard function carries: owner's rights, a search path no caller can
    hijack (``pg_temp`` last)."""
    return f"SECURITY DEFINER SET search_path = {schema}, pg_temp"


def schema_of(connection) -> str:
    """The quoted current schema of ``connection`` (where the guard functions live)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        return connection.ops.quote_name(cursor.fetchone()[0])


PERMIT_SQL = f"""
CREATE TABLE IF NOT EXISTS {PERMIT_TABLE} (
    txid xid8 NOT NULL, path text NOT NULL, PRIMARY KEY (txid, path));
CREATE TABLE IF NOT EXISTS {SETTING_TABLE} (key text PRIMARY KEY, value text NOT NULL);
CREATE UNLOGGED TABLE IF NOT EXISTS compliance_membership_pending (
    txid xid8 NOT NULL, membership_id bigint NOT NULL, code integer NOT NULL);
CREATE INDEX IF NOT EXISTS compliance_membership_pending_tx
    ON compliance_membership_pending (txid);
CREATE TABLE IF NOT EXISTS compliance_membership_txcheck (txid xid8 PRIMARY KEY);

CREATE OR REPLACE FUNCTION compliance_permit_open(p_path text) RETURNS void LANGUAGE sql AS $$
    INSERT INTO {PERMIT_TABLE} VALUES (pg_current_xact_id(), p_path) ON CONFLICT DO NOTHING
$$;
CREATE OR REPLACE FUNCTION compliance_permit_close(p_path text) RETURNS void LANGUAGE sql AS $$
    DELETE FROM {PERMIT_TABLE} WHERE txid = pg_current_xact_id() AND path = p_path
$$;
CREATE OR REPLACE FUNCTION compliance_permit_held(p_path text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM {PERMIT_TABLE}
                   WHERE txid = pg_current_xact_id() AND path = p_path)
$$;
CREATE OR REPLACE FUNCTION compliance_guard_setting_int(p_key text, p_default integer)
RETURNS integer LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT value::integer FROM {SETTING_TABLE} WHERE key = p_key), p_default)
$$;
REVOKE ALL ON FUNCTION compliance_permit_open(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION compliance_permit_close(text) FROM PUBLIC;
"""


def head_functions_sql(*, schema: str, genesis: str) -> str:
    """``audit_head_lock``, ``audit_head_advance`` and ``audit_prune`` (every database)."""
    return "\n".join(
        (
            "",
            head_lock_sql(schema=schema, genesis=genesis),
            head_advance_sql(schema=schema),
            prune_sql(schema=schema),
        )
    )


def head_lock_sql(*, schema: str, genesis: str) -> str:
    """``audit_head_lock(chain)``: creates the head at genesis if missing, locks it."""
    return f"""CREATE OR REPLACE FUNCTION audit_head_lock(p_chain text)
RETURNS TABLE (head_size bigint, head_value text) LANGUAGE plpgsql {definer(schema)} AS $$
BEGIN
    INSERT INTO {HEAD_TABLE} (chain_id, size, head_hash)
    VALUES (p_chain, 0, '{genesis}') ON CONFLICT DO NOTHING;
    RETURN QUERY SELECT h.size, h.head_hash::text FROM {HEAD_TABLE} h
        WHERE h.chain_id = p_chain FOR UPDATE;
END;
$$;
"""


def head_advance_sql(*, schema: str) -> str:
    """``audit_head_advance(chain, size, hash)``: forward only, over entries that exist and end
    with that hash; clears the membership changes these entries audit."""
    return f"""CREATE OR REPLACE FUNCTION audit_head_advance(p_chain text, p_size bigint, p_hash text)
RETURNS void LANGUAGE plpgsql {definer(schema)}
-- the pending table has no statistics inside the transaction that filled it: never a nested
-- loop over it (100,000 stays would mean 10^10 probes), hash the entries instead
SET enable_nestloop = off AS $$
DECLARE
    old_size bigint;
    present bigint;
    last_hash text;
BEGIN
    SELECT h.size INTO old_size FROM {HEAD_TABLE} h
        WHERE h.chain_id = p_chain FOR UPDATE;
    IF old_size IS NULL THEN
        RAISE EXCEPTION 'audit chain % has no head (call audit_head_lock first)', p_chain
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_size <= old_size THEN
        RAISE EXCEPTION 'the audit chain head only moves forward (% -> % refused)', old_size, p_size
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT count(*), max(CASE WHEN e.seq = p_size THEN e.hash END)
        INTO present, last_hash
        FROM {EVENT_TABLE} e WHERE e.seq > old_size AND e.seq <= p_size;
    IF present <> p_size - old_size OR last_hash IS DISTINCT FROM p_hash THEN
        RAISE EXCEPTION 'audit chain head % refused: entries % to % are not all there with that hash',
            p_size, old_size + 1, p_size USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF EXISTS (SELECT 1 FROM compliance_membership_pending WHERE txid = pg_current_xact_id()) THEN
        WITH covered AS MATERIALIZED (
            SELECT e.code, e.payload ->> 'membership_id' AS membership_id
            FROM {EVENT_TABLE} e
            WHERE e.seq > old_size AND e.seq <= p_size AND e.code IN ({ENTERED}, {EXITED})
        )
        DELETE FROM compliance_membership_pending p USING covered c
            WHERE p.txid = pg_current_xact_id() AND p.membership_id::text = c.membership_id
              AND p.code = c.code;
    END IF;
    PERFORM compliance_permit_open('audit_head');
    UPDATE {HEAD_TABLE} SET size = p_size, head_hash = p_hash WHERE chain_id = p_chain;
    PERFORM compliance_permit_close('audit_head');
END;
$$;
"""


def prune_sql(*, schema: str) -> str:
    """``audit_prune(chain, through, min_days)``: drops entries up to a signed checkpoint, all
    older than the floor."""
    return f"""CREATE OR REPLACE FUNCTION audit_prune(p_chain text, p_through bigint, p_min_days integer)
RETURNS bigint LANGUAGE plpgsql {definer(schema)} AS $$
DECLARE
    min_days integer := greatest(p_min_days, compliance_guard_setting_int('audit_min_days', 0));
    removed bigint;
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM {CHECKPOINT_TABLE} c JOIN {EVENT_TABLE} e
            ON e.seq = c.size AND e.hash = c.head_hash
        WHERE c.chain_id = p_chain AND c.size = p_through
    ) THEN
        RAISE EXCEPTION 'audit prune through % refused: no checkpoint at that entry', p_through
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF EXISTS (SELECT 1 FROM {EVENT_TABLE} WHERE seq <= p_through
               AND occurred_at >= now() - make_interval(days => min_days)) THEN
        RAISE EXCEPTION 'audit prune through % refused: entries younger than % days', p_through,
            min_days USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM compliance_permit_open('audit_prune');
    DELETE FROM {EVENT_TABLE} WHERE seq <= p_through;
    GET DIAGNOSTICS removed = ROW_COUNT;
    PERFORM compliance_permit_close('audit_prune');
    RETURN removed;
END;
$$;
"""


def audit_trigger_function_sql(*, schema: str) -> str:
    """The trigger function on the audit tables: refuses every change but the ones a guard
    function holds a permit for (and TRUNCATE in test databases, an owner-only setting)."""
    return f"""
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger
LANGUAGE plpgsql {definer(schema)} AS $$
BEGIN
    IF TG_OP = 'DELETE' AND TG_TABLE_NAME = '{EVENT_TABLE}'
       AND compliance_permit_held('audit_prune') THEN
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = '{HEAD_TABLE}'
       AND compliance_permit_held('audit_head') THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'TRUNCATE' AND EXISTS (
        SELECT 1 FROM {SETTING_TABLE} WHERE key = 'test_database_truncate' AND value = 'on') THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION USING
        MESSAGE = 'audit log is append-only: ' || TG_OP || ' on ' || TG_TABLE_NAME || ' refused',
        ERRCODE = 'insufficient_privilege';
END;
$$;
"""
