"""PostgreSQL: the destroyed-keys ledger is append-only at the database level.

A row-level trigger refuses UPDATE and DELETE of ``dsar_destroyedkey`` (the ledger is what a
backup restore is replayed from: losing a row would bring an erased person back). TRUNCATE is
left to the table owner (test database flushes use it). On SQLite the model's ``save`` and
``delete`` refuse instead.
"""

from django.db import migrations

from compliance.db_guards import postgresql_only

TABLE = "dsar_destroyedkey"

CREATE = f"""
CREATE OR REPLACE FUNCTION dsar_destroyedkey_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the destroyed-keys ledger is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS dsar_destroyedkey_append_only ON {TABLE};
CREATE TRIGGER dsar_destroyedkey_append_only
    BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION dsar_destroyedkey_append_only();
"""

DROP = f"""
DROP TRIGGER IF EXISTS dsar_destroyedkey_append_only ON {TABLE};
DROP FUNCTION IF EXISTS dsar_destroyedkey_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("dsar", "0001_initial")]

    operations = [
        migrations.RunPython(postgresql_only(CREATE), postgresql_only(DROP), hints={"residency": "regional"}),
    ]
