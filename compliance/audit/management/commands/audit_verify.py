"""``python manage.py audit_verify [--database ALIAS]``: recompute chains, check signatures."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from compliance.audit.selectors.verification import chain_verify


class Command(BaseCommand):
    help = (
        "Recompute every audit chain (all databases by default) and check every signed "
        "checkpoint. Exit code 0 when whole; otherwise 1, naming the first entry that was "
        "modified, removed, inserted, reordered, or where the log was cut short."
    )

    def add_arguments(self, parser):
        parser.add_argument("--database", action="append", choices=list(settings.DATABASES))

    def handle(self, *args, **options):
        aliases = options["database"] or list(settings.DATABASES)
        broken = []
        for alias in aliases:
            result = chain_verify(using=alias)
            rate = result.entries / result.seconds if result.seconds else 0
            if result.ok:
                self.stdout.write(
                    f"chain {result.chain_id}: OK, {result.entries} entries, "
                    f"{result.checkpoints} signed checkpoints ({rate:,.0f} entries/s)"
                )
                continue
            broken.append(alias)
            first = result.first_finding
            self.stdout.write(f"chain {result.chain_id}: BROKEN")
            self.stdout.write(f"  first finding: {first.describe(result.chain_id)}")
            for finding in result.findings:
                if finding is not first:
                    self.stdout.write(f"  also: {finding.describe(result.chain_id)}")
        if broken:
            raise CommandError(f"audit chain(s) not whole: {', '.join(broken)}", returncode=1)
