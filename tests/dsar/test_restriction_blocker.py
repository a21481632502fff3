"""The restriction enter blocker answers the same for small and large batches."""

from __future__ import annotations

import uuid

import pytest

from compliance.dsar.models import Restriction
from compliance.dsar.services.restriction import restriction_enter_blocker
from compliance.hooks import enter_blocked

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.mark.parametrize("batch", [3, 2_000])
def test_only_actively_restricted_subjects_are_blocked(batch):
    ids = [uuid.uuid4() for _ in range(batch)]
    restricted, lifted, elsewhere = ids[1], ids[2], uuid.uuid4()
    Restriction.objects.using("eu").create(subject_id=restricted)
    Restriction.objects.using("eu").create(subject_id=lifted, active=False)
    Restriction.objects.using("eu").create(subject_id=elsewhere)
    Restriction.objects.using("us").create(subject_id=ids[0])  # another region's
    assert restriction_enter_blocker(region="eu", subject_ids=ids) == {restricted: "restriction"}
    assert restriction_enter_blocker(region="eu", subject_ids=[str(i) for i in ids]) == {
        restricted: "restriction"
    }
    assert enter_blocked(region="eu", subject_ids=ids) == {restricted: "restriction"}
