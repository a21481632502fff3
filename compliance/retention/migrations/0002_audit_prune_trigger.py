"""Reinstall the audit triggers on every PostgreSQL database so that DELETE of audit entries
is allowed under the ``retention`` write path (compliance.audit.protection.FUNCTION_SQL)."""

from django.db import migrations


def install(apps, schema_editor):
    from compliance.audit.protection import triggers_install

    triggers_install(using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    dependencies = [("retention", "0001_initial"), ("audit", "0003_protection_triggers")]

    operations = [
        migrations.RunPython(
            install, migrations.RunPython.noop, hints={"residency": "per_database"}
        )
    ]
