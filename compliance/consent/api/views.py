"""Thin consent API views: validate input, call a service or selector, render output."""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response

from compliance.api import examples
from compliance.api.views import ApiView
from compliance.audit.services.append import Actor
from compliance.consent.api import serializers as s
from compliance.consent.selectors import subjects as subject_selectors
from compliance.consent.services.record import (
    DecisionInput,
    consent_prepare,
    consent_record_prepared,
    jurisdiction_normalize,
)
from compliance.consent.services.signals import (
    consent_record_gpc_prepared,
    gpc_binding,
    gpc_header_set,
    gpc_prepare,
    tcf_prepare,
)
from compliance.consent.services.stitching import subject_resolve_many
from compliance.consent.tcf import tcf_decode, tcf_validate
from compliance.errors import InputError, NotFoundError
from compliance.regions import region_alias
from compliance.services.subjects import SubjectSuppressedError, subject_resolve


def _actor(request) -> Actor:
    return Actor.client(request.auth)


def _validated(serializer_class, data):
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _subject_body(subject, *, requested=None, history: bool = False, **evaluation_kwargs) -> dict:
    evaluation = subject_selectors.consent_evaluation(subject=subject, **evaluation_kwargs)
    body = {
        "id": subject.pk,
        "region": subject.region,
        "merged_from": requested if requested and requested != subject.pk else None,
        "state": s.ConsentStateOut(
            subject_selectors.consent_state_rows(subject=subject), many=True
        ).data,
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
        body["history"] = s.ConsentEventOut(
            subject_selectors.consent_history(subject=subject), many=True
        ).data
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
        data = _validated(s.ConsentIn, request.data)
        gpc_received = gpc_header_set(value=request.headers.get("Sec-GPC"))
        common = {
            "source": data["source"],
            "jurisdiction": data.get("jurisdiction") or None,
        }
        jurisdiction = jurisdiction_normalize(jurisdiction=common["jurisdiction"])
        prepared = []
        if data.get("decisions"):
            prepared.append(
                consent_prepare(
                    decisions=[
                        DecisionInput(
                            purpose=d["purpose"],
                            decision=d["decision"],
                            lawful_basis=d.get("lawful_basis"),
                        )
                        for d in data["decisions"]
                    ],
                    method=data["method"],
                    captured_at=data.get("captured_at"),
                    notice_version_id=data.get("notice_version_id"),
                    collection_point=data.get("collection_point", ""),
                    **common,
                )
            )
        issues = None
        if "signal" in data:
            tcf, issues = tcf_prepare(
                tc_string=data["signal"]["value"],
                captured_at=data.get("captured_at"),
                collection_point=data.get("collection_point", ""),
                **common,
            )
            prepared.append(tcf)
        gpc = gpc_prepare(**common) if gpc_received else None
        if not prepared and not gpc_received:
            raise InputError(
                "send decisions, a signal, or the Sec-GPC: 1 header",
                fields={"decisions": ["send decisions, a signal, or the Sec-GPC: 1 header"]},
            )
        actor = _actor(request)
        if not prepared and gpc is None:
            # GPC is not binding here: nothing to record, nothing created
            subject = self._existing(data["identifiers"])
            return Response(
                {
                    "subject_id": subject.pk if subject else None,
                    "region": subject.region if subject else None,
                    "events": [],
                    "signal": None,
                    "gpc": {"received": True, "binding": False, "recorded": 0},
                },
                status=status.HTTP_200_OK,
            )
        subject = subject_resolve_many(
            identifiers=data["identifiers"], jurisdiction=jurisdiction or None, actor=actor
        )
        events = []
        with transaction.atomic(using=region_alias(region=subject.region)):
            for item in prepared:
                events += consent_record_prepared(subject=subject, prepared=item, actor=actor)
            gpc_events = (
                consent_record_gpc_prepared(subject=subject, prepared=gpc, actor=actor)
                if gpc is not None
                else []
            )
        body = {
            "subject_id": subject.merged_into or subject.pk,
            "region": subject.region,
            "events": s.ConsentEventOut(events + gpc_events, many=True).data,
            "signal": None
            if issues is None
            else {
                "type": "tcf",
                "valid": not issues,
                "errors": [{"rule": i.rule, "message": i.message} for i in issues],
            },
            "gpc": {
                "received": gpc_received,
                "binding": gpc_binding(jurisdiction=jurisdiction),
                "recorded": len(gpc_events),
            },
        }
        return Response(body, status=status.HTTP_201_CREATED)

    @staticmethod
    def _existing(identifiers):
        for identifier_type, value in identifiers:
            subject = subject_resolve(
                identifier_type=identifier_type,
                value=value,
                jurisdiction=None,
                actor=Actor.system("lookup"),
                create=False,
            )
            if subject is not None:
                return subject_selectors.subject_survivor(subject=subject)
        return None


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
