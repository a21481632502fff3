"""``python manage.py load_demo``: demo subjects in ``eu`` and ``us`` and a demo officer login.

Idempotent: running it again finds what exists. The demo password is generated once into
``var/demo-login.json`` and printed each time (local use only; never in production).
"""

import json
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from compliance.audit.services.append import Actor
from compliance.roles import AUDITOR, PRIVACY_OFFICER, SUPPORT_AGENT
from compliance.services.subjects import subject_resolve

DEMO_SUBJECTS = [
    ("email", "amelie.martin@example.fr", "FR"),
    ("email", "jonas.becker@example.de", "DE"),
    ("email", "lucia.rossi@example.it", "IT"),
    ("email", "jordan.lee@example.com", "US-CA"),
    ("email", "sam.taylor@example.com", "US-NY"),
]
DEMO_STAFF = [("officer", PRIVACY_OFFICER), ("support", SUPPORT_AGENT), ("auditor", AUDITOR)]


class Command(BaseCommand):
    help = "Load demo data (idempotent) and print the demo logins."

    def handle(self, *args, **options):
        actor = Actor.system("demo")
        for identifier_type, value, jurisdiction in DEMO_SUBJECTS:
            subject_resolve(
                identifier_type=identifier_type, value=value, jurisdiction=jurisdiction, actor=actor
            )
        self.stdout.write(f"demo subjects: {len(DEMO_SUBJECTS)} (eu and us)")
        self._load_app_demo(actor=actor)
        logins = self._demo_logins()
        self.stdout.write(self.style.SUCCESS("Demo logins at http://127.0.0.1:8000/admin/ :"))
        for username, group in DEMO_STAFF:
            self.stdout.write(f"  {username:8} / {logins[username]}   ({group})")

    def _load_app_demo(self, *, actor) -> None:
        """Demo data of the other apps (each app's ``demo.load``), when installed."""
        from importlib import import_module

        for module in ("compliance.consent.demo", "segments.demo", "compliance.dsar.demo"):
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
