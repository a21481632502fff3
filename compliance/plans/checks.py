"""System check of the plans app: segments built on unreliable data."""

from __future__ import annotations

from django.core import checks
from django.db import DatabaseError

from compliance.plans.selectors.instrumentation import UNRELIABLE_DAYS, unreliable_segments


@checks.register("governance", deploy=True)
def check_segments_on_unreliable_data(app_configs=None, **kwargs):
    """Warn for each segment whose layers draw on a source with more than
    ``PLANS_UNRELIABLE_SHARE`` of its events violating its tracking plan over the last 7 days.

    A finding about data, registered as a deploy check like ``segments.W001`` (``manage.py
    check --deploy``); officers see the flag on the segment review pages. Says nothing before
    the tables exist.
    """
    from segments.models import Segment

    try:
        found = unreliable_segments(segments=Segment.objects.exclude(status="retired"))
    except DatabaseError:
        return []
    return [
        checks.Warning(
            f"Segment {key!r} is built on unreliable data: "
            + ", ".join(f"{s} {share:.1%} violating" for s, share in sources.items())
            + f" over the last {UNRELIABLE_DAYS} days.",
            hint="Fix the instrumentation (see the instrumentation audit in the admin) or the "
            "source's tracking plan before relying on the segment.",
            id="plans.W001",
        )
        for key, sources in sorted(found.items())
    ]
