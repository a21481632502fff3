import pytest

from tests.factories import StaffFactory


@pytest.fixture
def officer(db):
    return StaffFactory(username="officer1")


@pytest.fixture
def other_officer(db):
    return StaffFactory(username="officer2")
