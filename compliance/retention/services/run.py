"""One retention rule being enforced: what each category's handler gets (``RuleRun``) and the
steps they share: removing rows in batches, leaving held subjects alone, recording the run."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from compliance.audit.services.append import Actor
from compliance.errors import InternalError
from compliance.retention.models import RetentionRule
from compliance.retention.services.audit import retention_applied_append, retention_payload
from compliance.retention.sql import rows_delete


class RetentionRefused(InternalError):
    """A rule that may not run now (reason in the message)."""


@dataclass(frozen=True)
class RuleRun:
    """One rule being enforced: what every category handler needs."""

    rule: RetentionRule
    alias: str
    cutoff: datetime
    dry_run: bool
    batch: int
    held: set
    actor: Actor


def chunks(items: list, size: int) -> Iterable[list]:
    """``items`` in slices of ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def rows_remove(run: RuleRun, queryset) -> int:
    """Delete ``queryset`` (a regional queryset on the run's database) in batches; count if
    dry run."""
    if run.dry_run:
        return queryset.count()
    removed = 0
    while True:
        ids = list(queryset.order_by("pk").values_list("pk", flat=True)[: run.batch])
        if not ids:
            return removed
        with transaction.atomic(using=run.alias):
            removed += rows_delete(alias=run.alias, model=queryset.model, ids=ids)


def unheld(run: RuleRun, rows):
    """``rows`` without those of subjects under a legal hold."""
    return rows.exclude(subject_id__in=run.held) if run.held else rows


def run_audit(run: RuleRun, removed: dict, extra: dict) -> None:
    """The run's ``RETENTION_APPLIED`` entry: the rule's terms, ``removed`` and ``extra``."""
    payload = retention_payload(
        category=run.rule.category,
        max_age_days=run.rule.max_age_days,
        cutoff=run.cutoff,
        removed=removed,
        extra={k: v for k, v in extra.items() if k != "audited"},
    )
    rule_audit(run.alias, run.rule, run.actor, payload)


def rule_audit(alias: str, rule: RetentionRule, actor: Actor, payload: dict) -> None:
    """A ``RETENTION_APPLIED`` entry about ``rule`` with ``payload`` (also for refused runs)."""
    retention_applied_append(
        using=alias,
        actor=actor,
        object_type="retention_rule",
        object_id=str(rule.pk),
        payload=payload,
    )
