"""Bearer-token authentication for API clients (``Authorization: Bearer <token>``)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions

from compliance.models import ApiClient

TOKEN_PREFIX = "ctk_"
#: ``last_used_at`` is refreshed at most this often per client
LAST_USED_PRECISION = timedelta(minutes=1)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_generate() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """Sets ``request.user`` to the client's staff user (or ``None``) and ``request.auth`` to
    the ``ApiClient``. Unknown or inactive tokens are a 401; no token leaves the request anonymous
    (the scope permission then answers 401)."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].decode().lower() != self.keyword.lower():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'.")
        token = header[1].decode(errors="replace")
        try:
            # ONE query on the unique token hash: no ordering, and the sealed callback secret
            # is not read (its decryption cost every request; callbacks load it themselves).
            # Nothing is cached, so a revocation takes effect at the next request.
            client = (
                ApiClient.objects.select_related("user")
                .defer("callback_secret")
                .get(token_hash=token_hash(token), is_active=True)
            )
        except ApiClient.DoesNotExist:
            raise exceptions.AuthenticationFailed("Unknown or revoked API token.")
        now = timezone.now()
        if client.last_used_at is None or now - client.last_used_at > LAST_USED_PRECISION:
            # not a write on every request: the admin shows the time to the minute
            ApiClient.objects.filter(pk=client.pk).update(last_used_at=now)
        return (client.user, client)

    def authenticate_header(self, request):
        return self.keyword
