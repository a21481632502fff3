"""Segment API routes under /api/v1/."""

from django.urls import path, re_path

from segments.api import lift, views

urlpatterns = [
    path("segments/", views.SegmentListCreateView.as_view(), name="segments-list"),
    path("segments/<slug:key>/", views.SegmentDetailView.as_view(), name="segments-detail"),
    *[
        path(
            f"segments/<slug:key>/{action}/",
            views.SegmentTransitionView.as_view(transition=action),
            name=f"segments-{action}",
        )
        for action in ("approve", "activate", "pause", "retire", "review")
    ],
    path("segments/<slug:key>/lift/", lift.SegmentLiftView.as_view(), name="segments-lift"),
    path(
        "segments/<slug:key>/memberships/",
        views.SegmentMembershipsView.as_view(),
        name="segments-memberships",
    ),
    path(
        "segments/<slug:key>/members/",
        views.SegmentMembersView.as_view(),
        name="segments-members",
    ),
    re_path(
        r"^segments/(?P<key>[-a-zA-Z0-9_]+)/members/(?P<subject_id>[0-9a-fA-F-]{32,36})/history/?$",
        views.MemberHistoryView.as_view(),
        name="segments-member-history",
    ),
]
