"""The consent API's fast path (``compliance.consent.api.fast``, issue 19) is held equal to the
serializers it stands in for: the usual bodies give ``ConsentIn``'s validated data, anything
unusual or wrong is left to ``ConsentIn`` (``None``), and ledger rows render as
``ConsentEventOut`` renders them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from compliance.consent.api.fast import consent_body_parsed, events_rendered
from compliance.consent.api.serializers import ConsentEventOut, ConsentIn
from compliance.consent.models import ConsentEvent
from compliance.consent.services.record import DecisionInput, consent_record_many
from tests.consent.conftest import ACTOR
from tests.factories import SubjectFactory

ID = {"type": "email", "value": "Ada@Example.FR"}
GRANT = {"purpose": "measurement", "decision": "granted"}


def _drf(body: dict) -> dict:
    serializer = ConsentIn(data=body)
    assert serializer.is_valid(), serializer.errors
    return dict(serializer.validated_data)


@pytest.mark.parametrize(
    "body",
    [
        {"identifier": ID, "source": "web", "decisions": [GRANT]},
        {"identifier": ID, "source": "web", "jurisdiction": "FR", "decisions": [GRANT]},
        {"identifier": ID, "source": "web", "jurisdiction": "", "decisions": [GRANT]},
        {
            "identifiers": [ID, {"type": "phone", "value": "+33 6 12 34 56 78"}],
            "source": "web",
            "method": "ui",
            "decisions": [
                GRANT,
                {"purpose": "storage", "decision": "withdrawn"},
                {"purpose": "ads", "decision": "granted", "lawful_basis": "consent"},
            ],
        },
    ],
)
def test_the_usual_bodies_give_what_consent_in_gives(body):
    fast = consent_body_parsed(body)
    assert fast is not None
    drf = _drf(body)
    assert fast["identifiers"] == drf["identifiers"]
    assert fast["decisions"] == [dict(d) for d in drf["decisions"]]
    assert {k: v for k, v in fast.items() if k not in ("identifiers", "decisions")} == {
        k: v for k, v in drf.items() if k not in ("identifiers", "decisions")
    }


@pytest.mark.parametrize(
    "body",
    [
        {"identifier": ID, "source": " web", "decisions": [GRANT]},  # DRF trims
        {"identifier": ID, "source": 7, "decisions": [GRANT]},  # DRF turns it into text
        {"identifier": {**ID, "extra": 1}, "source": "web", "decisions": [GRANT]},
        {"identifier": ID, "identifiers": [ID], "source": "web", "decisions": [GRANT]},
        {"identifier": ID, "source": "web", "decisions": []},
        {"identifier": ID, "source": "web", "signal": {"type": "tcf", "value": "x"}},
        {"identifier": ID, "source": "web", "decisions": [GRANT], "captured_at": "2026-01-01"},
        {"identifier": {"type": "email", "value": "nope"}, "source": "web", "decisions": [GRANT]},
        {"identifier": ID, "source": "web", "decisions": [{**GRANT, "decision": "yes"}]},
        {"identifier": ID, "source": "web", "decisions": [GRANT], "method": "tcf_string"},
        {"identifier": ID, "source": "web", "decisions": [{**GRANT, "lawful_basis": "x"}]},
        {"identifier": ID, "source": "web", "jurisdiction": "F" * 17, "decisions": [GRANT]},
        ["not", "an", "object"],
        {"identifier": ID, "source": "web", "decisions": [GRANT], "method": {}},  # unhashable
        {"identifier": ID, "source": "web", "decisions": [{**GRANT, "decision": []}]},
        {"identifier": ID, "source": "web", "decisions": [{**GRANT, "lawful_basis": {}}]},
        {"identifier": {"type": [], "value": "a@b.fr"}, "source": "web", "decisions": [GRANT]},
    ],
)
def test_anything_else_is_left_to_consent_in(body):
    assert consent_body_parsed(body) is None


@pytest.mark.django_db(databases="__all__")
def test_ledger_rows_render_as_the_serializer_renders_them():
    subject = SubjectFactory()
    events = consent_record_many(
        subject=subject,
        decisions=[
            DecisionInput(purpose="measurement", decision="granted"),
            DecisionInput(purpose="storage", decision="denied"),
        ],
        source="web",
        actor=ACTOR,
        captured_at=timezone.now() - timedelta(minutes=5),
        collection_point="banner",
    )
    stored = list(ConsentEvent.objects.using("eu").filter(pk__in=[e.pk for e in events]))
    for rows in (events, stored):
        assert events_rendered(rows) == [ConsentEventOut().to_representation(e) for e in rows]
    assert any(row["expires_at"] for row in events_rendered(events))  # a grant's expiry too


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)
_identifiers = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["email", "phone", "anonymous_id", "x"]),
        "value": st.sampled_from(["a@b.fr", "A@B.FR", " a@b.fr", "+33612345678", "", "x"]),
    }
)
_decisions = st.fixed_dictionaries(
    {
        "purpose": st.sampled_from(["measurement", "storage", " storage", "", "x" * 65]),
        "decision": st.sampled_from(["granted", "withdrawn", "objected", "yes", ""]),
    },
    optional={"lawful_basis": st.sampled_from(["consent", "legitimate_interest", "x"])},
)
#: mostly the usual shape with a wrong part here and there, and now and then anything at all
_bodies = st.fixed_dictionaries(
    {
        "identifier": st.one_of(_identifiers, _json),
        "source": st.one_of(st.sampled_from(["web", "web", " web", ""]), _json),
        "decisions": st.one_of(st.lists(_decisions, min_size=1, max_size=3), _json),
    },
    optional={
        "jurisdiction": st.one_of(st.sampled_from(["FR", "", "fr "]), _json),
        "method": st.one_of(st.sampled_from(["api", "ui", "import", "tcf_string"]), _json),
        "captured_at": st.just("2026-01-01T00:00:00Z"),
    },
)


@settings(max_examples=600, deadline=None)
@given(body=_bodies)
def test_whatever_the_body_the_fast_path_never_raises_and_agrees_with_consent_in(body):
    fast = consent_body_parsed(body)
    if fast is None:
        return
    drf = _drf(body)  # valid for DRF too
    assert fast["identifiers"] == drf["identifiers"]
    assert fast["decisions"] == [dict(d) for d in drf["decisions"]]
    assert fast["source"] == drf["source"] and fast["method"] == drf["method"]
    assert fast.get("jurisdiction") == drf.get("jurisdiction")
