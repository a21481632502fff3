"""``python manage.py load_demo``: the demo story (people in ``eu`` and ``us``, their consents,
segments and privacy requests) and the demo logins.

Idempotent in every state the demo can reach (after erasures, restrictions, withdrawals and
reviews done through the admin or the API): erased people are never re-created, and a story
item the officer has dealt with is set up again (``compliance/demo.py``). The demo passwords
are generated once into ``var/demo-login.json`` and printed each time, with the demo people
(local use only; never in production).
"""

import json
import os
import secrets
from importlib import import_module

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from compliance.audit.services.append import Actor
from compliance.demo import DEMO_PEOPLE, demo_people_in_use, demo_subject
from compliance.dsar.demo import story_summary
from compliance.regions import region_for_country
from compliance.roles import AUDITOR, PRIVACY_OFFICER, SUPPORT_AGENT
from segments.checks import check_active_segments_per_motion
from segments.models import Origin, Segment, Status

DEMO_STAFF = [("officer", PRIVACY_OFFICER), ("support", SUPPORT_AGENT), ("auditor", AUDITOR)]


class Command(BaseCommand):
    help = "Load demo data (idempotent) and print the demo logins."

    def handle(self, *args, **options):
        actor = Actor.system("demo")
        present = sum(demo_subject(person=p, actor=actor) is not None for p in DEMO_PEOPLE)
        self.stdout.write(f"demo people: {present} present, {len(DEMO_PEOPLE) - present} erased")
        self._load_app_demo(actor=actor)
        logins = self._demo_logins()
        base = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"
        self.stdout.write(self.style.SUCCESS(f"Demo logins at {base}/admin/ :"))
        for username, group in DEMO_STAFF:
            self.stdout.write(f"  {username:8} / {logins[username]}   ({group})")
        self.stdout.write(
            self.style.SUCCESS("Demo people (fictional identifiers, example.* domains):")
        )
        for person, state in demo_people_in_use():
            region = region_for_country(country=person.jurisdiction).upper()
            what = "erased: identifiers suppressed" if state == "erased" else person.role
            self.stdout.write(f"  {person.email:28} {region:3} {person.jurisdiction:6} {what}")
        self.stdout.write(f"Officer's queue: {self._story()}")
        self._governance()

    def _governance(self) -> None:
        """The segment governance findings, once per start (they are not repeated by every
        management command; officers also see them as a banner in the admin)."""
        for warning in check_active_segments_per_motion():
            self.stdout.write(
                self.style.WARNING(f"Segment governance ({warning.id}): {warning.msg}")
                + f" {warning.hint}"
            )

    def _story(self) -> str:
        drafts = Segment.objects.filter(origin=Origin.AI_SUGGESTED, status=Status.DRAFT).count()
        return f"{story_summary()}; {drafts} AI-suggested segment awaiting review"

    def _load_app_demo(self, *, actor) -> None:
        """Demo data of the other apps (each app's ``demo.load``), when installed."""
        for module in (
            "compliance.consent.demo",
            "compliance.plans.demo",
            "segments.demo",
            "compliance.dsar.demo",
        ):
            try:
                loader = import_module(module)
            except ModuleNotFoundError:
                continue
            loader.load(actor=actor, stdout=self.stdout)

    def _demo_logins(self) -> dict[str, str]:
        path = settings.VAR_DIR / "demo-login.json"
        stored = json.loads(path.read_text()) if path.exists() else {}
        User = get_user_model()
        for username, group in DEMO_STAFF:
            password = stored.get(username) or secrets.token_urlsafe(12)
            stored[username] = password
            user, created = User.objects.get_or_create(username=username)
            if created or not user.check_password(password):
                user.set_password(password)
            user.is_staff = True
            user.save()
            user.groups.add(Group.objects.get(name=group))
        path.write_text(json.dumps(stored, indent=2))
        path.chmod(0o600)
        return stored
