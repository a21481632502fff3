"""Validation of segment definition fields: each returns the cleaned value or raises
``SegmentGovernanceError`` (code ``invalid``) naming the field."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

from compliance.consent.models import Purpose
from segments.models import Layer, Motion
from segments.services.errors import SegmentGovernanceError

#: the longest attribution window a measurement plan may name (days)
MAX_WINDOW_DAYS = 1095


def layers_clean(layers: Iterable[str]) -> list[str]:
    """Known layers, in order, without repeats."""
    values = list(dict.fromkeys(layers))
    bad = [layer for layer in values if layer not in Layer.values]
    if bad:
        raise SegmentGovernanceError(
            f"unknown layer(s): {', '.join(map(str, bad))}", code="invalid", field="layers"
        )
    return values


def purposes_clean(purposes: Iterable[str]) -> list[str]:
    """Known purpose keys (of the consent app's ``Purpose`` table), sorted, without repeats."""
    values = sorted(set(purposes))
    known = set(Purpose.objects.values_list("key", flat=True))
    bad = [p for p in values if p not in known]
    if bad:
        raise SegmentGovernanceError(
            f"unknown purpose(s): {', '.join(bad)}", code="invalid", field="required_purposes"
        )
    return values


def share_clean(value) -> Decimal | None:
    """A control group share strictly between 0 and 1, or ``None`` when not given."""
    if value is None or value == "":
        return None
    try:
        share = Decimal(str(value))
    except InvalidOperation:
        share = Decimal(-1)
    if not Decimal(0) < share < Decimal(1):
        raise SegmentGovernanceError(
            "control_group_share must be between 0 and 1 (exclusive)",
            code="invalid",
            field="control_group_share",
        )
    return share


def field_clean(field: str, value):
    """``value`` cleaned for the editable definition field ``field``."""
    if field == "layers":
        return layers_clean(value)
    if field == "required_purposes":
        return purposes_clean(value)
    if field == "control_group_share":
        return share_clean(value)
    if field == "motion" and value and value not in Motion.values:
        raise SegmentGovernanceError(f"unknown motion {value!r}", code="invalid", field="motion")
    if field == "attribution_window_days" and (
        isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_WINDOW_DAYS
    ):
        raise SegmentGovernanceError(
            f"attribution_window_days must be a whole number of days, 1 to {MAX_WINDOW_DAYS}",
            code="invalid",
            field="attribution_window_days",
        )
    if field in ("conversion_event", "value_property") and (
        not isinstance(value, str) or len(value) > 200
    ):
        raise SegmentGovernanceError(
            f"{field} must be an event or property name of at most 200 characters",
            code="invalid",
            field=field,
        )
    if field == "review_interval_days" and (not isinstance(value, int) or value < 1):
        raise SegmentGovernanceError(
            "review_interval_days must be a positive integer",
            code="invalid",
            field="review_interval_days",
        )
    return value
