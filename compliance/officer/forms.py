from __future__ import annotations

from django import forms

from compliance.models.subjects import IdentifierType


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
