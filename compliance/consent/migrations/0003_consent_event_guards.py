"""PostgreSQL: consent events are append-only; UPDATE/DELETE only on the erasure/retention path.

The trigger reads the transaction-local setting ``compliance.write_path`` that
``compliance.db_guards.write_path`` opens. SQLite (embedded default) has no trigger.
No TRUNCATE trigger: test database flushes truncate every table, and TRUNCATE needs the
table owner's privilege anyway (the application role should not own the tables).
"""

from django.db import migrations

from compliance.db_guards import postgresql_only

CREATE = """
CREATE OR REPLACE FUNCTION consent_event_guard() RETURNS trigger AS $$
BEGIN
    IF coalesce(current_setting('compliance.write_path', true), '') IN ('erasure', 'retention')
    THEN
        IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'consent_consentevent is append-only: % refused (only erasure or retention '
        'may change consent events)', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS consent_event_append_only ON consent_consentevent;
CREATE TRIGGER consent_event_append_only BEFORE UPDATE OR DELETE ON consent_consentevent
    FOR EACH ROW EXECUTE FUNCTION consent_event_guard();
"""
DROP = """
DROP TRIGGER IF EXISTS consent_event_append_only ON consent_consentevent;
DROP FUNCTION IF EXISTS consent_event_guard();
"""


class Migration(migrations.Migration):
    dependencies = [("consent", "0002_seed_purposes_sources")]

    operations = [
        migrations.RunPython(postgresql_only(CREATE), postgresql_only(DROP), hints={"residency": "regional"}),
    ]
