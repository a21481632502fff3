"""``manage.py tracking_plan_suggest --source KEY --days N``: a proposed tracking plan as JSON
on stdout (event names and property types seen, never values), for an owner to review and
``PUT`` to ``/api/v1/sources/KEY/tracking-plan/``."""

import json

from django.core.management.base import BaseCommand, CommandError

from compliance.consent.models import EventSource
from compliance.plans.selectors.suggest import plan_suggest


class Command(BaseCommand):
    help = "Propose a tracking plan (JSON on stdout) from the event names and property types seen."

    def add_arguments(self, parser):
        parser.add_argument("--source", required=True, help="event source key, e.g. web")
        parser.add_argument("--days", type=int, default=30, help="look back this many days")

    def handle(self, *args, source, days, **options):
        if not EventSource.objects.filter(key=source).exists():
            raise CommandError(f"no event source {source!r}")
        if not 1 <= days <= 365:
            raise CommandError("--days must be from 1 to 365")
        document, counts = plan_suggest(source=source, days=days)
        self.stdout.write(json.dumps(document, indent=2, sort_keys=True))
        self.stderr.write(
            f"{len(document['events'])} event names from {counts['events']} events"
            + (
                f"; {counts['unreadable']} unreadable (erased) skipped"
                if counts["unreadable"]
                else ""
            )
        )
