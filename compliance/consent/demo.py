"""Demo consent decisions for the demo subjects (called by ``manage.py load_demo``).

Idempotent: a subject that already has consent events is left alone, an erased one is skipped.
"""

from __future__ import annotations

from compliance.consent.models import ConsentEvent, NoticeVersion
from compliance.consent.services.config import notice_save
from compliance.consent.services.record import DecisionInput, consent_record_many
from compliance.consent.services.signals import consent_record_gpc
from compliance.demo import demo_person, demo_subject

NOTICE_TEXT = (
    "We use cookies and similar technologies to measure how our site is used and to "
    "personalise content and ads. You can change your choice at any time."
)
DEMO = [
    # email, jurisdiction, source, decisions, gpc
    (
        "amelie.martin@example.fr",
        "FR",
        "web",
        [
            ("storage", "granted"),
            ("measurement", "granted"),
            ("audience_segmentation", "granted"),
            ("ads_personalisation", "denied"),
        ],
        False,
    ),
    (
        "jonas.becker@example.de",
        "DE",
        "web",
        [("storage", "granted"), ("email_marketing", "granted"), ("measurement", "withdrawn")],
        False,
    ),
    ("lucia.rossi@example.it", "IT", "crm", [("email_marketing", "granted")], False),
    (
        "jordan.lee@example.com",
        "US-CA",
        "web",
        [("measurement", "granted"), ("audience_segmentation", "granted")],
        True,
    ),
    ("sam.taylor@example.com", "US-NY", "ios_app", [("sale_sharing", "opted_out")], False),
]


def load(*, actor, stdout) -> None:
    notice = NoticeVersion.objects.filter(text=NOTICE_TEXT, locale="en").first()
    if notice is None:
        notice = notice_save(
            notice=NoticeVersion(
                purposes=[
                    "storage",
                    "measurement",
                    "audience_segmentation",
                    "ads_personalisation",
                    "email_marketing",
                ],
                locale="en",
                text=NOTICE_TEXT,
            ),
            actor=actor,
            publish=True,
        )
    recorded = 0
    for email, jurisdiction, source, decisions, gpc in DEMO:
        subject = demo_subject(person=demo_person(email), actor=actor)
        if subject is None:
            continue  # erased: never re-created
        if ConsentEvent.objects.using(subject.region).filter(subject_id=subject.pk).exists():
            continue
        covered = all(p in notice.purposes for p, _ in decisions)
        events = consent_record_many(
            subject=subject,
            decisions=[DecisionInput(purpose=p, decision=d) for p, d in decisions],
            source=source,
            actor=actor,
            method="ui",
            jurisdiction=jurisdiction,
            notice_version_id=notice.pk if covered else None,
            collection_point="demo",
        )
        if gpc:
            events += consent_record_gpc(
                subject=subject, source=source, actor=actor, jurisdiction=jurisdiction
            )
        recorded += len(events)
    stdout.write(f"demo consent events: {recorded} new")
