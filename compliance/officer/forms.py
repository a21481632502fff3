from __future__ import annotations

from django import forms

from compliance.dsar.models import Regulation, RequestType
from compliance.dsar.services.requests import VERIFICATION_METHODS
from compliance.models.subjects import IdentifierType
from segments.models import ReviewDecision
from segments.services.reviews import MAX_NOTE


class LookupForm(forms.Form):
    identifier_type = forms.ChoiceField(choices=IdentifierType.choices, initial="email")
    value = forms.CharField(max_length=320, strip=True)


class ReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=2000, strip=True, widget=forms.Textarea(attrs={"rows": 2, "cols": 50})
    )


class PeriodForm(forms.Form):
    """The evidence period (``from``/``to``, ISO dates) handed to the audit admin's views."""

    start = forms.DateField(label="from")
    end = forms.DateField(label="to")


class IntakeForm(forms.Form):
    """A request opened in the admin: what ``request_open`` takes, plus a first internal note.
    ``intake_token`` is the idempotency key of this form (a double submit opens one request)."""

    type = forms.ChoiceField(choices=())
    regulation = forms.ChoiceField(choices=())
    identifier_type_1 = forms.ChoiceField(
        choices=IdentifierType.choices, initial="email", label="identifier type"
    )
    identifier_value_1 = forms.CharField(max_length=320, strip=True, label="identifier")
    identifier_type_2 = forms.ChoiceField(
        choices=IdentifierType.choices, required=False, label="second identifier type"
    )
    identifier_value_2 = forms.CharField(
        max_length=320, strip=True, required=False, label="second identifier (optional)"
    )
    verification_method = forms.ChoiceField(choices=())
    jurisdiction = forms.CharField(
        max_length=8, required=False, strip=True, help_text="country or state, e.g. FR, US-CA"
    )
    purposes = forms.CharField(
        max_length=500,
        required=False,
        strip=True,
        help_text="objection only: purpose keys, comma-separated",
    )
    notes = forms.CharField(
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 50}),
        help_text="internal: never shown or sent to the person",
    )
    intake_token = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["type"].choices = RequestType.choices
        self.fields["regulation"].choices = Regulation.choices
        self.fields["verification_method"].choices = [
            (m, m.replace("_", " ")) for m in VERIFICATION_METHODS
        ]

    def identifiers(self) -> list[dict]:
        data = self.cleaned_data
        out = [{"type": data["identifier_type_1"], "value": data["identifier_value_1"]}]
        if data.get("identifier_value_2"):
            out.append(
                {
                    "type": data.get("identifier_type_2") or "email",
                    "value": data["identifier_value_2"],
                }
            )
        return out

    def purpose_keys(self) -> list[str]:
        return [
            p.strip() for p in (self.cleaned_data.get("purposes") or "").split(",") if p.strip()
        ]


class NoteForm(forms.Form):
    text = forms.CharField(
        max_length=5000, strip=True, widget=forms.Textarea(attrs={"rows": 2, "cols": 50})
    )


class ConfirmForm(forms.Form):
    reference = forms.CharField(max_length=40, strip=True)


class ReviewForm(forms.Form):
    """A segment review's decision on the lift since the previous review, and a note.
    ``decision_required`` (a lift has been computed: there is evidence to decide on) makes
    the decision mandatory."""

    decision = forms.ChoiceField(
        choices=ReviewDecision.choices, required=False, widget=forms.RadioSelect
    )
    note = forms.CharField(
        max_length=MAX_NOTE,
        required=False,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 50}),
        help_text="kept with the review (not in the audit log)",
    )

    def __init__(self, *args, decision_required: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.decision_required = decision_required

    def clean_decision(self) -> str:
        decision = self.cleaned_data.get("decision") or ""
        if self.decision_required and not decision:
            raise forms.ValidationError(
                "Record what this review decided on the lift: iterate, keep or cut."
            )
        return decision
