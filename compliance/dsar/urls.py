"""API routes of the dsar app under /api/v1/."""

urlpatterns: list = []
