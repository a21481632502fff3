"""Charts drawn on the server as inline SVG: no script, no library, nothing fetched.

Each function returns safe markup with a ``<title>`` and a legend in text, so the numbers are
readable without the picture (and by screen readers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

PALETTE = ("#3b6ea5", "#e07b39", "#5a9e4b", "#b54a4a", "#8a63b8", "#6b7a8f", "#c9a227")
FONT = 'font-family="sans-serif" font-size="11"'


#: fixed colours for consent decisions, whatever the order they appear in
DECISION_COLORS = {
    "granted": "#5a9e4b",
    "denied": "#b54a4a",
    "withdrawn": "#e07b39",
    "objected": "#8a63b8",
    "opted_out": "#c9a227",
    "expired": "#6b7a8f",
}


def _color(index: int, key: str = "") -> str:
    return DECISION_COLORS.get(key) or PALETTE[index % len(PALETTE)]


def _legend(keys: Sequence[str], *, y: int, x: int = 0) -> list[str]:
    parts, offset = [], x
    for index, key in enumerate(keys):
        parts.append(
            f'<rect x="{offset}" y="{y}" width="10" height="10" fill="{_color(index, key)}"></rect>'
            f'<text x="{offset + 14}" y="{y + 9}" {FONT}>{escape(key)}</text>'
        )
        offset += 24 + 7 * len(key)
    return parts


def _svg(width: int, height: int, title: str, body: list[str]) -> SafeString:
    return mark_safe(  # noqa: S308 - every label above went through escape()
        f'<svg role="img" class="officer-chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>{escape(title)}</title>{"".join(body)}</svg>'
    )


def stacked_columns(
    *, title: str, labels: Sequence[str], series: Mapping[str, Sequence[int]], height: int = 160
) -> SafeString:
    """Vertical stacked columns, one per label (e.g. week), one colour per series (type)."""
    column, gap, left = 34, 12, 28
    totals = [sum(values[i] for values in series.values()) for i in range(len(labels))]
    top = max(totals, default=0) or 1
    width = left + len(labels) * (column + gap) + 10
    body = [
        f'<line x1="{left - 4}" y1="{height}" x2="{width}" y2="{height}" stroke="#999"></line>',
        f'<text x="0" y="10" {FONT}>{top}</text>',
    ]
    for i, label in enumerate(labels):
        x, y = left + i * (column + gap), height
        for index, values in enumerate(series.values()):
            value = values[i]
            if not value:
                continue
            h = round((height - 14) * value / top)
            y -= h
            body.append(
                f'<rect x="{x}" y="{y}" width="{column}" height="{h}" fill="{_color(index)}">'
                f"<title>{escape(label)}: {value}</title></rect>"
            )
        if totals[i]:
            body.append(f'<text x="{x + 2}" y="{y - 3}" {FONT}>{totals[i]}</text>')
        body.append(f'<text x="{x}" y="{height + 14}" {FONT}>{escape(label)}</text>')
    body.extend(_legend(list(series), y=height + 24))
    return _svg(max(width, 420), height + 40, title, body)


def percent_columns(
    *, title: str, labels: Sequence[str], values: Sequence[tuple[float | None, int]]
) -> SafeString:
    """One column per label showing a rate (0-100 %) and the count it is computed from."""
    height, column, gap, left = 120, 34, 12, 28
    width = left + len(labels) * (column + gap) + 10
    body = [
        f'<line x1="{left - 4}" y1="{height}" x2="{width}" y2="{height}" stroke="#999"></line>',
        f'<text x="0" y="10" {FONT}>100%</text>',
    ]
    for i, (label, (rate, count)) in enumerate(zip(labels, values, strict=True)):
        x = left + i * (column + gap)
        if rate is not None:
            h = round((height - 14) * rate)
            color = "#5a9e4b" if rate >= 0.95 else ("#c9a227" if rate >= 0.8 else "#b54a4a")
            body.append(
                f'<rect x="{x}" y="{height - h}" width="{column}" height="{h}" fill="{color}">'
                f"<title>{escape(label)}: {round(rate * 100)}% of {count}</title></rect>"
                f'<text x="{x + 2}" y="{height - h - 3}" {FONT}>{round(rate * 100)}%</text>'
            )
        else:
            body.append(f'<text x="{x + 4}" y="{height - 3}" {FONT} fill="#888">-</text>')
        body.append(f'<text x="{x}" y="{height + 14}" {FONT}>{escape(label)}</text>')
    return _svg(max(width, 420), height + 22, title, body)


def stacked_bars(
    *,
    title: str,
    rows: Mapping[str, Mapping[str, int]],
    label_width: int = 120,
    legend: bool = True,
) -> SafeString:
    """Horizontal stacked bars: one bar per row (e.g. source), one colour per key (decision)."""
    if not rows:
        return mark_safe('<p class="help">No data yet.</p>')
    keys = sorted({key for counts in rows.values() for key in counts})
    bar, gap, span = 16, 6, 320
    top = max((sum(c.values()) for c in rows.values()), default=0) or 1
    body = []
    for i, (label, counts) in enumerate(rows.items()):
        y, x = i * (bar + gap), label_width
        body.append(
            f'<text x="{label_width - 6}" y="{y + 12}" text-anchor="end" {FONT}>'
            f"{escape(label)}</text>"
        )
        for index, key in enumerate(keys):
            value = counts.get(key, 0)
            if not value:
                continue
            w = max(1, round(span * value / top))
            body.append(
                f'<rect x="{x}" y="{y}" width="{w}" height="{bar}" fill="{_color(index, key)}">'
                f"<title>{escape(label)} {escape(key)}: {value}</title></rect>"
            )
            x += w
        body.append(f'<text x="{x + 4}" y="{y + 12}" {FONT}>{sum(counts.values())}</text>')
    bottom = len(rows) * (bar + gap) + 4
    if legend:
        body.extend(_legend(keys, y=bottom))
    return _svg(label_width + span + 60, bottom + (16 if legend else 0), title, body)


def bars(*, title: str, items: Mapping[str, int], label_width: int = 140) -> SafeString:
    """Horizontal bars, one per item."""
    return stacked_bars(
        title=title,
        rows={label: {"count": value} for label, value in items.items()},
        label_width=label_width,
        legend=False,
    )


def intervals(
    *, title: str, rows: Sequence[tuple[str, float | None, float | None, float | None, bool]]
) -> SafeString:
    """A forest plot: one row per ``(label, value, low, high, flagged)``, a dot at the value
    and a line over its interval against a zero line (rows without a value say "not enough
    data"; flagged rows are drawn red: their figures are not to be trusted)."""
    if not rows:
        return mark_safe('<p class="help">No data yet.</p>')
    label_width, span, row = 140, 280, 22
    ends = [abs(v) for r in rows for v in r[1:4] if v is not None]
    top = max(ends, default=0.0) or 0.01
    zero = label_width + span / 2

    def x(value: float) -> float:
        return zero + span / 2 * value / top

    height = len(rows) * row + 18
    body = [
        f'<line x1="{zero}" y1="0" x2="{zero}" y2="{height - 16}" stroke="#999"></line>',
        f'<text x="{zero}" y="{height - 4}" text-anchor="middle" {FONT}>0</text>',
        f'<text x="{label_width}" y="{height - 4}" {FONT}>{-top * 100:+.1f} pt</text>',
        f'<text x="{label_width + span}" y="{height - 4}" text-anchor="end" {FONT}>'
        f"{top * 100:+.1f} pt</text>",
    ]
    for i, (label, value, low, high, flagged) in enumerate(rows):
        y = i * row + 11
        body.append(
            f'<text x="{label_width - 6}" y="{y + 4}" text-anchor="end" {FONT}>'
            f"{escape(label)}</text>"
        )
        if value is None or low is None or high is None:
            body.append(
                f'<text x="{zero + 6}" y="{y + 4}" {FONT} fill="#888">not enough data</text>'
            )
            continue
        color = "#b54a4a" if flagged else PALETTE[0]
        body.append(
            f'<line x1="{x(low):.1f}" y1="{y}" x2="{x(high):.1f}" y2="{y}" stroke="{color}" '
            f'stroke-width="2"></line><circle cx="{x(value):.1f}" cy="{y}" r="4" fill="{color}">'
            f"<title>{escape(label)}: {value * 100:+.2f} pt ({low * 100:+.2f} to "
            f"{high * 100:+.2f}){' - sample ratio mismatch' if flagged else ''}</title></circle>"
        )
    return _svg(label_width + span + 20, height, title, body)
