"""Seed purposes and sources segmentation needs (editable afterwards in the admin)."""

from django.db import migrations

EU_EEA_GB = sorted(
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE IS LI NO GB"
    .split()
)
CONSENT_LI = ["consent", "legitimate_interests"]
CONSENT_US = ["consent", "us_opt_out"]

PURPOSES = [
    # key, name, bases, expiry, tcf purposes, tcf special features, consent mode types, gpc
    ("storage", "Store and/or access information on a device", CONSENT_LI, 395, [1], [],
     ["ad_storage", "analytics_storage", "functionality_storage"], False),
    ("audience_segmentation", "Audience insights and segmentation", CONSENT_LI, 395, [9], [],
     [], False),
    ("ads_personalisation", "Ads profiling and personalised advertising", CONSENT_US, 395,
     [2, 3, 4], [], ["ad_storage", "ad_user_data", "ad_personalization"], True),
    ("content_personalisation", "Content profiling and personalised content", CONSENT_LI, 395,
     [5, 6], [], ["personalization_storage"], False),
    ("measurement", "Measure ad and content performance", CONSENT_LI, 395, [7, 8], [],
     ["analytics_storage"], False),
    ("sale_sharing", "Sale or sharing of personal data, targeted advertising", CONSENT_US, 395,
     [], [], ["ad_user_data"], True),
    ("email_marketing", "E-mail marketing", CONSENT_LI, 730, [], [], [], False),
]
SOURCES = [
    ("web", "Website", "web", "global"),
    ("ios_app", "iOS app", "app", "global"),
    ("android_app", "Android app", "app", "global"),
    ("crm", "CRM", "crm", "source"),
    ("email", "E-mail platform", "email", "source"),
    ("partner_import", "Partner import", "partner", "source"),
]


def seed(apps, schema_editor):
    Purpose = apps.get_model("consent", "Purpose")
    EventSource = apps.get_model("consent", "EventSource")
    db = schema_editor.connection.alias
    for key, name, bases, expiry, tcf, sf, cm, gpc in PURPOSES:
        Purpose.objects.using(db).get_or_create(
            key=key,
            defaults={
                "name": name,
                "description": name,
                "lawful_bases": bases,
                "consent_required_in": EU_EEA_GB,
                "default_expiry_days": expiry,
                "tcf_purposes": tcf,
                "tcf_special_features": sf,
                "consent_mode_types": cm,
                "gpc_effect": gpc,
            },
        )
    for key, name, channel, scope in SOURCES:
        EventSource.objects.using(db).get_or_create(
            key=key, defaults={"name": name, "channel": channel, "consent_scope": scope}
        )


class Migration(migrations.Migration):
    dependencies = [("consent", "0001_initial")]

    operations = [
        migrations.RunPython(seed, migrations.RunPython.noop, hints={"residency": "global"}),
    ]
