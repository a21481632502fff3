"""``python manage.py migrate_all``: migrate the control database and every region's."""

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Apply migrations to every database alias (control and each region)."

    def handle(self, *args, **options):
        aliases = list(settings.DATABASES)
        for index, alias in enumerate(aliases, start=1):
            self.stdout.write(f"[{index}/{len(aliases)}] migrating database '{alias}'")
            call_command("migrate", database=alias, interactive=False, verbosity=0)
        self.stdout.write(self.style.SUCCESS(f"migrated {len(aliases)} databases"))
