"""The SQL text of the PostgreSQL guards on the regional tables (consent events, memberships)
and of the guard functions that are the only ways through them (``compliance.db_guards``
explains the design). Migrations install it; ``tests/core/test_guard_sql.py`` pins the text."""

from __future__ import annotations

from compliance.db.guards_sql import (
    CONSENT_EVENT_TABLE,
    ENTERED,
    EXITED,
    MEMBERSHIP_TABLE,
    definer,
)
from segments.models import ExitReason


def regional_sql(*, schema: str) -> str:
    """Triggers and guard functions of the regional tables (consent events, memberships)."""
    return "\n".join(
        (
            "",
            consent_event_guard_sql(schema=schema),
            membership_guard_sql(schema=schema),
            membership_inserted_sql(schema=schema),
            membership_audited_sql(schema=schema),
            stays_close_sql(schema=schema),
            erase_rows_sql(schema=schema),
            retention_delete_sql(schema=schema),
        )
    )


def consent_event_guard_sql(*, schema: str) -> str:
    """Consent events are append-only; only a delete permit (erasure, retention) removes one."""
    return f"""CREATE OR REPLACE FUNCTION consent_event_guard() RETURNS trigger
LANGUAGE plpgsql {definer(schema)} AS $$
BEGIN
    IF compliance_permit_held('delete') THEN
        IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    END IF;
    RAISE EXCEPTION 'consent_consentevent is append-only: % refused (only erasure or retention '
        'may remove consent events)', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
DROP TRIGGER IF EXISTS consent_event_append_only ON {CONSENT_EVENT_TABLE};
CREATE TRIGGER consent_event_append_only BEFORE UPDATE OR DELETE ON {CONSENT_EVENT_TABLE}
    FOR EACH ROW EXECUTE FUNCTION consent_event_guard();
"""


def membership_guard_sql(*, schema: str) -> str:
    """Memberships change only under a permit: delete (erasure, retention) or stays_close."""
    return f"""CREATE OR REPLACE FUNCTION segments_membership_guard() RETURNS trigger
LANGUAGE plpgsql {definer(schema)} AS $$
BEGIN
    IF (TG_OP = 'DELETE' AND compliance_permit_held('delete'))
       OR (TG_OP = 'UPDATE' AND compliance_permit_held('stays_close')) THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'segment memberships change only through the membership service (% refused)',
        TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
DROP TRIGGER IF EXISTS segments_membership_guard ON {MEMBERSHIP_TABLE};
CREATE TRIGGER segments_membership_guard BEFORE UPDATE OR DELETE ON {MEMBERSHIP_TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION segments_membership_guard();
"""


def membership_inserted_sql(*, schema: str) -> str:
    """Every inserted stay is open, and pending until its audit entry moves the chain head."""
    return f"""-- every inserted stay must be open and audited before commit
CREATE OR REPLACE FUNCTION segments_membership_inserted() RETURNS trigger
LANGUAGE plpgsql {definer(schema)} AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows WHERE exited_at IS NOT NULL OR exited_reason <> '') THEN
        RAISE EXCEPTION 'a new segment membership must be an open stay'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    INSERT INTO compliance_membership_pending
        SELECT pg_current_xact_id(), id, {ENTERED} FROM new_rows;
    INSERT INTO compliance_membership_txcheck VALUES (pg_current_xact_id())
        ON CONFLICT DO NOTHING;
    RETURN NULL;
END;
$$;
DROP TRIGGER IF EXISTS segments_membership_inserted ON {MEMBERSHIP_TABLE};
CREATE TRIGGER segments_membership_inserted AFTER INSERT ON {MEMBERSHIP_TABLE}
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION segments_membership_inserted();
"""


def membership_audited_sql(*, schema: str) -> str:
    """The deferred check: a transaction with a stay change not audited does not commit."""
    return f"""CREATE OR REPLACE FUNCTION compliance_membership_audited() RETURNS trigger
LANGUAGE plpgsql {definer(schema)} AS $$
DECLARE
    missing bigint;
BEGIN
    SELECT membership_id INTO missing FROM compliance_membership_pending
        WHERE txid = NEW.txid LIMIT 1;
    DELETE FROM compliance_membership_txcheck WHERE txid = NEW.txid;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'segment membership % changed without its audit entry: commit refused',
            missing USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END;
$$;
DROP TRIGGER IF EXISTS compliance_membership_audited ON compliance_membership_txcheck;
CREATE CONSTRAINT TRIGGER compliance_membership_audited
    AFTER INSERT ON compliance_membership_txcheck DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION compliance_membership_audited();
"""


def stays_close_sql(*, schema: str) -> str:
    """``segments_stays_close``: closes open stays with a known exit reason, marks them
    pending until audited."""
    reasons = ", ".join(f"'{value}'" for value in ExitReason.values)
    return f"""CREATE OR REPLACE FUNCTION segments_stays_close(
    p_subjects uuid[], p_segment text, p_ids bigint[], p_at timestamptz, p_reason text)
RETURNS TABLE (stay_id bigint, stay_subject uuid, stay_segment text)
LANGUAGE plpgsql {definer(schema)} AS $$
DECLARE
    conditions text := 'm.exited_at IS NULL';
BEGIN
    IF p_reason IS NULL OR p_reason NOT IN ({reasons}) THEN
        RAISE EXCEPTION 'unknown exit reason %', p_reason USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_subjects IS NULL AND p_ids IS NULL THEN
        RAISE EXCEPTION 'segments_stays_close needs subjects or stay ids'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_subjects IS NOT NULL THEN conditions := conditions || ' AND m.subject_id = ANY($1)'; END IF;
    IF p_segment IS NOT NULL THEN conditions := conditions || ' AND m.segment_key = $2'; END IF;
    IF p_ids IS NOT NULL THEN conditions := conditions || ' AND m.id = ANY($3)'; END IF;
    PERFORM compliance_permit_open('stays_close');
    RETURN QUERY EXECUTE format(
        'WITH locked AS (SELECT m.id FROM {MEMBERSHIP_TABLE} m WHERE %s ORDER BY m.id FOR UPDATE), '
        'closed AS (UPDATE {MEMBERSHIP_TABLE} m SET exited_at = $4, exited_reason = $5 '
        '  FROM locked WHERE m.id = locked.id RETURNING m.id, m.subject_id, m.segment_key), '
        'pending AS (INSERT INTO compliance_membership_pending '
        '  SELECT pg_current_xact_id(), id, {EXITED} FROM closed) '
        'SELECT id, subject_id, segment_key::text FROM closed ORDER BY id', conditions)
        USING p_subjects, p_segment, p_ids, p_at, p_reason;
    INSERT INTO compliance_membership_txcheck VALUES (pg_current_xact_id())
        ON CONFLICT DO NOTHING;
    PERFORM compliance_permit_close('stays_close');
END;
$$;
"""


def erase_rows_sql(*, schema: str) -> str:
    """``compliance_erase_rows``: deletes a guarded table's rows of subjects covered by an
    erasure request in processing or by the destroyed-keys ledger."""
    return f"""CREATE OR REPLACE FUNCTION compliance_erase_rows(
    p_table text, p_subjects uuid[], p_requests uuid[], p_ids bigint[] DEFAULT NULL)
RETURNS TABLE (row_subject uuid, removed bigint)
LANGUAGE plpgsql {definer(schema)} AS $$
DECLARE
    stray uuid;
BEGIN
    IF p_table NOT IN ('{CONSENT_EVENT_TABLE}', '{MEMBERSHIP_TABLE}') THEN
        RAISE EXCEPTION 'compliance_erase_rows: % is not a guarded table', p_table
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH requested AS (
        SELECT r.subject_id, r.erasure_subjects FROM dsar_privacyrequest r
        WHERE r.id = ANY(coalesce(p_requests, '{{}}')) AND r.type = 'erasure'
          AND r.status = 'processing'
    ), allowed AS (
        SELECT subject_id AS sid FROM requested WHERE subject_id IS NOT NULL
        UNION SELECT (s ->> 'id')::uuid FROM requested,
            jsonb_array_elements(requested.erasure_subjects) s
        UNION SELECT k.subject_id FROM dsar_destroyedkey k
            WHERE k.subject_id = ANY(p_subjects)
    )
    SELECT s INTO stray FROM unnest(p_subjects) s
        WHERE s NOT IN (SELECT sid FROM allowed) LIMIT 1;
    IF stray IS NOT NULL THEN
        RAISE EXCEPTION 'erasure of % rows refused: a subject is not covered by an erasure '
            'request in processing nor by the destroyed-keys ledger', p_table
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM compliance_permit_open('delete');
    RETURN QUERY EXECUTE format(
        'WITH d AS (DELETE FROM %I WHERE subject_id = ANY($1) AND ($2 IS NULL OR id = ANY($2)) '
        'RETURNING subject_id) SELECT subject_id, count(*) FROM d GROUP BY subject_id', p_table)
        USING p_subjects, p_ids;
    PERFORM compliance_permit_close('delete');
END;
$$;
"""


def retention_delete_sql(*, schema: str) -> str:
    """``compliance_retention_delete``: deletes exited stays and consent events older than the
    retention floor."""
    return f"""CREATE OR REPLACE FUNCTION compliance_retention_delete(p_table text, p_ids bigint[])
RETURNS bigint LANGUAGE plpgsql {definer(schema)} AS $$
DECLARE
    floor_days integer := compliance_guard_setting_int('retention_floor_days', 0);
    young boolean;
    removed bigint;
BEGIN
    IF p_table = '{MEMBERSHIP_TABLE}' THEN
        SELECT EXISTS (SELECT 1 FROM {MEMBERSHIP_TABLE} WHERE id = ANY(p_ids) AND (exited_at IS NULL
            OR exited_at >= now() - make_interval(days => floor_days))) INTO young;
    ELSIF p_table = '{CONSENT_EVENT_TABLE}' THEN
        SELECT EXISTS (SELECT 1 FROM {CONSENT_EVENT_TABLE} WHERE id = ANY(p_ids)
            AND received_at >= now() - make_interval(days => floor_days)) INTO young;
    ELSE
        RAISE EXCEPTION 'compliance_retention_delete: % is not a guarded table', p_table
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF young THEN
        RAISE EXCEPTION 'retention of % rows refused: an active stay or a row younger than the '
            'retention floor (% days)', p_table, floor_days USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM compliance_permit_open('delete');
    EXECUTE format('DELETE FROM %I WHERE id = ANY($1)', p_table) USING p_ids;
    GET DIAGNOSTICS removed = ROW_COUNT;
    PERFORM compliance_permit_close('delete');
    RETURN removed;
END;
$$;
"""
