"""Property-based test of the whole API against its own OpenAPI schema (schemathesis).

The API runs in-process (the project's WSGI application, on the test databases) and is called
with a token holding every scope, acting as a privacy officer. Every operation gets at least
20 generated examples; the checks: no server error, every status code and content type
documented, every response body valid against its schema. Derandomized, so CI is repeatable.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.conf import settings as settings_dj
from django.db import transaction
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from compliance.api.auth import token_hash
from compliance.api.scopes import SCOPES
from compliance.models import ApiClient
from compliance.roles import PRIVACY_OFFICER

pytestmark = pytest.mark.django_db(databases="__all__")

TOKEN = "ctk_schemathesis_every_scope"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 20


@pytest.fixture(autouse=True)
def _keep_test_connections():
    """Like Django's test client: requests keep the test's database connections open (and so
    its transaction: nothing written outlives the test)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def every_scope():
    from django.contrib.auth.models import Group, User

    user = User.objects.create_user("schemathesis-officer", is_staff=True)
    user.groups.add(Group.objects.get(name=PRIVACY_OFFICER))
    ApiClient.objects.create(
        name="schemathesis",
        token_hash=token_hash(TOKEN),
        scopes=list(SCOPES),
        user=user,
        callback_secret="s" * 64,
    )
    return {"Authorization": f"Bearer {TOKEN}"}


def _load_schema():
    from config.wsgi import application

    return schemathesis.openapi.from_wsgi("/api/schema/", application)


schema = _load_schema()


@pytest.fixture
def calls():
    """Every call made for one operation: at least ``EXAMPLES`` of them."""
    made: list[str] = []
    yield made
    assert len(made) >= EXAMPLES, f"{made[:1]}: only {len(made)} examples"


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case, every_scope, calls):
    case.call_and_validate(headers=every_scope, checks=CHECKS)
    calls.append(case.operation.label)


def test_stateful_links_conform(every_scope):
    """Follow the schema's links (open a request, then read, list callbacks, cancel, approve;
    propose a segment, then approve, activate; record consent, then read it)."""
    workflow = schema.as_state_machine()

    class Workflow(workflow):
        def setup(self):
            # each scenario starts from the same data: hypothesis replays scenarios to shrink
            self._atomics = [transaction.atomic(using=alias) for alias in settings_dj.DATABASES]
            for block in self._atomics:
                block.__enter__()

        def teardown(self):
            for alias, block in reversed(
                list(zip(settings_dj.DATABASES, self._atomics, strict=True))
            ):
                transaction.set_rollback(True, using=alias)
                block.__exit__(None, None, None)

        def get_call_kwargs(self, case):
            return {"headers": every_scope}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=CHECKS)

    Workflow.run(
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=5,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
