"""API routes of the core app (identity, API plumbing). Other apps add their own files."""

urlpatterns: list = []
