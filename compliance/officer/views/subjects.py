"""Subject lookup (blind index -> region); showing a person is audited."""

from __future__ import annotations

from django.template.response import TemplateResponse

from compliance.audit.services.append import Actor
from compliance.dsar.models import RequestType
from compliance.identifiers import IdentifierError
from compliance.officer import selectors
from compliance.officer.desk import subject_of_request
from compliance.officer.forms import (
    LookupForm,
)
from compliance.officer.permissions import (
    VIEW_IDENTITIES,
    require,
)
from compliance.officer.services import (
    personal_data_viewed,
)
from compliance.officer.views.common import page_context, request_or_404_from_text


def subject_lookup(request):
    """Find a person by identifier (blind index -> region); showing them is audited."""
    require(request, VIEW_IDENTITIES)
    form = LookupForm(request.POST or None)
    context = {"form": form, "result": None, "not_found": False, "erased": False}
    if request.method == "GET" and request.GET.get("request"):
        # from a request page: the person the request is about (audited like any lookup)
        privacy_request = request_or_404_from_text(request.GET["request"])
        subject = subject_of_request(request=privacy_request)
        if subject is None:
            context["erased" if privacy_request.type == RequestType.ERASURE else "not_found"] = True
        else:
            context["result"] = selectors.subject_view(
                region=privacy_request.region, subject=subject
            )
            context["from_request"] = privacy_request
            personal_data_viewed(
                subject=subject,
                region=privacy_request.region,
                actor=Actor.user(request.user),
                view="subject_lookup_from_request",
            )
    if request.method == "POST" and form.is_valid():
        try:
            found = selectors.subject_locate(
                identifier_type=form.cleaned_data["identifier_type"],
                value=form.cleaned_data["value"],
            )
        except IdentifierError as exc:
            form.add_error("value", str(exc))
            found = None
        else:
            if found == "erased":
                context["erased"] = True
            elif found is None:
                context["not_found"] = True
            else:
                region, subject = found
                context["result"] = selectors.subject_view(region=region, subject=subject)
                personal_data_viewed(
                    subject=subject,
                    region=region,
                    actor=Actor.user(request.user),
                    view="subject_lookup",
                )
    return TemplateResponse(
        request, "admin/officer/subject.html", page_context(request, "Subject lookup", **context)
    )
