"""The control database's suppression mirror, and its backfill from each region.

``SuppressedIdentifier`` is created on ``default``. The backfill runs on each region alias
(``migrate_all`` migrates ``default`` first): it copies the region's existing ``Suppression``
rows into the mirror on ``default``. A region migrated before ``default`` with rows to copy
stops with the fix; ``manage.py suppressions_mirror`` copies again at any time (idempotent).
"""

from django.db import connections, migrations, models

MIRROR_TABLE = "compliance_suppressedidentifier"


def backfill(apps, schema_editor) -> None:
    from compliance.services.suppressions import suppressions_mirror_backfill

    alias = schema_editor.connection.alias
    suppression = apps.get_model("compliance", "Suppression")
    if not suppression.objects.using(alias).exists():
        return
    if MIRROR_TABLE not in connections["default"].introspection.table_names():
        raise RuntimeError(
            f"database {alias!r} has suppressed identifiers to copy to the control database, "
            "which has no suppression mirror yet: migrate 'default' first (manage.py "
            "migrate_all does), then this database"
        )
    suppressions_mirror_backfill(region=alias, apps=apps, source=alias)


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0004_subject_merged_into_index"),
    ]

    operations = [
        migrations.CreateModel(
            name="SuppressedIdentifier",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("blind_index", models.CharField(max_length=64, unique=True)),
                ("region", models.CharField(max_length=16)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "verbose_name_plural": "suppressed identifiers",
            },
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop, hints={"residency": "regional"}),
    ]
