"""``{% governance_warnings as warnings %}``: the segment governance findings (``segments.W001``)
for the admin's banner."""

from django import template

from segments.checks import check_active_segments_per_motion

register = template.Library()


@register.simple_tag
def governance_warnings() -> list[dict]:
    return [{"id": w.id, "msg": w.msg, "hint": w.hint} for w in check_active_segments_per_motion()]
