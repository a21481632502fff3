"""DSAR API views: thin; one per operation. Scopes: dsar:write, dsar:read, dsar:approve."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response

from compliance import crypto
from compliance.api import examples
from compliance.api.pagination import (
    CURSOR_PARAMETERS,
    Ordering,
    cursor_decode,
    keyset_fetch,
    limit_param,
    page_body,
    paginated,
)
from compliance.api.permissions import ActsAsGroupMember, HasRequiredScope
from compliance.api.views import ApiView
from compliance.audit.services.append import Actor
from compliance.dsar.api.serializers import (
    CallbackAttemptOutput,
    DsarPreviewOutput,
    DsarReasonInput,
    DsarReceiptOutput,
    DsarRequestListFilter,
    DsarRequestOpenInput,
    DsarRequestOutput,
    request_data,
)
from compliance.dsar.models import CallbackAttempt, PrivacyRequest, RequestType, Status
from compliance.dsar.selectors.requests import (
    REQUEST_ORDERING,
    callback_attempts,
    request_get,
    requests_querysets,
)
from compliance.dsar.services import requests as request_services
from compliance.dsar.services.erasure import erasure_preview
from compliance.dsar.services.export import package_read
from compliance.errors import ConflictError, InputError, NotFoundError
from compliance.regions import regions
from compliance.roles import PRIVACY_OFFICER

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=True,
    description="Retries with the same key and body return the first request.",
    examples=[OpenApiExample("a fresh key", value="3f2b9c4e-retry-safe")],
)


def _actor(request) -> Actor:
    return Actor.user(request.user) if request.user is not None else Actor.client(request.auth)


def _load(request, request_id, *, any_client: bool = False):
    """The request if this client may see it (privacy officers act on every client's)."""
    client_id = None if any_client else request.auth.pk
    found = request_get(request_id=request_id, client_id=client_id)
    if found is None:
        raise NotFoundError("No such request.")
    return found


class RequestListCreateView(ApiView):
    required_scopes = {"GET": "dsar:read", "POST": "dsar:write"}

    @extend_schema(
        operation_id="requests_list",
        summary="List this client's requests, newest first (cursor pages, filters, count)",
        parameters=[DsarRequestListFilter],
        responses=paginated(DsarRequestOutput, name="DsarRequestPage", count=True),
    )
    def get(self, request):
        filters = DsarRequestListFilter(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = dict(filters.validated_data)
        if data.get("region") and data["region"] not in regions():
            raise InputError("unknown region", fields={"region": ["unknown region"]})
        cursor = cursor_decode(
            raw=data.pop("cursor", None), model=PrivacyRequest, ordering=REQUEST_ORDERING
        )
        limit = data.pop("limit")
        querysets = requests_querysets(client_id=request.auth.pk, **data)
        rows, more = keyset_fetch(
            querysets=querysets, ordering=REQUEST_ORDERING, cursor=cursor, limit=limit
        )
        body = page_body(
            request=request,
            rows=rows,
            more=more,
            cursor=cursor,
            ordering=REQUEST_ORDERING,
            render=lambda found: [request_data(r) for r in found],
            count=sum(qs.count() for qs in querysets),
        )
        return Response(body)

    @extend_schema(
        summary="Open a request (idempotent by Idempotency-Key)",
        request=DsarRequestOpenInput,
        examples=[examples.REQUEST],
        parameters=[IDEMPOTENCY_HEADER],
        responses={201: DsarRequestOutput},
    )
    def post(self, request):
        key = request.headers.get("Idempotency-Key", "").strip()
        if not key or len(key) > 200:
            raise InputError(
                "send an Idempotency-Key header (1 to 200 characters)",
                fields={"Idempotency-Key": ["required, 1 to 200 characters"]},
            )
        serializer = DsarRequestOpenInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        result = request_services.request_open(
            type=data["type"],
            regulation=data["regulation"],
            identifiers=[dict(i) for i in data["identifiers"]],
            verification_method=data["verification_method"],
            jurisdiction=data.get("jurisdiction", "").upper(),
            callback_url=data["callback_url"],
            external_reference=data["external_reference"],
            purposes=data["purposes"],
            client_id=request.auth.pk,
            idempotency_key=key,
            actor=_actor(request),
        )
        response = Response(request_data(result.request), status=status.HTTP_201_CREATED)
        if not result.created:
            response["Idempotent-Replayed"] = "true"
        return response


class RequestDetailView(ApiView):
    required_scopes = "dsar:read"

    @extend_schema(
        summary="One request: status, deadline, progress, links", responses=DsarRequestOutput
    )
    def get(self, request, request_id):
        return Response(request_data(_load(request, request_id)))


class _ActionView(ApiView):
    action = ""
    any_client = False

    def _act(self, request, request_id, **kwargs):
        found = _load(request, request_id, any_client=self.any_client)
        done = getattr(request_services, f"request_{self.action}")(
            request=found, actor=_actor(request), **kwargs
        )
        done.refresh_from_db(using=done._state.db)
        return Response(request_data(done))


class RequestCancelView(_ActionView):
    required_scopes = "dsar:write"
    action = "cancel"

    @extend_schema(
        summary="Cancel a request that has not started processing",
        request=None,
        responses=DsarRequestOutput,
    )
    def post(self, request, request_id):
        return self._act(request, request_id)


class _OfficerView(_ActionView):
    required_scopes = "dsar:approve"
    permission_classes = [HasRequiredScope, ActsAsGroupMember]
    required_group = PRIVACY_OFFICER
    any_client = True


class RequestApproveView(_OfficerView):
    action = "approve"

    @extend_schema(
        summary="Approve a request (privacy officer token)",
        request=None,
        responses=DsarRequestOutput,
    )
    def post(self, request, request_id):
        return self._act(request, request_id)


class _ReasonView(_OfficerView):
    # an officer's action that needs a reason (reject, extend); no docstring: the schema's text
    @extend_schema(request=DsarReasonInput, examples=[examples.REASON], responses=DsarRequestOutput)
    def post(self, request, request_id):
        serializer = DsarReasonInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._act(request, request_id, reason=serializer.validated_data["reason"])


@extend_schema(summary="Reject a request with a reason (privacy officer token)")
class RequestRejectView(_ReasonView):
    action = "reject"


@extend_schema(summary="Extend the deadline once, with a reason (privacy officer token)")
class RequestExtendView(_ReasonView):
    action = "extend"


class RequestPreviewView(ApiView):
    required_scopes = "dsar:read"

    @extend_schema(
        summary="Dry run of an erasure: what would be removed, per table",
        responses=DsarPreviewOutput,
    )
    def get(self, request, request_id):
        found = _load(request, request_id)
        if found.is_terminal:
            raise ConflictError(
                f"no preview: the request is '{found.status}'",
                code="not_available",
            )
        return Response(DsarPreviewOutput(erasure_preview(request=found)).data)


class RequestPackageView(ApiView):
    required_scopes = "dsar:read"

    @extend_schema(
        summary="Download the access or portability package (zip)",
        responses={(200, "application/zip"): OpenApiTypes.BINARY},
    )
    def get(self, request, request_id):
        found = _load(request, request_id)
        data, package = package_read(request=found, actor=_actor(request))
        response = HttpResponse(data, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="request-{found.pk}.zip"'
        response["X-Package-Expires-At"] = package.expires_at.isoformat()
        response["X-Package-SHA256"] = package.sha256
        response["Cache-Control"] = "no-store"
        return response


class RequestReceiptView(ApiView):
    required_scopes = "dsar:read"

    @extend_schema(summary="The signed erasure receipt", responses=DsarReceiptOutput)
    def get(self, request, request_id):
        found = _load(request, request_id)
        if found.type != RequestType.ERASURE:
            raise ConflictError(
                "only erasure requests have a receipt",
                code="not_available",
                fields={"type": ["not an erasure"]},
            )
        if found.status != Status.COMPLETED or not found.receipt:
            raise ConflictError(
                f"no receipt: the request is '{found.status}'",
                code="not_available",
            )
        return Response(
            DsarReceiptOutput(
                {
                    "receipt": found.receipt,
                    "signature": found.receipt_signature,
                    "algorithm": "Ed25519 over compact key-sorted UTF-8 JSON of receipt",
                    "public_key_pem": crypto.public_key_pem().decode(),
                }
            ).data
        )


CALLBACK_ORDERING = Ordering(fields=("sent_at", "id"))


class RequestCallbacksView(ApiView):
    required_scopes = "dsar:read"

    @extend_schema(
        operation_id="requests_callbacks_list",
        summary="Delivery attempts of the request's status callbacks, oldest first",
        parameters=CURSOR_PARAMETERS,
        responses=paginated(CallbackAttemptOutput, name="CallbackAttemptPage", count=True),
    )
    def get(self, request, request_id):
        found = _load(request, request_id)
        cursor = cursor_decode(
            raw=request.query_params.get("cursor"),
            model=CallbackAttempt,
            ordering=CALLBACK_ORDERING,
        )
        attempts = callback_attempts(request=found)
        rows, more = keyset_fetch(
            querysets=[attempts],
            ordering=CALLBACK_ORDERING,
            cursor=cursor,
            limit=limit_param(request),
        )
        return Response(
            page_body(
                request=request,
                rows=rows,
                more=more,
                cursor=cursor,
                ordering=CALLBACK_ORDERING,
                render=lambda found: CallbackAttemptOutput(found, many=True).data,
                count=attempts.count(),
            )
        )
