"""``python manage.py suppressions_mirror [--region R ...]``: copy the regions' suppression lists
into the control database's mirror (idempotent)."""

from django.core.management.base import BaseCommand, CommandError

from compliance.regions import regions
from compliance.services.suppressions import suppressions_mirror_backfill


class Command(BaseCommand):
    help = (
        "Copy every region's suppressed identifiers (blind indexes) into the control "
        "database's mirror, which answers 'was this identifier erased?'. Migration "
        "compliance.0005 does it once; run it again after restoring the control database "
        "from a backup (replay_erasures also does) or after migrating a region before "
        "'default'. Idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument("--region", action="append", help="a region (default: all)")

    def handle(self, *args, **options):
        chosen = options["region"] or regions()
        unknown = set(chosen) - set(regions())
        if unknown:
            raise CommandError(f"unknown region(s): {', '.join(sorted(unknown))}")
        for region in chosen:
            read = suppressions_mirror_backfill(region=region)
            self.stdout.write(f"{region}: {read} suppressed identifiers copied (or already there)")
