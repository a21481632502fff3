"""PostgreSQL: refuse membership writes that bypass the membership service.

A statement-level trigger (cheap, also fires for COPY) on INSERT, UPDATE and DELETE raises
unless the transaction opened the write path ``membership_service``, ``erasure`` or
``retention`` (``compliance.db_guards.write_path``). TRUNCATE is left to the table owner
(test database flushes use it). Nothing on SQLite.
"""

from django.db import migrations

from compliance.db_guards import postgresql_only

TABLE = "segments_segmentmembership"

CREATE = f"""
CREATE OR REPLACE FUNCTION segments_membership_guard() RETURNS trigger AS $$
BEGIN
    IF coalesce(current_setting('compliance.write_path', true), '')
       NOT IN ('membership_service', 'erasure', 'retention') THEN
        RAISE EXCEPTION 'segment memberships change only through memberships_apply (% refused)', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS segments_membership_guard ON {TABLE};
CREATE TRIGGER segments_membership_guard
    BEFORE INSERT OR UPDATE OR DELETE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION segments_membership_guard();
"""

DROP = f"""
DROP TRIGGER IF EXISTS segments_membership_guard ON {TABLE};
DROP FUNCTION IF EXISTS segments_membership_guard();
"""


class Migration(migrations.Migration):
    dependencies = [("segments", "0001_initial")]

    operations = [
        migrations.RunPython(postgresql_only(CREATE), postgresql_only(DROP), hints={"residency": "regional"}),
    ]
