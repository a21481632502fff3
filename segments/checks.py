"""System checks of the segments app."""

from __future__ import annotations

from django.core import checks
from django.db import DatabaseError

from segments.selectors.segments import active_segments_per_motion

MIN_PER_MOTION = 3
MAX_PER_MOTION = 7


@checks.register("governance", deploy=True)
def check_active_segments_per_motion(app_configs=None, **kwargs):
    """Warn for each motion in use with fewer than 3 or more than 7 active segments.

    Motions without any active segment are not in use and not reported. Before the tables
    exist (first migrate) the check says nothing. A governance finding about data, not a
    configuration mistake: it is registered as a deploy check (``manage.py check --deploy``)
    so that not every management command repeats it; officers see it as a banner in the admin
    (``segments/templatetags/governance.py``) and ``load_demo`` prints it once at start.
    """
    try:
        per_motion = active_segments_per_motion()
    except DatabaseError:
        return []
    warnings = []
    for motion, keys in sorted(per_motion.items()):
        if MIN_PER_MOTION <= len(keys) <= MAX_PER_MOTION:
            continue
        warnings.append(
            checks.Warning(
                f"Motion {motion or '(none)'!r} has {len(keys)} active segments: "
                f"{', '.join(sorted(keys))}.",
                hint=(
                    f"Keep {MIN_PER_MOTION} to {MAX_PER_MOTION} active segments per motion: "
                    "fewer cannot be compared, more cannot be acted on or measured."
                ),
                id="segments.W001",
            )
        )
    return warnings
