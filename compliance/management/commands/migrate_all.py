"""``python manage.py migrate_all``: migrate the control database and every region's."""

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from compliance.owner_connections import owner_connections


class Command(BaseCommand):
    help = (
        "Apply migrations to every database alias (control and each region), as each "
        "database's owner where DATABASE_OWNER_URL* is set."
    )

    def handle(self, *args, **options):
        aliases = list(settings.DATABASES)
        with owner_connections(aliases) as as_owner:
            for index, alias in enumerate(aliases, start=1):
                role = " as its owner (DATABASE_OWNER_URL*)" if alias in as_owner else ""
                self.stdout.write(f"[{index}/{len(aliases)}] migrating database '{alias}'{role}")
                call_command("migrate", database=alias, interactive=False, verbosity=0)
        self.stdout.write(self.style.SUCCESS(f"migrated {len(aliases)} databases"))
