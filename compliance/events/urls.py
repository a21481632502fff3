"""API routes of the events app under /api/v1/."""

urlpatterns: list = []
