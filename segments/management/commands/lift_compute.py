"""``python manage.py lift_compute [--segment KEY] [--region R ...]``: compute the lift
aggregates now, synchronously, and print each segment's report."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from compliance.regions import UnknownRegionError, region_alias, regions
from segments.models import Segment
from segments.selectors.lift import lift_report
from segments.services.lift import lift_compute_region, lift_segments


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


def _ci(pair: list[float] | None) -> str:
    return "" if pair is None else f" [{pair[0] * 100:+.2f}%, {pair[1] * 100:+.2f}%]"


class Command(BaseCommand):
    help = (
        "Compute the lift aggregates of every measured segment (activated at least once, not "
        "retired), or of --segment KEY, in each region (all configured regions by default; run "
        "it where the region's data may be processed), then print each segment's report."
    )

    def add_arguments(self, parser):
        parser.add_argument("--segment", metavar="KEY", help="only this segment")
        parser.add_argument(
            "--region", action="append", metavar="REGION", help="only this region (repeatable)"
        )

    def handle(self, *args, **options):
        wanted = options["region"] or regions()
        for region in wanted:
            try:
                region_alias(region=region)
            except UnknownRegionError as error:
                raise CommandError(f"--region: {error}") from error
        key = options["segment"]
        try:
            segments = lift_segments(segment_key=key)
        except Segment.DoesNotExist:
            raise CommandError(f"--segment: no segment with key {key!r}") from None
        if not segments:
            self.stdout.write("no measured segment (none activated yet)")
            return
        for region in wanted:
            for run in lift_compute_region(region=region, segment_key=key):
                self.stdout.write(
                    f"{region}: {run.segment_key}: {run.stays:,} stays, "
                    f"{run.conversions:,} conversions"
                )
        for segment in segments:
            self._print(lift_report(segment=segment))

    def _print(self, report: dict) -> None:
        t, c = report["treatment"], report["control"]
        self.stdout.write(
            f"\n{report['segment']} (window {report['window_days']} days, "
            f"control share {report['control_share']:.3f})"
        )
        for name, arm in (("treatment", t), ("control", c)):
            mean = "-" if arm["mean_value"] is None else f"{arm['mean_value']:,.2f}"
            median = "-" if arm["median_cycle_days"] is None else f"{arm['median_cycle_days']:g}"
            self.stdout.write(
                f"  {name:<9} units {arm['units']:>9,}  conversions {arm['conversions']:>8,}  "
                f"rate {_pct(arm['conversion_rate']):>7}  mean value {mean}  "
                f"median cycle {median} days"
            )
        if report["enough_data"]:
            self.stdout.write(
                f"  absolute lift {_pct(report['absolute_lift'])}{_ci(report['absolute_lift_ci'])}"
                f"; relative lift {_pct(report['relative_lift'])}{_ci(report['relative_lift_ci'])}"
            )
        self.stdout.write(
            f"  sample ratio: p = {report['srm_p_value']:.4f}"
            + (" MISMATCH" if report["srm_flag"] else "")
        )
        for warning in report["warnings"]:
            self.stdout.write(f"  warning: {warning['message']}")
