"""One b-tree on ``subject_token`` instead of two.

``db_index=True`` on a CharField gives PostgreSQL a second ``varchar_pattern_ops`` index for
``LIKE 'prefix%'`` lookups; tokens are only ever matched whole, so every append paid for an
index nothing reads. The plain index is kept under a declared name (renamed where the database
can rename indexes, rebuilt on SQLite); the pattern index is dropped.
"""

from django.db import migrations, models

OLD = "audit_auditevent_subject_token_d6180718"
NEW = "audit_subject_token"


def forwards(apps, schema_editor):
    run = schema_editor.execute
    if schema_editor.connection.vendor == "postgresql":
        run(f"DROP INDEX IF EXISTS {OLD}_like")
        run(f"ALTER INDEX IF EXISTS {OLD} RENAME TO {NEW}")
        run(f"CREATE INDEX IF NOT EXISTS {NEW} ON audit_auditevent (subject_token)")
    else:
        run(f"DROP INDEX IF EXISTS {OLD}")
        run(f"CREATE INDEX IF NOT EXISTS {NEW} ON audit_auditevent (subject_token)")


def backwards(apps, schema_editor):
    run = schema_editor.execute
    run(f"DROP INDEX IF EXISTS {NEW}")
    run(f"CREATE INDEX {OLD} ON audit_auditevent (subject_token)")
    if schema_editor.connection.vendor == "postgresql":
        run(f"CREATE INDEX {OLD}_like ON audit_auditevent (subject_token varchar_pattern_ops)")


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_protection_triggers")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="auditevent",
                    name="subject_token",
                    field=models.CharField(blank=True, max_length=64),
                ),
                migrations.AddIndex(
                    model_name="auditevent",
                    index=models.Index(fields=["subject_token"], name=NEW),
                ),
            ],
            database_operations=[
                migrations.RunPython(forwards, backwards, hints={"residency": "per_database"}),
            ],
        ),
    ]
