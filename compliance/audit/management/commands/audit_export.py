"""``python manage.py audit_export --from DATE --to DATE --out FILE.zip [--database ALIAS]``."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from compliance.audit.periods import PeriodError, period_parse
from compliance.audit.services.append import Actor
from compliance.audit.services.checkpoints import ChainDamagedError
from compliance.audit.services.export import audit_export, verify_commands
from compliance.audit.services.witness import WitnessError


class Command(BaseCommand):
    help = (
        "Write a signed, offline-verifiable evidence bundle (zip) of the audit entries in a "
        "period: dates are whole UTC days, --to inclusive. All databases unless --database."
    )

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="start", required=True, help="YYYY-MM-DD or ISO")
        parser.add_argument("--to", dest="end", required=True, help="YYYY-MM-DD (inclusive)")
        parser.add_argument("--out", required=True, help="the zip file to write")
        parser.add_argument("--database", action="append", choices=list(settings.DATABASES))

    def handle(self, *args, **options):
        try:
            start, end = period_parse(start=options["start"], end=options["end"])
        except PeriodError as exc:
            raise CommandError(str(exc))
        try:
            result = audit_export(
                start=start,
                end=end,
                out=options["out"],
                actor=Actor.system("audit_export"),
                aliases=options["database"],
            )
        except ChainDamagedError as exc:
            raise CommandError(f"not exported, the chain is damaged: {exc}")
        except WitnessError as exc:
            raise CommandError(f"not exported, the checkpoint was not witnessed: {exc}")
        for alias, info in result.chains.items():
            span = f"#{info['first_seq']}..#{info['last_seq']}" if info["count"] else "none"
            self.stdout.write(f"chain {alias}: {info['count']} entries ({span})")
        self.stdout.write(
            f"wrote {result.path} ({result.entries} entries), manifest SHA-256 "
            f"{result.manifest_sha256}"
        )
        self.stdout.write(
            f"verify it as VERIFY.md inside says, from the folder holding {result.path.name}:"
        )
        for command in verify_commands(bundle_name=result.path.name).values():
            self.stdout.write(f"  {command}")
