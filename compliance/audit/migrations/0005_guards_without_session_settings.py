"""Guards that no session setting opens: permits held by owner-defined functions, the chain
head guarded like the entries, ``audit_head_lock``/``audit_head_advance``/``audit_prune``
(``compliance.db_guards``). Replaces the ``compliance.write_path`` and
``compliance.audit_maintenance`` session settings, which any role could set."""

from django.db import migrations


def install(apps, schema_editor):
    from compliance.audit.protection import (
        in_test_environment,
        maintenance_for_test_database,
        triggers_install,
    )

    alias = schema_editor.connection.alias
    triggers_install(using=alias)
    if in_test_environment():
        maintenance_for_test_database(using=alias)


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_subject_token_one_index"), ("retention", "0003_alter_retentionrule_category")]

    operations = [
        migrations.RunPython(install, migrations.RunPython.noop, hints={"residency": "per_database"}),
    ]
