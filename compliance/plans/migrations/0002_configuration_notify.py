"""PostgreSQL: a change to purposes, event sources or tracking plans notifies the channel
``compliance_configuration`` at commit, so that every process drops its cached configuration
(``compliance.consent.selectors.cached``) without asking the database on each request. SQLite
(embedded default) has no notifications: the processes compare a stamp there instead.
"""

from django.db import migrations

from compliance.db_guards import postgresql_only

TABLES = ("consent_purpose", "consent_eventsource", "plans_trackingplan")

CREATE = """
CREATE OR REPLACE FUNCTION configuration_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('compliance_configuration', TG_TABLE_NAME);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
""" + "".join(
    f"""
DROP TRIGGER IF EXISTS configuration_notify ON {table};
CREATE TRIGGER configuration_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION configuration_notify();
"""
    for table in TABLES
)
DROP = "".join(f"DROP TRIGGER IF EXISTS configuration_notify ON {table};\n" for table in TABLES) + (
    "DROP FUNCTION IF EXISTS configuration_notify();\n"
)


class Migration(migrations.Migration):
    dependencies = [("plans", "0001_initial")]

    operations = [
        migrations.RunPython(
            postgresql_only(CREATE), postgresql_only(DROP), hints={"residency": "global"}
        ),
    ]
