"""Tests for compliance.consent.tcf: shared published vectors plus hand-built strings."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from compliance.consent.tcf import (
    DECODER_VERSION,
    PublisherRestriction,
    TCFDecodeError,
    TCString,
    ValidationIssue,
    tcf_decode,
    tcf_validate,
)

# --- shared vectors (copied into tests/data/ with their source, see tests/data/README.md) ---

_VECTORS = Path(__file__).resolve().parents[1] / "data" / "tcf-vectors.json"


def _vectors_path() -> Path:
    return _VECTORS


def _vector_params() -> list[Any]:
    path = _vectors_path()
    if not path.is_file():  # fails loudly in test_vectors_file_is_found; nothing to run here
        return []
    vectors = json.loads(path.read_text(encoding="utf-8"))["tcf"]
    return [pytest.param(v, id=v["id"]) for v in vectors]


# Exact rule sets a strict TCF 2.2/2.3 validator must produce for vectors whose "notes" say
# what must be flagged (the vectors file speaks in prose; these are our rule names for it).
EXPECTED_RULES: dict[str, set[str]] = {
    # notes: IsServiceSpecific=0, LI on purpose 1, obsolete AllowedVendors segment.
    "tcf22-liveramp-valid-p4": {
        "not_service_specific",
        "li_on_forbidden_purpose",
        "allowed_vendors_segment_obsolete",
    },
    # notes: policy version 2 is expired. IsServiceSpecific=0 and the missing (TCF 2.3
    # mandatory) DisclosedVendors segment are also true of this string.
    "tcf20-java-core-fields": {
        "policy_version_below_4",
        "not_service_specific",
        "disclosed_vendors_segment_missing",
    },
}
# Vectors whose source rejects the string ("expect_error"): the rule that must fire and the
# purposes its message must name.
EXPECTED_ERROR_RULES: dict[str, tuple[str, tuple[int, ...]]] = {
    "tcf22-liveramp-invalid-lit3": ("li_on_forbidden_purpose", (3, 4, 5)),
}

_SCALARS = {
    "Version": "version",
    "CmpId": "cmp_id",
    "CmpVersion": "cmp_version",
    "ConsentScreen": "consent_screen",
    "ConsentLanguage": "consent_language",
    "VendorListVersion": "vendor_list_version",
    "TcfPolicyVersion": "tcf_policy_version",
    "IsServiceSpecific": "is_service_specific",
    "UseNonStandardTexts": "use_non_standard_texts",
    "PurposeOneTreatment": "purpose_one_treatment",
    "PublisherCC": "publisher_cc",
}
_DATETIMES = {"Created": "created", "LastUpdated": "last_updated"}
_ID_SETS = {
    "SpecialFeatureOptIns": "special_feature_opt_ins",
    "PurposesConsent": "purposes_consent",
    "PurposesLITransparency": "purposes_li_transparency",
}
# CamelCase section -> (ids field, max id field, range-encoded field, segment type or None)
_SECTIONS = {
    "VendorConsents": (
        "vendor_consents",
        "vendor_consents_max_id",
        "vendor_consents_range_encoded",
        None,
    ),
    "VendorLegitimateInterests": (
        "vendor_legitimate_interests",
        "vendor_li_max_id",
        "vendor_li_range_encoded",
        None,
    ),
    "DisclosedVendors": (
        "disclosed_vendors",
        "disclosed_vendors_max_id",
        "disclosed_vendors_range_encoded",
        1,
    ),
    "AllowedVendors": (
        "allowed_vendors",
        "allowed_vendors_max_id",
        "allowed_vendors_range_encoded",
        2,
    ),
}


def _expand(ranges: Iterable[list[int]]) -> tuple[int, ...]:
    return tuple(sorted({i for start, end in ranges for i in range(start, end + 1)}))


def _assert_section(tc: TCString, name: str, spec: dict[str, Any]) -> None:
    ids_field, max_field, range_field, seg_type = _SECTIONS[name]
    known = {"ids", "ranges", "MaxVendorId", "IsRangeEncoding", "NumEntries", "SegmentType"}
    assert set(spec) <= known, f"{name}: unmapped keys {set(spec) - known}"
    if "ids" in spec:
        assert getattr(tc, ids_field) == tuple(spec["ids"]), name
    if "ranges" in spec:
        assert getattr(tc, ids_field) == _expand(spec["ranges"]), name
    if "NumEntries" in spec:
        # Entries are merged on decode; check the vector is self-consistent.
        assert len(spec.get("ranges", [])) == spec["NumEntries"], name
    if "MaxVendorId" in spec:
        assert getattr(tc, max_field) == spec["MaxVendorId"], name
    if "IsRangeEncoding" in spec:
        assert getattr(tc, range_field) is spec["IsRangeEncoding"], name
    if "SegmentType" in spec:
        assert spec["SegmentType"] == seg_type, name
    if seg_type is not None:
        assert seg_type in tc.segment_types, name


def _assert_fields(tc: TCString, expected: dict[str, Any]) -> None:
    for key, want in expected.items():
        if key in _SCALARS:
            assert getattr(tc, _SCALARS[key]) == want, key
        elif key in _DATETIMES:
            got = getattr(tc, _DATETIMES[key])
            assert got.tzinfo is not None, key
            assert got == datetime.fromisoformat(want), key
        elif key in _ID_SETS:
            assert getattr(tc, _ID_SETS[key]) == tuple(want), key
        elif key in _SECTIONS:
            _assert_section(tc, key, want)
        elif key == "NumPubRestrictions":
            assert len(tc.publisher_restrictions) == want
        elif key == "PubRestrictions":
            assert tc.publisher_restrictions == tuple(
                PublisherRestriction(
                    purpose_id=r["PurposeId"],
                    restriction_type=r["RestrictionType"],
                    vendor_ids=_expand(r["ranges"]),
                )
                for r in want
            )
        else:
            pytest.fail(f"expectation {key!r} is not mapped onto TCString fields")


@pytest.mark.parametrize("vector", _vector_params())
def test_shared_vector(vector: dict[str, Any]) -> None:
    tc = tcf_decode(tc_string=vector["string"])
    _assert_fields(tc, vector.get("expect", {}))
    _assert_fields(tc, vector.get("decoded", {}))
    json.dumps(tc.as_dict())

    issues = tcf_validate(tc=tc)
    rules = {i.rule for i in issues}
    if "expect_error" in vector:
        assert vector["id"] in EXPECTED_ERROR_RULES, "add the rule this source error maps to"
        rule, purposes = EXPECTED_ERROR_RULES[vector["id"]]
        assert rule in rules
        message = next(i.message for i in issues if i.rule == rule)
        assert f"purposes {', '.join(map(str, purposes))};" in message
    if "notes" in vector:
        assert vector["id"] in EXPECTED_RULES, "add the exact rules these notes require"
    if vector["id"] in EXPECTED_RULES:
        assert rules == EXPECTED_RULES[vector["id"]]


def test_vectors_file_is_found() -> None:
    """The vectors ship with the tests: a plain clone runs every one of them."""
    path = _vectors_path()
    assert path.is_file(), f"no vectors file at {path}"
    assert len(json.loads(path.read_text(encoding="utf-8"))["tcf"]) >= 4


def test_vectors_copy_is_the_one_its_readme_names() -> None:
    """tests/data/README.md notes the copy's source and SHA-256: changed vectors must say where
    they come from (nothing outside the repository is read)."""
    readme = (_vectors_path().parent / "README.md").read_text(encoding="utf-8")
    digest = hashlib.sha256(_vectors_path().read_bytes()).hexdigest()
    assert f"`{digest}`" in readme, f"tests/data/README.md does not name sha256 {digest}"


# --- bit-writer helper for hand-built strings -----------------------------------------------

_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


class Bits:
    """Minimal big-endian bit writer producing a base64url segment."""

    def __init__(self) -> None:
        self.bits: list[str] = []

    def add(self, value: int, width: int) -> Bits:
        assert 0 <= value < (1 << width) or width == 0
        if width:
            self.bits.append(format(value, f"0{width}b"))
        return self

    def flag(self, value: bool) -> Bits:
        return self.add(int(value), 1)

    def id_set(self, ids: Iterable[int], width: int) -> Bits:
        chosen = set(ids)
        self.bits.append("".join("1" if i in chosen else "0" for i in range(1, width + 1)))
        return self

    def letters(self, text: str) -> Bits:
        for ch in text:
            self.add(ord(ch) - ord("A"), 6)
        return self

    def ranges(self, entries: list[tuple[int, int]]) -> Bits:
        self.add(len(entries), 12)
        for start, end in entries:
            self.flag(start != end).add(start, 16)
            if start != end:
                self.add(end, 16)
        return self

    def vendor_bitfield(self, ids: Iterable[int], max_id: int) -> Bits:
        return self.add(max_id, 16).flag(False).id_set(ids, max_id)

    def vendor_ranges(self, entries: list[tuple[int, int]], max_id: int) -> Bits:
        return self.add(max_id, 16).flag(True).ranges(entries)

    def encode(self) -> str:
        raw = "".join(self.bits)
        raw += "0" * (-len(raw) % 24)  # pad to whole bytes / base64 quanta
        return "".join(_B64URL[int(raw[i : i + 6], 2)] for i in range(0, len(raw), 6))


CREATED_DS = 15_834_362_809  # 2020-03-05T19:24:40.9Z in deciseconds


def core(
    *,
    version: int = 2,
    policy: int = 4,
    service_specific: bool = True,
    li_purposes: Iterable[int] = (2, 7),
    vendor_consents: Bits | None = None,
    vendor_li: Bits | None = None,
    restrictions: Sequence[tuple[int, int, list[tuple[int, int]]]] = (),
) -> Bits:
    """Core segment bits with sensible defaults; sections may be overridden."""
    b = Bits().add(version, 6).add(CREATED_DS, 36).add(CREATED_DS, 36)
    b.add(300, 12).add(7, 12).add(1, 6).letters("DE").add(120, 12).add(policy, 6)
    b.flag(service_specific).flag(False).id_set([1], 12)
    b.id_set([1, 2, 3, 4, 7], 24).id_set(li_purposes, 24).flag(False).letters("DE")
    b.bits.extend((vendor_consents or Bits().vendor_bitfield([2, 5], 6)).bits)
    b.bits.extend((vendor_li or Bits().vendor_bitfield([5], 5)).bits)
    b.add(len(restrictions), 12)
    for purpose, rtype, entries in restrictions:
        b.add(purpose, 6).add(rtype, 2).ranges(entries)
    return b


def disclosed(ids: Iterable[int], max_id: int, seg_type: int = 1) -> str:
    return Bits().add(seg_type, 3).vendor_bitfield(ids, max_id).encode()


VALID = f"{core().encode()}.{disclosed([2, 5, 9], 9)}"


# --- decoding ----------------------------------------------------------------------------


def test_decoder_version_constant() -> None:
    assert DECODER_VERSION == "tcf-1"


def test_hand_built_string_decodes_all_core_fields() -> None:
    tc = tcf_decode(tc_string=VALID)
    assert tc.version == 2
    assert tc.created == datetime(2020, 3, 5, 19, 24, 40, 900_000, tzinfo=UTC)
    assert tc.last_updated == tc.created
    assert (tc.cmp_id, tc.cmp_version, tc.consent_screen) == (300, 7, 1)
    assert (tc.consent_language, tc.publisher_cc) == ("DE", "DE")
    assert (tc.vendor_list_version, tc.tcf_policy_version) == (120, 4)
    assert tc.is_service_specific is True
    assert tc.use_non_standard_texts is False
    assert tc.special_feature_opt_ins == (1,)
    assert tc.purposes_consent == (1, 2, 3, 4, 7)
    assert tc.purposes_li_transparency == (2, 7)
    assert tc.purpose_one_treatment is False
    assert tc.vendor_consents == (2, 5)
    assert tc.vendor_legitimate_interests == (5,)
    assert tc.disclosed_vendors == (2, 5, 9)
    assert tc.segment_types == (1,)
    assert tc.allowed_vendors == ()
    assert tc.allowed_vendors_max_id is None
    assert tc.publisher_restrictions == ()


def test_valid_string_has_no_issues() -> None:
    assert tcf_validate(tc=tcf_decode(tc_string=VALID)) == []


def test_bitfield_encoding() -> None:
    s = core(vendor_consents=Bits().vendor_bitfield([1, 8, 16, 17], 17)).encode()
    tc = tcf_decode(tc_string=s)
    assert tc.vendor_consents == (1, 8, 16, 17)
    assert tc.vendor_consents_max_id == 17
    assert tc.vendor_consents_range_encoded is False


def test_range_encoding() -> None:
    section = Bits().vendor_ranges([(10, 12), (3, 3), (1, 2), (11, 14)], 14)
    tc = tcf_decode(tc_string=core(vendor_li=section).encode())
    assert tc.vendor_legitimate_interests == (1, 2, 3, 10, 11, 12, 13, 14)
    assert tc.vendor_li_max_id == 14
    assert tc.vendor_li_range_encoded is True


def test_empty_vendor_sections() -> None:
    s = core(vendor_consents=Bits().vendor_bitfield([], 0), vendor_li=Bits().vendor_ranges([], 0))
    tc = tcf_decode(tc_string=s.encode())
    assert tc.vendor_consents == ()
    assert tc.vendor_legitimate_interests == ()


@pytest.mark.parametrize(
    ("entries", "max_id", "fragment"),
    [
        ([(5, 3)], 9, "ending before start"),
        ([(0, 0)], 9, "vendor id 0"),
        ([(4, 12)], 9, "above MaxVendorId 9"),
    ],
)
def test_bad_vendor_ranges_are_decode_errors(
    entries: list[tuple[int, int]], max_id: int, fragment: str
) -> None:
    section = Bits().add(max_id, 16).flag(True).add(len(entries), 12)
    for start, end in entries:
        section.flag(True).add(start, 16).add(end, 16)
    with pytest.raises(TCFDecodeError, match=fragment):
        tcf_decode(tc_string=core(vendor_consents=section).encode())


def test_publisher_restrictions_are_merged_and_sorted() -> None:
    restrictions = [
        (7, 1, [(8, 8)]),
        (2, 1, [(1, 1), (5, 5)]),
        (2, 0, [(9, 10)]),
        (2, 1, [(3, 5)]),
        (4, 0, []),
    ]
    tc = tcf_decode(tc_string=core(restrictions=restrictions).encode())
    assert tc.publisher_restrictions == (
        PublisherRestriction(purpose_id=2, restriction_type=0, vendor_ids=(9, 10)),
        PublisherRestriction(purpose_id=2, restriction_type=1, vendor_ids=(1, 3, 4, 5)),
        PublisherRestriction(purpose_id=4, restriction_type=0, vendor_ids=()),
        PublisherRestriction(purpose_id=7, restriction_type=1, vendor_ids=(8,)),
    )


def test_publisher_tc_segment_with_custom_purposes() -> None:
    pub = Bits().add(3, 3).id_set([1, 2, 24], 24).id_set([2, 7], 24).add(3, 6)
    pub.id_set([1, 3], 3).id_set([2], 3)
    tc = tcf_decode(tc_string=f"{VALID}.{pub.encode()}")
    assert tc.publisher_purposes_consent == (1, 2, 24)
    assert tc.publisher_purposes_li_transparency == (2, 7)
    assert tc.num_custom_purposes == 3
    assert tc.publisher_custom_purposes_consent == (1, 3)
    assert tc.publisher_custom_purposes_li_transparency == (2,)
    assert tc.segment_types == (1, 3)
    assert tc.has_publisher_tc_segment
    assert tcf_validate(tc=tc) == []


def test_publisher_tc_segment_without_custom_purposes() -> None:
    pub = Bits().add(3, 3).id_set([1], 24).id_set([], 24).add(0, 6)
    tc = tcf_decode(tc_string=f"{VALID}.{pub.encode()}")
    assert tc.publisher_purposes_consent == (1,)
    assert tc.num_custom_purposes == 0
    assert tc.publisher_custom_purposes_consent == ()


def test_iabtcf_java_all_segments_cross_check() -> None:
    """iabtcf-java TCDecoderTest.testDecodeAllSegments (disclosed, allowed, publisher TC)."""
    tc = tcf_decode(
        tc_string="COtybn4PA_zT4KjACBENAPCIAEBAAECAAIAAAAAAAAAA.IBAgAAAgAIAwgAgAAAAEAAAACA"
        ".QAagAQAgAIAwgA.cAAAAAAAITg="
    )
    assert tc.disclosed_vendors == (23, 37, 47, 48, 53, 65, 98, 129)
    assert tc.allowed_vendors == (12, 23, 37, 47, 48, 53)
    assert tc.publisher_purposes_consent == (1,)
    assert tc.publisher_purposes_li_transparency == (24,)
    assert tc.publisher_custom_purposes_consent == (2,)
    assert tc.publisher_custom_purposes_li_transparency == (1, 2)
    assert tc.segment_types == (1, 2, 3)


def test_trailing_padding_is_tolerated() -> None:
    base = tcf_decode(tc_string=VALID)
    core_seg, disclosed_seg = VALID.split(".")
    assert tcf_decode(tc_string=f"{core_seg}=.{disclosed_seg}==") == base
    assert tcf_decode(tc_string=VALID + "=") == base
    assert tcf_decode(tc_string=f"  {VALID}\n") == base


# --- decode errors -------------------------------------------------------------------------


def test_truncated_core_segment() -> None:
    with pytest.raises(TCFDecodeError, match=r"^core segment too short: needs \d+ bits, has 192$"):
        tcf_decode(tc_string=VALID.split(".")[0][:32])


def test_truncated_optional_segment() -> None:
    with pytest.raises(TCFDecodeError, match=r"disclosed vendors segment \(segment 2\) too short"):
        tcf_decode(tc_string=f"{core().encode()}.{disclosed([1], 300)[:8]}")


@pytest.mark.parametrize(
    "tc_string",
    [
        "BObdrPUOevsguAfDqFENCNAAAAAmeAAA",  # published TCF v1.1 string (iabtcf-java tests)
        core(version=1).encode(),
    ],
)
def test_version_1_is_rejected(tc_string: str) -> None:
    with pytest.raises(TCFDecodeError, match="version 1: TCF v1 strings are not supported"):
        tcf_decode(tc_string=tc_string)


def test_other_versions_are_rejected() -> None:
    with pytest.raises(TCFDecodeError, match="version 3"):
        tcf_decode(tc_string="DGH")


@pytest.mark.parametrize(
    ("tc_string", "message"),
    [
        ("", "TC string is empty"),
        ("   ", "TC string is empty"),
        ("@@not base64!!", "segment 1 is not valid base64url"),
        (f"{VALID}.ab+/", "segment 3 is not valid base64url"),
        (f"{core().encode()}..{disclosed([1], 1)}", "segment 2 is empty"),
        (f"{VALID}.", "segment 3 is empty"),
        ("=", "segment 1 is empty"),
        (f"{core().encode()}.{disclosed([1], 1, seg_type=4)}", "unknown segment type 4"),
        (f"{core().encode()}.{disclosed([1], 1, seg_type=0)}", "unknown segment type 0"),
        (f"{VALID}.{disclosed([2], 2)}", "repeats segment type 1"),
    ],
)
def test_garbage_and_malformed_input(tc_string: str, message: str) -> None:
    with pytest.raises(TCFDecodeError, match=re.escape(message)):
        tcf_decode(tc_string=tc_string)


def test_error_message_does_not_echo_whole_input() -> None:
    secret = "A" * 40 + "!" + "SECRETTAIL" * 20
    with pytest.raises(TCFDecodeError) as excinfo:
        tcf_decode(tc_string=secret)
    assert "SECRETTAIL" not in str(excinfo.value)
    assert len(str(excinfo.value)) < 120


def test_non_string_input() -> None:
    with pytest.raises(TCFDecodeError, match="must be str"):
        tcf_decode(tc_string=b"COtybn4PA_zT4KjACBENAPCIAEBAAECAAIAAAAAAAAAA")  # type: ignore[arg-type]


def test_letters_outside_a_to_z_are_rejected() -> None:
    b = Bits().add(2, 6).add(0, 72).add(0, 30).add(26, 6).add(0, 6)
    with pytest.raises(TCFDecodeError, match="ConsentLanguage letter value 26"):
        tcf_decode(tc_string=b.encode())


def test_range_expansion_is_bounded() -> None:
    restrictions = [(p, 0, [(1, 65535)]) for p in range(1, 21)]
    with pytest.raises(TCFDecodeError, match="expand to more than"):
        tcf_decode(tc_string=core(restrictions=restrictions).encode())


def test_decode_error_is_value_error() -> None:
    assert issubclass(TCFDecodeError, ValueError)


# --- validation ----------------------------------------------------------------------------


def _rules(tc: TCString) -> list[str]:
    return [i.rule for i in tcf_validate(tc=tc)]


def test_policy_version_below_4() -> None:
    tc = tcf_decode(tc_string=f"{core(policy=3).encode()}.{disclosed([1], 1)}")
    assert _rules(tc) == ["policy_version_below_4"]


def test_li_on_forbidden_purpose_names_purposes() -> None:
    s = f"{core(li_purposes=[1, 2, 6, 9]).encode()}.{disclosed([1], 1)}"
    issues = tcf_validate(tc=tcf_decode(tc_string=s))
    assert [i.rule for i in issues] == ["li_on_forbidden_purpose"]
    assert "purposes 1, 6;" in issues[0].message


def test_not_service_specific_and_missing_disclosed_vendors() -> None:
    tc = tcf_decode(tc_string=core(service_specific=False).encode())
    assert _rules(tc) == ["not_service_specific", "disclosed_vendors_segment_missing"]


def test_allowed_vendors_segment_obsolete() -> None:
    tc = tcf_decode(tc_string=f"{VALID}.{disclosed([3], 3, seg_type=2)}")
    assert tc.allowed_vendors == (3,)
    assert tc.has_allowed_vendors_segment
    assert _rules(tc) == ["allowed_vendors_segment_obsolete"]


def test_empty_allowed_vendors_segment_is_still_flagged() -> None:
    tc = tcf_decode(tc_string=f"{VALID}.{disclosed([], 0, seg_type=2)}")
    assert tc.allowed_vendors == ()
    assert _rules(tc) == ["allowed_vendors_segment_obsolete"]


def test_restriction_rules() -> None:
    restrictions = [(3, 2, [(1, 1)]), (2, 2, [(1, 1)]), (5, 3, [])]
    tc = tcf_decode(tc_string=f"{core(restrictions=restrictions).encode()}.{disclosed([1], 1)}")
    assert _rules(tc) == ["restriction_li_on_forbidden_purpose", "restriction_type_undefined"]


def test_publisher_li_on_forbidden_purpose() -> None:
    pub = Bits().add(3, 3).id_set([1], 24).id_set([3, 4], 24).add(0, 6)
    tc = tcf_decode(tc_string=f"{VALID}.{pub.encode()}")
    assert _rules(tc) == ["publisher_li_on_forbidden_purpose"]


def test_unsupported_version_on_hand_built_model() -> None:
    tc = dataclasses.replace(tcf_decode(tc_string=VALID), version=3)
    assert _rules(tc) == ["unsupported_version"]


def test_validation_issue_is_frozen() -> None:
    issue = ValidationIssue(rule="x", message="y")
    with pytest.raises(dataclasses.FrozenInstanceError):
        issue.rule = "z"  # type: ignore[misc]


# --- serialisation -------------------------------------------------------------------------


def test_as_dict_is_json_ready() -> None:
    restrictions = [(2, 1, [(4, 6)])]
    tc = tcf_decode(tc_string=f"{core(restrictions=restrictions).encode()}.{disclosed([1], 1)}")
    data = json.loads(json.dumps(tc.as_dict()))
    assert data["created"] == "2020-03-05T19:24:40.900Z"
    assert data["last_updated"].endswith("Z")
    assert data["vendor_consents"] == [2, 5]
    assert data["disclosed_vendors"] == [1]
    assert data["publisher_restrictions"] == [
        {"purpose_id": 2, "restriction_type": 1, "vendor_ids": [4, 5, 6]}
    ]
    assert data["segment_types"] == [1]
    assert data["allowed_vendors"] == []
    assert data["allowed_vendors_max_id"] is None
    expected_keys = {f.name for f in dataclasses.fields(TCString)}
    assert set(data) == expected_keys


def test_tcstring_is_frozen() -> None:
    tc = tcf_decode(tc_string=VALID)
    with pytest.raises(dataclasses.FrozenInstanceError):
        tc.cmp_id = 1  # type: ignore[misc]
