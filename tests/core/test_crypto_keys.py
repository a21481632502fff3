"""Subject data keys wrapped under a region's key: unwrapped one by one or many at once (an
event batch's subjects, the region's key derived once), with the same answers and the same
refusal of a key that was tampered with or belongs to another subject."""

from __future__ import annotations

import uuid

import pytest

from compliance import crypto


def _wrapped(count: int) -> tuple[dict[str, bytes], dict[str, bytes]]:
    keys = {str(uuid.uuid4()): crypto.new_data_key() for _ in range(count)}
    wrapped = {
        sid: crypto.wrap_data_key(region="eu", subject_id=sid, data_key=key)
        for sid, key in keys.items()
    }
    return keys, wrapped


def test_many_keys_unwrap_as_each_one_does():
    keys, wrapped = _wrapped(5)
    assert crypto.data_keys_unwrap(region="eu", wrapped=wrapped) == keys
    by_uuid = {uuid.UUID(sid): blob for sid, blob in wrapped.items()}  # as the batch holds them
    assert crypto.data_keys_unwrap(region="eu", wrapped=by_uuid) == {
        uuid.UUID(sid): key for sid, key in keys.items()
    }
    for sid, blob in wrapped.items():
        assert crypto.unwrap_data_key(region="eu", subject_id=sid, wrapped=blob) == keys[sid]


@pytest.mark.parametrize("change", ["tampered", "other subject", "other region"])
def test_a_key_that_does_not_belong_is_refused(change):
    _, wrapped = _wrapped(3)
    sid = next(iter(wrapped))
    region = "eu"
    if change == "tampered":
        wrapped[sid] = wrapped[sid][:-1] + bytes([wrapped[sid][-1] ^ 1])
    elif change == "other subject":
        wrapped[str(uuid.uuid4())] = wrapped.pop(sid)
    else:
        region = "us"
    with pytest.raises(crypto.DecryptionError):
        crypto.data_keys_unwrap(region=region, wrapped=wrapped)
