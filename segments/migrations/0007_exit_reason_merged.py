"""Exit reason ``merged`` (a merged subject's open stays end at the merge: the person goes on
as the survivor, in the survivor's holdout arm). PostgreSQL: ``segments_stays_close`` accepts
only known reasons, so the regional guard functions are installed again with the new list."""

from django.db import migrations, models


def install(apps, schema_editor):
    from compliance.db_guards import regional_sql, schema_of

    connection = schema_editor.connection
    if connection.vendor == "postgresql":
        schema_editor.execute(regional_sql(schema=schema_of(connection)), None)


class Migration(migrations.Migration):
    dependencies = [
        ("segments", "0006_segment_review"),
    ]

    operations = [
        migrations.AlterField(
            model_name="segmentmembership",
            name="exited_reason",
            field=models.CharField(
                blank=True,
                choices=[
                    ("criteria", "No longer meets the criteria"),
                    ("manual", "Removed by hand"),
                    ("consent_withdrawn", "Consent withdrawn or refused"),
                    ("consent_expired", "Consent expired"),
                    ("objection", "Objection"),
                    ("restriction", "Processing restricted"),
                    ("erasure", "Erasure"),
                    ("retention", "Retention period over"),
                    (
                        "merged",
                        "Merged into another subject (the person goes on as the survivor)",
                    ),
                ],
                max_length=24,
            ),
        ),
        migrations.RunPython(install, migrations.RunPython.noop, hints={"residency": "regional"}),
    ]
