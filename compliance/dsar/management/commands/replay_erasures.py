"""``python manage.py replay_erasures [--region eu] [--ledger FILE | --export FILE]``.

After restoring a backup, erase again every subject in the destroyed-keys ledger (see
``compliance.dsar.services.replay``). ``--export`` writes the ledger as JSON Lines instead.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from compliance.dsar.services.replay import erasures_replay, ledger_export, ledger_read
from compliance.regions import regions


class Command(BaseCommand):
    help = "Re-apply the destroyed-keys ledger after a backup restore (or export the ledger)."

    def add_arguments(self, parser):
        parser.add_argument("--region", action="append", help="region(s); default: all")
        parser.add_argument("--ledger", type=Path, help="replay from this JSON Lines export")
        parser.add_argument("--export", type=Path, help="write the ledger to this file and stop")

    def handle(self, *args, **options):
        chosen = options["region"] or regions()
        unknown = set(chosen) - set(regions())
        if unknown:
            raise CommandError(f"unknown region(s): {', '.join(sorted(unknown))}")
        if options["export"] and options["ledger"]:
            raise CommandError("use either --export or --ledger")
        for region in chosen:
            if options["export"]:
                path = options["export"]
                if len(chosen) > 1:
                    path = path.with_name(f"{path.stem}-{region}{path.suffix}")
                count = ledger_export(region=region, path=path)
                self.stdout.write(f"{region}: {count} ledger entries written to {path}")
                continue
            entries = ledger_read(path=options["ledger"]) if options["ledger"] else None
            totals = erasures_replay(region=region, entries=entries)
            self.stdout.write(
                f"{region}: {totals['subjects']} restored subjects erased again, "
                f"{totals['rows']} rows, {totals['directory_rows']} directory rows, "
                f"{totals['suppressed']} identifiers suppressed; suppression list copied to "
                f"the control database ({totals['mirrored']} rows)"
            )
