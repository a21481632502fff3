"""Publishing a tracking plan version: the one write path of ``TrackingPlan``."""

from __future__ import annotations

from django.db import transaction

from compliance.audit.codes import AuditCode
from compliance.audit.services.append import Actor, AuditEntry, audit_append
from compliance.consent.models import EventSource
from compliance.plans.documents import PlanDocument
from compliance.plans.models import TrackingPlan


def tracking_plan_publish(
    *, source: EventSource, document: PlanDocument, actor: Actor
) -> TrackingPlan:
    """Save ``document`` as the source's next version (1 for the first) and audit
    ``TRACKING_PLAN_PUBLISHED`` on the control chain with the plan's SHA-256 (of its canonical
    JSON), in one transaction. The source row is locked so that two publishers get two
    versions. Always a new version, even when nothing changed (the audit says so:
    ``unchanged``)."""
    with transaction.atomic(using="default"):
        EventSource.objects.using("default").select_for_update().filter(pk=source.pk).first()
        versions = TrackingPlan.objects.using("default").filter(source=source)
        latest = versions.order_by("-version").values_list("version", "sha256").first()
        plan = TrackingPlan.objects.using("default").create(
            source=source,
            version=latest[0] + 1 if latest else 1,
            mode=document.mode,
            events=list(document.events),
            identifier_types=list(document.identifier_types),
            sha256=document.sha256,
            created_by=f"{actor.kind}:{actor.id}",
        )
        audit_append(
            using="default",
            entries=[
                AuditEntry(
                    code=AuditCode.TRACKING_PLAN_PUBLISHED,
                    actor=actor,
                    object_type="tracking_plan",
                    object_id=f"{source.key}:v{plan.version}",
                    payload={
                        "source": source.key,
                        "version": plan.version,
                        "mode": plan.mode,
                        "sha256": plan.sha256,
                        "events": len(plan.events),
                        "identifier_types": list(plan.identifier_types),
                        "previous_sha256": latest[1] if latest else "",
                        "unchanged": bool(latest and latest[1] == plan.sha256),
                    },
                )
            ],
        )
    return plan
