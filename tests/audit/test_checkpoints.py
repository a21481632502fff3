"""Signed checkpoints: the beat task per database, skip when idle, refusal on damage."""

from __future__ import annotations

import pytest

from compliance import crypto
from compliance.audit.codes import AuditCode
from compliance.audit.hashing import format_time
from compliance.audit.models import AuditCheckpoint, AuditEvent
from compliance.audit.schedule import BEAT_SCHEDULE
from compliance.audit.services.checkpoints import ChainDamagedError, checkpoint_sign
from compliance.audit.signing import checkpoint_message
from compliance.audit.tasks import checkpoint_sign_control, checkpoint_sign_region
from compliance.tasking import route_task
from tests.audit.helpers import append, tamper

pytestmark = pytest.mark.django_db(databases="__all__")


def test_checkpoint_signature_covers_the_documented_message():
    append("eu", 4)
    assert checkpoint_sign_region(region="eu") == 4
    checkpoint = AuditCheckpoint.objects.using("eu").get()
    head = AuditEvent.objects.using("eu").get(seq=4)
    assert (checkpoint.chain_id, checkpoint.size, checkpoint.head_hash) == ("eu", 4, head.hash)
    assert checkpoint.key_id == crypto.key_id()
    message = checkpoint_message(
        chain_id="eu",
        size=4,
        head_hash=head.hash,
        signed_at=format_time(checkpoint.signed_at),
        key_id=checkpoint.key_id,
    )
    crypto.public_key().verify(bytes.fromhex(checkpoint.signature), message)  # raises if bad
    signed = AuditEvent.objects.using("eu").get(seq=5)
    assert signed.code == AuditCode.CHECKPOINT_SIGNED
    # the chain records the whole signed statement, so it alone can vouch for the checkpoint
    assert signed.payload == {
        "size": 4,
        "head_hash": head.hash,
        "signed_at": format_time(checkpoint.signed_at),
        "key_id": crypto.key_id(),
        "signature": checkpoint.signature,
    }
    # idle chain (only the CHECKPOINT_SIGNED entry since): nothing new is signed
    assert checkpoint_sign_region(region="eu") is None
    append("eu", 1)
    assert checkpoint_sign_region(region="eu") == 6


def test_control_chain_task_and_beat_entries():
    append("default", 2)
    assert checkpoint_sign_control() == 2
    assert AuditCheckpoint.objects.using("default").filter(size=2).exists()
    assert BEAT_SCHEDULE["audit-checkpoint-eu"]["kwargs"] == {"region": "eu"}
    assert BEAT_SCHEDULE["audit-checkpoint-us"]["task"] == "audit.checkpoint_sign"
    assert "kwargs" not in BEAT_SCHEDULE["audit-checkpoint-control"]
    assert route_task("audit.checkpoint_sign", (), {"region": "eu"}, {}) == {
        "queue": "compliance.eu"
    }
    assert route_task("audit.checkpoint_sign_control", (), {}, {}) == {
        "queue": "compliance.control"
    }


def test_no_checkpoint_is_signed_over_a_damaged_chain():
    append("us", 3)
    with tamper("us") as cursor:
        cursor.execute("UPDATE audit_auditevent SET actor_id = 'mallory' WHERE seq = 2")
    with pytest.raises(ChainDamagedError, match="entry #2 modified"):
        checkpoint_sign(using="us")
    assert not AuditCheckpoint.objects.using("us").exists()
