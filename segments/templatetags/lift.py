"""``{% lift_panel report %}``: the lift panel (figures, warnings and a chart of the cumulative
conversion rate per arm) for the segment admin page, the segment review page and the dashboard.
"""

from __future__ import annotations

from django import template
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

register = template.Library()

WIDTH, HEIGHT, PAD = 560, 180, 28
COLOURS = {"treatment": "#417690", "control": "#b85c00"}


def lift_chart(report: dict) -> str:
    """An inline SVG: cumulative conversion rate by day since entry, one line per arm
    (numbers only: the report holds no text from users)."""
    curves = {arm: report[arm]["cumulative_conversion_rate"] for arm in COLOURS}
    days = max((len(c) for c in curves.values()), default=0)
    top = max((max(c, default=0.0) for c in curves.values()), default=0.0) or 0.01
    if not days:
        return ""

    def point(day: int, rate: float) -> str:
        x = PAD + (WIDTH - 2 * PAD) * (day + 1) / days
        y = HEIGHT - PAD - (HEIGHT - 2 * PAD) * rate / top
        return f"{x:.1f},{y:.1f}"

    lines = "".join(
        f'<polyline fill="none" stroke="{COLOURS[arm]}" stroke-width="2" '
        f'points="{PAD},{HEIGHT - PAD} {" ".join(point(d, r) for d, r in enumerate(curve))}">'
        f"<title>{arm}</title></polyline>"
        for arm, curve in curves.items()
    )
    axis = (
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#999"/>'
        f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#999"/>'
        f'<text x="{PAD}" y="{PAD - 8}" font-size="11">{top * 100:.1f}%</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 8}" font-size="11" text-anchor="end">'
        f"day {days}</text>"
        f'<text x="{PAD + 4}" y="{HEIGHT - 8}" font-size="11">entry</text>'
    )
    legend = "".join(
        f'<text x="{WIDTH - PAD}" y="{PAD + 14 * i}" font-size="11" text-anchor="end" '
        f'fill="{COLOURS[arm]}">{arm}</text>'
        for i, arm in enumerate(COLOURS)
    )
    return (
        f'<svg class="lift-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="cumulative conversion rate by day since entry, treatment and control">'
        f"{axis}{lines}{legend}</svg>"
    )


@register.simple_tag
def lift_panel(report: dict | None, *, heading: str = "Lift against the control group") -> str:
    if report is None:
        return ""
    return render_to_string(
        "segments/lift_panel.html",
        {
            "r": report,
            "arms": [(arm, report[arm]) for arm in COLOURS],
            "heading": heading,
            "chart": mark_safe(lift_chart(report)),
        },
    )
