"""``python manage.py audit_verify [--database ALIAS] [--witness [DIR]]``: recompute chains,
check signatures, cross-check the checkpoints the chain recorded, and the witness."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from compliance.audit.selectors.verification import chain_verify
from compliance.conf import compliance_settings


class Command(BaseCommand):
    help = (
        "Recompute every audit chain (all databases by default), check every signed checkpoint "
        "and every checkpoint the chain recorded (and, with --witness, every witnessed one). "
        "Exit code 0 when whole; otherwise 1, naming the first entry that was modified, removed, "
        "inserted, reordered, rewritten, or where the log was cut short or wiped."
    )

    def add_arguments(self, parser):
        parser.add_argument("--database", action="append", choices=list(settings.DATABASES))
        parser.add_argument(
            "--witness",
            nargs="?",
            const="",
            metavar="DIR",
            help="also check every checkpoint witnessed in DIR (a copy of the witness directory; "
            "without DIR: COMPLIANCE_AUDIT_WITNESS_DIR): truncated, rewritten or wiped chains",
        )

    def handle(self, *args, **options):
        aliases = options["database"] or list(settings.DATABASES)
        witness = options["witness"]
        if witness == "":
            witness = compliance_settings.AUDIT_WITNESS_DIR
            if not witness:
                raise CommandError("--witness without DIR needs COMPLIANCE_AUDIT_WITNESS_DIR")
        if witness and not Path(witness).is_dir():
            raise CommandError(f"--witness {witness}: no such directory")
        broken = []
        for alias in aliases:
            result = chain_verify(using=alias, witness=witness)
            rate = result.entries / result.seconds if result.seconds else 0
            if result.ok:
                witnessed = (
                    f", {result.witnessed} witnessed" if result.witnessed is not None else ""
                )
                self.stdout.write(
                    f"chain {result.chain_id}: OK, {result.entries} entries, "
                    f"{result.checkpoints} signed checkpoints{witnessed} ({rate:,.0f} entries/s)"
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
