from rest_framework.throttling import SimpleRateThrottle


class ClientRateThrottle(SimpleRateThrottle):
    """Requests per API client (rate from ``API_THROTTLE_RATE``, default 6000/min)."""

    scope = "client"

    def get_cache_key(self, request, view):
        client = request.auth
        if client is None:
            return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
        return self.cache_format % {"scope": self.scope, "ident": f"client-{client.pk}"}
