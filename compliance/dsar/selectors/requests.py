"""Read paths of requests: by id (through the control directory) and filtered lists."""

from __future__ import annotations

from django.db.models import QuerySet

from compliance.dsar.models import CallbackAttempt, PrivacyRequest, RequestDirectory
from compliance.regions import region_alias, regions
from compliance.selectors.keyset import Ordering


def request_get(*, request_id, client_id: int | None = None) -> PrivacyRequest | None:
    """The request, from its region; ``None`` if unknown or (with ``client_id``) not that
    client's."""
    entry = RequestDirectory.objects.filter(request_id=request_id).first()
    if entry is None or (client_id is not None and entry.client_id != client_id):
        return None
    return (
        PrivacyRequest.objects.using(region_alias(region=entry.region))
        .filter(pk=request_id)
        .first()
    )


#: list order (newest first); the id breaks ties so the order is total (cursor pagination)
REQUEST_ORDERING = Ordering(fields=("-received_at", "-id"))
_FILTERS = {
    "status": "status",
    "type": "type",
    "regulation": "regulation",
    "external_reference": "external_reference",
    "created_after": "received_at__gte",
    "created_before": "received_at__lt",
    "due_after": "due_at__gte",
    "due_before": "due_at__lt",
}


def requests_querysets(
    *, client_id: int | None, region: str | None = None, **filters
) -> list[QuerySet]:
    """One queryset per region (or only ``region``) of a client's requests, filtered by any of
    ``status``, ``type``, ``regulation``, ``external_reference``, ``created_after``/``_before``
    and ``due_after``/``_before`` (``None`` values are ignored)."""
    lookups = {_FILTERS[k]: v for k, v in filters.items() if v is not None}
    return [
        PrivacyRequest.objects.using(region_alias(region=name)).filter(
            client_id=client_id, **lookups
        )
        for name in ([region] if region else regions())
    ]


def callback_attempts(*, request: PrivacyRequest) -> QuerySet:
    """Every delivery try of the request's status callbacks, oldest first."""
    return CallbackAttempt.objects.using(region_alias(region=request.region)).filter(
        request_id=request.pk
    )
