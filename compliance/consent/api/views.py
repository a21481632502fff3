"""Thin consent API views: validate input, call a service or selector, render output."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response

from compliance.api import examples
from compliance.api.views import ApiView
from compliance.audit.services.append import Actor
from compliance.consent.api import serializers as s
from compliance.consent.api.fast import consent_body_parsed, events_rendered
from compliance.consent.selectors import subjects as subject_selectors
from compliance.consent.services.record import DecisionInput, jurisdiction_normalize
from compliance.consent.services.signals import gpc_header_set
from compliance.consent.services.submission import Submission, Submitted, consent_submit
from compliance.consent.tcf import tcf_decode, tcf_validate
from compliance.errors import NotFoundError
from compliance.services.subjects import SubjectSuppressedError, subject_resolve


def _actor(request) -> Actor:
    return Actor.client(request.auth)


def _validated(serializer_class, data):
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _subject_body(subject, *, requested=None, history: bool = False, **evaluation_kwargs) -> dict:
    states = subject_selectors.consent_state_rows(subject=subject)
    evaluation = subject_selectors.consent_evaluation(
        subject=subject, states=states, **evaluation_kwargs
    )
    body = {
        "id": subject.pk,
        "region": subject.region,
        "merged_from": requested if requested and requested != subject.pk else None,
        "state": s.states_data(states),
        "evaluation": {
            key: {
                "allowed": d.allowed,
                "basis": d.basis,
                "reason": d.reason,
                "event_ids": list(d.event_ids),
            }
            for key, d in evaluation.items()
        },
    }
    if history:
        body["history"] = s.events_data(subject_selectors.consent_history(subject=subject))
    return body


class ConsentCreateView(ApiView):
    """Record consent decisions, a raw TCF signal and/or a ``Sec-GPC: 1`` opt-out."""

    required_scopes = "consent:write"

    @extend_schema(
        request=s.ConsentIn,
        examples=[examples.CONSENT],
        responses={201: s.ConsentRecordedOut, 200: s.ConsentRecordedOut},
        parameters=[
            OpenApiParameter(
                "Sec-GPC",
                str,
                OpenApiParameter.HEADER,
                required=False,
                description="'1' records an opt-out of sale/sharing where GPC is binding",
            )
        ],
    )
    def post(self, request):
        # the usual body without DRF's machinery; anything else (and every error) through it
        data = consent_body_parsed(request.data) or _validated(s.ConsentIn, request.data)
        done = consent_submit(
            submission=Submission(
                identifiers=data["identifiers"],
                source=data["source"],
                jurisdiction=data.get("jurisdiction") or None,
                decisions=[
                    DecisionInput(
                        purpose=d["purpose"],
                        decision=d["decision"],
                        lawful_basis=d.get("lawful_basis"),
                    )
                    for d in data.get("decisions") or ()
                ],
                method=data["method"],
                captured_at=data.get("captured_at"),
                notice_version_id=data.get("notice_version_id"),
                collection_point=data.get("collection_point", ""),
                tc_string=data["signal"]["value"] if "signal" in data else None,
                gpc_received=gpc_header_set(value=request.headers.get("Sec-GPC")),
            ),
            actor=_actor(request),
        )
        return Response(
            _submitted_body(done),
            status=status.HTTP_201_CREATED if done.recorded else status.HTTP_200_OK,
        )


def _submitted_body(done: Submitted) -> dict:
    subject = done.subject
    return {
        "subject_id": (subject.merged_into or subject.pk) if subject else None,
        "region": subject.region if subject else None,
        "events": events_rendered(done.events),
        "signal": None
        if done.issues is None
        else {
            "type": "tcf",
            "valid": not done.issues,
            "errors": [{"rule": i.rule, "message": i.message} for i in done.issues],
        },
        "gpc": {
            "received": done.gpc_received,
            "binding": done.gpc_binding,
            "recorded": done.gpc_recorded,
        },
    }


class SubjectLookupView(ApiView):
    """Find a subject by one identifier: its id, region and current consent state."""

    required_scopes = "consent:read"

    @extend_schema(
        parameters=[s.LookupIn],
        responses={200: s.SubjectConsentOut},
    )
    def get(self, request):
        return self._lookup(request, _validated(s.LookupIn, request.query_params))

    @extend_schema(
        request=s.LookupIn, examples=[examples.LOOKUP], responses={200: s.SubjectConsentOut}
    )
    def post(self, request):
        """Same as GET, with the identifier in the body: keeps it out of URLs and access logs."""
        return self._lookup(request, _validated(s.LookupIn, request.data))

    def _lookup(self, request, data):
        try:
            subject = subject_resolve(
                identifier_type=data["type"],
                value=data["value"],
                jurisdiction=None,
                actor=_actor(request),
                create=False,
            )
        except SubjectSuppressedError:
            subject = None
        if subject is None:
            raise NotFoundError("no subject has this identifier")
        survivor = subject_selectors.subject_survivor(subject=subject)
        return Response(_subject_body(survivor, requested=subject.pk))


class SubjectConsentsView(ApiView):
    """A subject's consent state and full history (the ledger, oldest first)."""

    required_scopes = "consent:read"

    @extend_schema(responses={200: s.SubjectHistoryOut})
    def get(self, request, subject_id):
        subject = subject_selectors.subject_find(subject_id=subject_id)
        if subject is None:
            raise NotFoundError("unknown subject")
        survivor = subject_selectors.subject_survivor(subject=subject)
        return Response(_subject_body(survivor, requested=subject.pk, history=True))


class ConsentModeView(ApiView):
    """Google Consent Mode v2 states for a subject, derived from its consent state."""

    required_scopes = "consent:read"

    @extend_schema(parameters=[s.ConsentModeIn], responses={200: s.ConsentModeOut})
    def get(self, request, subject_id):
        data = _validated(s.ConsentModeIn, request.query_params)
        jurisdiction = jurisdiction_normalize(jurisdiction=data.get("jurisdiction"))
        subject = subject_selectors.subject_find(subject_id=subject_id)
        if subject is None:
            raise NotFoundError("unknown subject")
        survivor = subject_selectors.subject_survivor(subject=subject)
        mode = subject_selectors.consent_mode(
            subject=survivor, source=data.get("source"), jurisdiction=jurisdiction or None
        )
        return Response({"subject_id": survivor.pk, "consent_mode": mode})


class TcfDecodeView(ApiView):
    """Decode and validate an IAB TCF v2 TC string (nothing is stored)."""

    required_scopes = "signals:decode"

    @extend_schema(request=s.TcfDecodeIn, examples=[examples.TCF], responses={200: s.TcfDecodeOut})
    def post(self, request):
        data = _validated(s.TcfDecodeIn, request.data)
        tc = tcf_decode(tc_string=data["tc_string"])
        decoded = tc.as_dict()
        body = {name: decoded[name] for name in s.TCF_DECODE_FIELDS}
        issues = tcf_validate(tc=tc)
        body["valid"] = not issues
        body["errors"] = [{"rule": i.rule, "message": i.message} for i in issues]
        return Response(body)
