"""Routes outside the API prefix (e.g. /.well-known/gpc.json)."""

urlpatterns: list = []
