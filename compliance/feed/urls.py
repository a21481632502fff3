"""Change feed routes under /api/v1/."""

from django.urls import path

from compliance.feed.api.views import ChangesView

urlpatterns = [path("changes/", ChangesView.as_view(), name="changes-list")]
