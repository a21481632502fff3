"""Creating and changing retention rules (control database, audited in its chain)."""

from __future__ import annotations

from collections.abc import Iterable

from django.apps import apps
from django.db import transaction

from compliance.audit.codes import AuditCode
from compliance.audit.services.append import Actor, AuditEntry, audit_append
from compliance.errors import InputError
from compliance.regions import regions
from compliance.retention.conf import retention_settings
from compliance.retention.models import Category, RetentionRule

#: categories that need a model of the DSAR app: (app label, model name)
DSAR_MODELS = {
    Category.EXPORT_PACKAGES: ("dsar", "Package"),
    Category.REQUEST_RECORDS: ("dsar", "PrivacyRequest"),
}


class RetentionRuleError(InputError):
    """A rule that cannot be enforced; ``field`` names the offending field."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


def dsar_model(category: str):
    """The DSAR model a category needs, or ``None`` when the DSAR app does not provide it."""
    app_label, name = DSAR_MODELS[category]
    try:
        return apps.get_model(app_label, name)
    except LookupError:
        return None


def rule_validate(*, rule: RetentionRule) -> None:
    """Raise ``RetentionRuleError`` with a clear message for a rule that would not hold."""
    if rule.category not in Category.values:
        raise RetentionRuleError(f"unknown category {rule.category!r}", field="category")
    if rule.region not in regions():
        raise RetentionRuleError(
            f"unknown region {rule.region!r}; configured: {', '.join(regions())}", field="region"
        )
    if not rule.max_age_days or rule.max_age_days < 1:
        raise RetentionRuleError("the maximum age is at least one day", field="max_age_days")
    if rule.category == Category.AUDIT_ENTRIES:
        minimum = retention_settings.AUDIT_MIN_DAYS
        if rule.max_age_days < minimum:
            raise RetentionRuleError(
                f"audit entries must be kept at least {minimum} days (the legal minimum, "
                "setting COMPLIANCE_RETENTION_AUDIT_MIN_DAYS); only whole prefixes of the "
                "chain up to a signed checkpoint older than the maximum age are dropped",
                field="max_age_days",
            )
    if rule.category in DSAR_MODELS and dsar_model(rule.category) is None:
        raise RetentionRuleError(
            f"{rule.get_category_display()} need the DSAR app's "
            f"{'.'.join(DSAR_MODELS[rule.category])} model, which is not installed",
            field="category",
        )


def _audit(*, pk: int, actor: Actor, payload: dict) -> None:
    """``CONFIGURATION_CHANGED`` about retention rule ``pk`` in the control chain."""
    entry = AuditEntry(
        code=AuditCode.CONFIGURATION_CHANGED,
        actor=actor,
        object_type="retention_rule",
        object_id=str(pk),
        payload=payload,
    )
    audit_append(using="default", entries=[entry])


def rule_save(*, rule: RetentionRule, actor: Actor, changed: Iterable[str] = ()) -> RetentionRule:
    """Validate and save ``rule``; ``CONFIGURATION_CHANGED`` in the control chain."""
    rule_validate(rule=rule)
    creating = rule.pk is None
    with transaction.atomic(using="default"):
        rule.save()
        _audit(
            pk=rule.pk,
            actor=actor,
            payload={
                "action": "created" if creating else "changed",
                "category": rule.category,
                "region": rule.region,
                "max_age_days": rule.max_age_days,
                "is_active": rule.is_active,
                "fields": sorted(set(changed)),
            },
        )
    return rule


def rule_delete(*, rule: RetentionRule, actor: Actor) -> None:
    """Delete ``rule``; ``CONFIGURATION_CHANGED`` (action ``deleted``) in the control chain."""
    pk = rule.pk
    with transaction.atomic(using="default"):
        rule.delete()
        _audit(
            pk=pk,
            actor=actor,
            payload={"action": "deleted", "category": rule.category, "region": rule.region},
        )
