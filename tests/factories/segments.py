"""Segment definitions (through the governance services) and stays (plain history rows)."""

from __future__ import annotations

import factory
from django.utils import timezone

from compliance.regions import region_alias
from segments.models import Segment, SegmentMembership
from segments.services.definitions import segment_activate, segment_approve, segment_create
from tests.factories.base import RegionalRowFactory, ServiceFactory
from tests.factories.users import StaffFactory
from tests.guards import owner_bypass

_STEPS = {"draft": 0, "approved": 1, "active": 2}


class SegmentFactory(ServiceFactory):
    """``segment_create`` proposed by ``user`` (owner too unless ``owner`` is given), then
    ``segment_approve`` and ``segment_activate`` by ``user`` up to ``status`` (draft,
    approved or active). ``required_purposes`` defaults to the purposes of ``layers``; any
    other keyword of ``segment_create`` is passed through.

    Holdout: activation draws a random salt, so with a control group share a random subject
    lands in ``control`` with that probability. Unless ``holdout=True``, the factory clears
    the salt after activation (no salt: every stay is ``treatment``), so tests that are not
    about arms stay deterministic; holdout tests pass ``holdout=True``."""

    class Meta:
        model = Segment

    key = factory.Sequence(lambda n: f"seg-{n}")
    name = "Test segment"
    layers = ("behavioral",)
    status = "active"
    user = factory.SubFactory(StaffFactory)
    owner = factory.SelfAttribute("user")
    motion = "campaign"
    measurement_metric = "conversion rate"
    control_group_share = "0.1"
    holdout = False

    @classmethod
    def _create(cls, model_class, *, layers, status, user, holdout, **values):
        steps = _STEPS[status]  # KeyError: a status this factory cannot reach
        segment = segment_create(layers=list(layers), user=user, **values)
        if steps >= 1:
            segment = segment_approve(segment=segment, user=user)
        if steps >= 2:
            segment = segment_activate(segment=segment, user=user)
            if not holdout:
                Segment.objects.filter(pk=segment.pk).update(holdout_salt="")
                segment.holdout_salt = ""
        return segment


class SegmentStayFactory(RegionalRowFactory):
    """One stay of ``subject_id`` in ``segment_key`` as a plain row in ``region``, written as
    the table owner would (behind the membership guards, no audit entry): for history that no
    service writes directly (old stays, retention). Open unless ``exited_at`` is given."""

    class Meta:
        model = SegmentMembership

    segment_key = factory.Sequence(lambda n: f"seg-{n}")
    entered_at = factory.LazyFunction(timezone.now)
    entered_reason = "criteria"
    exited_at = None
    exited_reason = factory.LazyAttribute(lambda o: "" if o.exited_at is None else "criteria")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        with owner_bypass(region_alias(region=kwargs["region"])):
            return super()._create(model_class, *args, **kwargs)
