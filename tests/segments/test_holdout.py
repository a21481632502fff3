"""Holdout assignment: the published vectors (docs/segments.md), the share over 100,000
subjects, stability."""

import uuid

import pytest

from segments.holdout import CONTROL, TREATMENT, holdout_arm, holdout_salt_new, holdout_unit

SALT = "5f1d3c0a9b8e7d6c5b4a392817161514"

# (subject id, first 8 bytes of sha256("salt:subject") in hex, u, arm at a 10% share):
# the table published in docs/segments.md, "Holdout assignment".
VECTORS = [
    ("00000000-0000-0000-0000-000000000001", "801adf1a0e2e4685", 0.500410026417904, TREATMENT),
    ("00000000-0000-0000-0000-000000000002", "d7951020a18bfd13", 0.8421182708421355, TREATMENT),
    ("00000000-0000-0000-0000-000000000010", "09f10f74fdc3d706", 0.03883453947288672, CONTROL),
    ("00000000-0000-0000-0000-00000000003b", "00f4cdb4f953514f", 0.003735405619704997, CONTROL),
    ("00000000-0000-0000-0000-00000000004b", "1191f5e80697646e", 0.06863343157473661, CONTROL),
]


@pytest.mark.parametrize("subject,prefix,u,arm", VECTORS)
def test_published_vectors(subject, prefix, u, arm):
    assert int(prefix, 16) / 2**64 == u
    assert holdout_unit(salt=SALT, subject_id=subject) == u
    assert holdout_unit(salt=SALT, subject_id=uuid.UUID(subject)) == u
    assert holdout_arm(salt=SALT, subject_id=subject, share=0.1) == arm


def test_uppercase_or_hex_forms_of_an_id_give_the_same_arm():
    subject = "0B7E2C55-4C1E-4F3A-9D6E-2A8F1C3B5D70"
    assert holdout_unit(salt=SALT, subject_id=subject) == holdout_unit(
        salt=SALT, subject_id=subject.lower().replace("-", "")
    )


def test_no_share_or_no_salt_means_everyone_is_treated():
    subject = VECTORS[3][0]
    assert holdout_arm(salt=SALT, subject_id=subject, share=None) == TREATMENT
    assert holdout_arm(salt="", subject_id=subject, share=0.5) == TREATMENT


@pytest.mark.parametrize("share", [0.01, 0.1, 0.25, 0.5])
def test_observed_share_over_100000_subjects_is_within_half_a_point(share):
    salt = holdout_salt_new()
    subjects = [uuid.uuid4() for _ in range(100_000)]
    control = sum(holdout_arm(salt=salt, subject_id=s, share=share) == CONTROL for s in subjects)
    assert abs(control / len(subjects) - share) < 0.005


def test_arms_are_stable_and_salts_differ():
    subjects = [uuid.uuid4() for _ in range(1000)]
    first = [holdout_arm(salt=SALT, subject_id=s, share=0.3) for s in subjects]
    again = [holdout_arm(salt=SALT, subject_id=s, share=0.3) for s in subjects]
    assert first == again
    other = [holdout_arm(salt=holdout_salt_new(), subject_id=s, share=0.3) for s in subjects]
    assert other != first
    assert len(holdout_salt_new()) == 32 and holdout_salt_new() != holdout_salt_new()
