import pytest

from tests.segments import factories


@pytest.fixture
def officer(db):
    return factories.staff("officer1")


@pytest.fixture
def other_officer(db):
    return factories.staff("officer2")
