"""PostgreSQL: consent events and memberships are guarded by permits that only owner-defined
functions hold (``compliance.db_guards.regional_sql``): erasure and retention delete through
``compliance_erase_rows``/``compliance_retention_delete``, stays close through
``segments_stays_close``, and every membership inserted or closed must be audited before its
transaction commits. Replaces the ``compliance.write_path`` session setting."""

from django.db import migrations


def install(apps, schema_editor):
    from compliance.db_guards import regional_sql, schema_of

    connection = schema_editor.connection
    if connection.vendor == "postgresql":
        schema_editor.execute(regional_sql(schema=schema_of(connection)), None)


class Migration(migrations.Migration):
    dependencies = [
        ("segments", "0003_drop_redundant_segment_index"),
        ("consent", "0003_consent_event_guards"),
        ("dsar", "0002_destroyedkey_append_only"),
        ("compliance", "0004_subject_merged_into_index"),
        ("audit", "0005_guards_without_session_settings"),
    ]

    operations = [
        migrations.RunPython(install, migrations.RunPython.noop, hints={"residency": "regional"}),
    ]
