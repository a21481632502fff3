"""Parsing export/report periods: dates are whole UTC days, ``to`` inclusive."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from django.utils.dateparse import parse_date, parse_datetime

from compliance.errors import InputError


class PeriodError(InputError):
    pass


def period_parse(*, start: str, end: str) -> tuple[datetime, datetime]:
    """``(from, to)`` strings -> ``[start, end)`` aware datetimes.

    A date (``2026-01-31``) means the whole UTC day, so ``to`` is inclusive; a datetime with
    time is taken as given (exclusive for ``to``). Raises ``PeriodError`` naming the bad one.
    """
    first = _parse(start, "from", end_of_day=False)
    last = _parse(end, "to", end_of_day=True)
    if last <= first:
        raise PeriodError("to: must be after from")
    return first, last


def _parse(value: str, name: str, *, end_of_day: bool) -> datetime:
    value = (value or "").strip()
    try:
        moment = parse_datetime(value) if "T" in value or " " in value else None
        if moment is None:
            day = parse_date(value)
            if day is None:
                raise ValueError
            moment = datetime.combine(day, time.min, tzinfo=UTC)
            if end_of_day:
                moment += timedelta(days=1)
    except ValueError:
        raise PeriodError(f"{name}: not a date (YYYY-MM-DD) or ISO datetime: {value!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment
