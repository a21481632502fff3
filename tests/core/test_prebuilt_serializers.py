"""Input serializers whose fields are built once per class (``FieldsBuiltOnce``, issue 19):
the instances share one field set, and nothing of one validation reaches the next."""

from __future__ import annotations

import threading

from compliance.consent.api.serializers import ConsentIn, LookupIn
from compliance.dsar.api.serializers import DsarRequestOpenInput

GOOD = {
    "identifier": {"type": "email", "value": "Ada@Example.fr"},
    "source": "web",
    "decisions": [{"purpose": "measurement", "decision": "granted"}],
}
BAD = {
    "identifier": {"type": "email", "value": "not-an-email"},
    "source": "web",
    "decisions": [{"purpose": "measurement", "decision": "maybe"}],
}


def _validate(data):
    serializer = ConsentIn(data=data)
    return serializer.is_valid(), serializer.errors, serializer.validated_data


def test_instances_share_one_field_set_built_on_a_blank_instance():
    first, second = ConsentIn(data=GOOD), ConsentIn(data=BAD)
    assert first.fields is second.fields
    assert first.fields["identifier"].parent is not first  # bound to no request's serializer
    assert not hasattr(first.fields["identifier"].parent, "initial_data")
    assert LookupIn().fields is LookupIn().fields
    assert DsarRequestOpenInput().fields is DsarRequestOpenInput().fields
    assert LookupIn().fields is not ConsentIn().fields


def test_a_bad_body_then_a_good_one_each_get_their_own_answer():
    ok, errors, _ = _validate(BAD)
    assert not ok
    assert "value" in errors["identifier"] and "decision" in errors["decisions"][0]
    ok, errors, data = _validate(GOOD)
    assert ok and not errors
    assert data["identifiers"] == [("email", "ada@example.fr")]
    assert data["decisions"] == [{"purpose": "measurement", "decision": "granted"}]


def test_concurrent_validations_do_not_mix():
    results: dict[int, tuple] = {}

    def run(n: int) -> None:
        body = GOOD if n % 2 else BAD
        results[n] = [_validate(body)[0] for _ in range(200)]

    threads = [threading.Thread(target=run, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for n, outcomes in results.items():
        assert outcomes == [bool(n % 2)] * 200
