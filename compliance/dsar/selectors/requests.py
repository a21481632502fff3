"""Read paths of requests: by id (through the control directory) and filtered lists."""

from __future__ import annotations

from compliance.dsar.models import PrivacyRequest, RequestDirectory
from compliance.regions import region_alias, regions


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


def requests_list(
    *,
    client_id: int | None,
    status: str | None = None,
    type: str | None = None,
    region: str | None = None,
    limit: int = 100,
) -> list[PrivacyRequest]:
    """A client's requests across regions (newest first), optionally filtered."""
    out: list[PrivacyRequest] = []
    for name in [region] if region else regions():
        qs = PrivacyRequest.objects.using(region_alias(region=name)).filter(client_id=client_id)
        if status:
            qs = qs.filter(status=status)
        if type:
            qs = qs.filter(type=type)
        out.extend(qs.order_by("-received_at")[:limit])
    out.sort(key=lambda r: r.received_at, reverse=True)
    return out[:limit]
