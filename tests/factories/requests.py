"""Privacy requests, opened and moved on by the request services (every step audited)."""

from __future__ import annotations

from datetime import timedelta

import factory
from django.utils import timezone

from compliance.dsar.models import PrivacyRequest, Status
from compliance.dsar.services.requests import (
    request_approve,
    request_cancel,
    request_open,
    request_reject,
)
from compliance.dsar.services.transitions import request_transition
from compliance.regions import region_alias
from tests.factories.base import ACTOR, ServiceFactory
from tests.factories.subjects import SubjectFactory


class PrivacyRequestFactory(ServiceFactory):
    """``request_open`` by e-mail ``email``, for ``subject``: by default a person made with that
    e-mail in ``jurisdiction`` (an existing one is found, as in production); ``subject=None``
    makes nobody, so for an unknown e-mail nobody is held and the request completes at once.
    Then on to ``status``:

    * ``None`` (default): where opening leaves it (an erasure awaits approval, other types
      process, nobody held completes);
    * ``processing`` (an erasure approved with ``request_approve``), ``rejected``
      (``request_reject``), ``cancelled`` (``request_cancel``), ``completed`` and ``failed``
      (``request_transition`` from processing: the status and its audit entry, no job's work).

    ``approved=True``: verified by ID document and approved, so processing (its job queued after
    commit). ``overdue=True`` moves the deadline two days into the past. Further keywords of
    ``request_open`` (``purposes``, ``client_id``, ``callback_url``, ...) are passed through.
    Returns the request loaded from its region.
    """

    class Meta:
        model = PrivacyRequest

    class Params:
        #: verified by ID document and approved by an officer (``request_approve``): processing
        approved = factory.Trait(verification_method="id_document", status=Status.PROCESSING)

    type = "erasure"
    regulation = "gdpr"
    jurisdiction = "FR"
    email = factory.Sequence(lambda n: f"requester{n}@example.org")
    subject = factory.SubFactory(
        SubjectFactory,
        email=factory.SelfAttribute("..email"),
        jurisdiction=factory.SelfAttribute("..jurisdiction"),
    )
    verification_method = "email_confirmation"
    status = None
    overdue = False
    actor = ACTOR

    @classmethod
    def _create(cls, model_class, *, email, subject, status, overdue, actor, **opening):
        request = request_open(
            identifiers=[{"type": "email", "value": email}], actor=actor, **opening
        ).request
        alias = region_alias(region=request.region)
        request = PrivacyRequest.objects.using(alias).get(pk=request.pk)
        if status in (None, request.status):
            pass
        elif status in (Status.PROCESSING, Status.COMPLETED, Status.FAILED):
            if request.status == Status.AWAITING_APPROVAL:
                request = request_approve(request=request, actor=actor)
            if status == Status.COMPLETED:
                request = request_transition(request=request, to=status, actor=actor)
            elif status == Status.FAILED:
                request_transition(request=request, to=status, actor=actor, reason="test failure")
        elif status == Status.REJECTED:
            request_reject(request=request, actor=actor, reason="test rejection")
        elif status == Status.CANCELLED:
            request_cancel(request=request, actor=actor)
        else:
            raise ValueError(f"PrivacyRequestFactory cannot reach status {status!r}")
        if overdue:
            PrivacyRequest.objects.using(alias).filter(pk=request.pk).update(
                due_at=timezone.now() - timedelta(days=2)
            )
        request = PrivacyRequest.objects.using(alias).get(pk=request.pk)
        assert status is None or request.status == status, (request.status, status)
        return request
