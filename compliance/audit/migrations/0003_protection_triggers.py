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


def uninstall(apps, schema_editor):
    from compliance.audit.protection import triggers_drop

    triggers_drop(using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_checkpoint")]

    operations = [
        migrations.RunPython(install, uninstall, hints={"residency": "per_database"}),
    ]
