"""IAB TCF v2 TC string decoder and TCF 2.2/2.3 policy validator (standard library only).

Contract
--------
``tcf_decode(tc_string=...)`` turns a TC string into a frozen :class:`TCString` or raises
:class:`TCFDecodeError` (a ``ValueError``) whose message says what is wrong and never echoes
more than a short prefix of the input. Decoding follows the IAB Tech Lab "Transparency and
Consent String with Global Vendor & CMP List Formats" (TCF v2) bit layout:

* segments are separated by ``.``; each is base64url without padding (trailing ``=`` on a
  segment and surrounding whitespace on the whole string are tolerated);
* the first segment is the core segment; optional segments follow in any order and start
  with a 3-bit SegmentType: 1 = DisclosedVendors, 2 = AllowedVendors (obsolete, decoded so
  the validator can flag it), 3 = Publisher TC; any other type, or a repeated type, is an error;
* version 1 (TCF v1) strings and any version other than 2 are rejected;
* id sets are sorted tuples of ints; absent segments give empty tuples (``segment_types``
  tells "absent" from "present but empty");
* duplicate publisher restrictions (same purpose and type) are merged (union of vendor ids);
* structurally impossible data (truncation, a range whose end is before its start, vendor
  id 0 or above MaxVendorId, letters outside A-Z) is a decode error.

``tcf_validate(tc=...)`` returns a list of :class:`ValidationIssue`; an empty list means the
decoded string is acceptable under TCF 2.2/2.3 policy. Rule names (stable, machine-readable):

* ``unsupported_version`` -- ``version`` is not 2 (only reachable for hand-built TCString).
* ``policy_version_below_4`` -- ``tcf_policy_version`` < 4 (pre-TCF 2.2 policy, expired).
* ``li_on_forbidden_purpose`` -- ``purposes_li_transparency`` contains purpose 1, 3, 4, 5
  or 6 (legitimate interest is not permitted for them since TCF 2.2).
* ``publisher_li_on_forbidden_purpose`` -- same rule for ``publisher_purposes_li_transparency``.
* ``restriction_li_on_forbidden_purpose`` -- a publisher restriction of type 2 (require
  legitimate interest) on purpose 1, 3, 4, 5 or 6.
* ``restriction_type_undefined`` -- a publisher restriction of type 3 (undefined in spec).
* ``not_service_specific`` -- ``is_service_specific`` is false (global scope was removed;
  the spec requires 1).
* ``allowed_vendors_segment_obsolete`` -- an AllowedVendors segment (type 2) is present;
  it is no longer defined by the current spec.
* ``disclosed_vendors_segment_missing`` -- no DisclosedVendors segment (type 1); TCF 2.3
  made it mandatory.

Bump :data:`DECODER_VERSION` whenever decoded output for some input changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from compliance.consent.tcf_bits import (
    BitReader,
    Budget,
    TCFDecodeError,
    read_ranges,
    read_vendor_section,
    segment_bits,
)

__all__ = [
    "DECODER_VERSION",
    "PublisherRestriction",
    "TCFDecodeError",
    "TCString",
    "ValidationIssue",
    "tcf_decode",
    "tcf_validate",
]

DECODER_VERSION = "tcf-1"

SEGMENT_DISCLOSED_VENDORS = 1
SEGMENT_ALLOWED_VENDORS = 2
SEGMENT_PUBLISHER_TC = 3

LI_FORBIDDEN_PURPOSES: frozenset[int] = frozenset({1, 3, 4, 5, 6})
MIN_POLICY_VERSION = 4

_SEGMENT_NAMES = {
    0: "core segment",
    SEGMENT_DISCLOSED_VENDORS: "disclosed vendors segment",
    SEGMENT_ALLOWED_VENDORS: "allowed vendors segment",
    SEGMENT_PUBLISHER_TC: "publisher TC segment",
}


@dataclass(frozen=True)
class ValidationIssue:
    """One policy problem: ``rule`` is a stable machine name, ``message`` is for humans."""

    rule: str
    message: str


@dataclass(frozen=True)
class PublisherRestriction:
    """Publisher restriction: type 0 not allowed, 1 require consent, 2 require LI."""

    purpose_id: int
    restriction_type: int
    vendor_ids: tuple[int, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``{"purpose_id", "restriction_type", "vendor_ids"}``."""
        return {
            "purpose_id": self.purpose_id,
            "restriction_type": self.restriction_type,
            "vendor_ids": list(self.vendor_ids),
        }


@dataclass(frozen=True, kw_only=True)
class TCString:
    """Decoded TC string. Id sets are sorted int tuples; datetimes are aware UTC.

    Beyond the spec fields, ``*_max_id`` hold each vendor section's MaxVendorId (``None``
    when that optional segment is absent), ``*_range_encoded`` its IsRangeEncoding flag, and
    ``segment_types`` the optional segment types in string order.
    """

    version: int
    created: datetime
    last_updated: datetime
    cmp_id: int
    cmp_version: int
    consent_screen: int
    consent_language: str
    vendor_list_version: int
    tcf_policy_version: int
    is_service_specific: bool
    use_non_standard_texts: bool
    special_feature_opt_ins: tuple[int, ...]
    purposes_consent: tuple[int, ...]
    purposes_li_transparency: tuple[int, ...]
    purpose_one_treatment: bool
    publisher_cc: str
    vendor_consents: tuple[int, ...]
    vendor_legitimate_interests: tuple[int, ...]
    publisher_restrictions: tuple[PublisherRestriction, ...] = ()
    disclosed_vendors: tuple[int, ...] = ()
    allowed_vendors: tuple[int, ...] = ()
    publisher_purposes_consent: tuple[int, ...] = ()
    publisher_purposes_li_transparency: tuple[int, ...] = ()
    publisher_custom_purposes_consent: tuple[int, ...] = ()
    publisher_custom_purposes_li_transparency: tuple[int, ...] = ()
    num_custom_purposes: int = 0
    vendor_consents_max_id: int = 0
    vendor_consents_range_encoded: bool = False
    vendor_li_max_id: int = 0
    vendor_li_range_encoded: bool = False
    disclosed_vendors_max_id: int | None = None
    disclosed_vendors_range_encoded: bool | None = None
    allowed_vendors_max_id: int | None = None
    allowed_vendors_range_encoded: bool | None = None
    segment_types: tuple[int, ...] = field(default=())

    @property
    def has_disclosed_vendors_segment(self) -> bool:
        """True if a DisclosedVendors segment (type 1) was present."""
        return SEGMENT_DISCLOSED_VENDORS in self.segment_types

    @property
    def has_allowed_vendors_segment(self) -> bool:
        """True if an (obsolete) AllowedVendors segment (type 2) was present."""
        return SEGMENT_ALLOWED_VENDORS in self.segment_types

    @property
    def has_publisher_tc_segment(self) -> bool:
        """True if a Publisher TC segment (type 3) was present."""
        return SEGMENT_PUBLISHER_TC in self.segment_types

    def as_dict(self) -> dict[str, Any]:
        """Snake_case JSON-ready dict: id sets as sorted int lists, datetimes ISO 8601 'Z'."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, datetime):
                out[name] = _iso_utc(value)
            elif name == "publisher_restrictions":
                out[name] = [r.as_dict() for r in value]
            elif isinstance(value, tuple):
                out[name] = list(value)
            else:
                out[name] = value
        return out


def tcf_decode(*, tc_string: str) -> TCString:
    """Decode a TCF v2 TC string; raise :class:`TCFDecodeError` if it cannot be decoded."""
    if not isinstance(tc_string, str):
        raise TCFDecodeError(f"TC string must be str, not {type(tc_string).__name__}")
    text = tc_string.strip()
    if not text:
        raise TCFDecodeError("TC string is empty")
    raw_segments = text.split(".")
    segments = [segment_bits(raw, index) for index, raw in enumerate(raw_segments, start=1)]
    budget = Budget()
    core = _decode_core(BitReader(segments[0], "core segment"), budget)

    optional: dict[str, Any] = {}
    seen: list[int] = []
    for index, bits in enumerate(segments[1:], start=2):
        reader = BitReader(bits, f"segment {index}")
        seg_type = reader.read_int(3)
        if seg_type not in (
            SEGMENT_DISCLOSED_VENDORS,
            SEGMENT_ALLOWED_VENDORS,
            SEGMENT_PUBLISHER_TC,
        ):
            raise TCFDecodeError(f"segment {index} has unknown segment type {seg_type}")
        if seg_type in seen:
            raise TCFDecodeError(
                f"segment {index} repeats segment type {seg_type} ({_SEGMENT_NAMES[seg_type]})"
            )
        seen.append(seg_type)
        reader.name = f"{_SEGMENT_NAMES[seg_type]} (segment {index})"
        if seg_type == SEGMENT_PUBLISHER_TC:
            optional.update(_decode_publisher_tc(reader))
        else:
            is_disclosed = seg_type == SEGMENT_DISCLOSED_VENDORS
            prefix = "disclosed_vendors" if is_disclosed else "allowed_vendors"
            max_id, range_encoded, ids = read_vendor_section(reader, budget)
            optional[prefix] = ids
            optional[f"{prefix}_max_id"] = max_id
            optional[f"{prefix}_range_encoded"] = range_encoded
    return TCString(**core, **optional, segment_types=tuple(seen))


def tcf_validate(*, tc: TCString) -> list[ValidationIssue]:
    """Check a decoded string against TCF 2.2/2.3 policy; an empty list means valid."""
    issues: list[ValidationIssue] = []
    if tc.version != 2:
        issues.append(
            ValidationIssue(
                "unsupported_version", f"version is {tc.version}; only TCF v2 strings are supported"
            )
        )
    if tc.tcf_policy_version < MIN_POLICY_VERSION:
        issues.append(
            ValidationIssue(
                "policy_version_below_4",
                f"TcfPolicyVersion is {tc.tcf_policy_version}; TCF 2.2/2.3 requires 4 or higher",
            )
        )
    bad_li = sorted(LI_FORBIDDEN_PURPOSES.intersection(tc.purposes_li_transparency))
    if bad_li:
        issues.append(
            ValidationIssue(
                "li_on_forbidden_purpose",
                f"PurposesLITransparency sets purposes {_join(bad_li)}; legitimate interest is not "
                "permitted for purposes 1, 3, 4, 5, 6",
            )
        )
    bad_pub_li = sorted(LI_FORBIDDEN_PURPOSES.intersection(tc.publisher_purposes_li_transparency))
    if bad_pub_li:
        issues.append(
            ValidationIssue(
                "publisher_li_on_forbidden_purpose",
                f"PubPurposesLITransparency sets purposes {_join(bad_pub_li)}; legitimate interest "
                "is not permitted for purposes 1, 3, 4, 5, 6",
            )
        )
    bad_restr = sorted(
        {
            r.purpose_id
            for r in tc.publisher_restrictions
            if r.restriction_type == 2 and r.purpose_id in LI_FORBIDDEN_PURPOSES
        }
    )
    if bad_restr:
        issues.append(
            ValidationIssue(
                "restriction_li_on_forbidden_purpose",
                "publisher restrictions require legitimate interest for purposes "
                f"{_join(bad_restr)}",
            )
        )
    undefined = sorted({r.purpose_id for r in tc.publisher_restrictions if r.restriction_type == 3})
    if undefined:
        issues.append(
            ValidationIssue(
                "restriction_type_undefined",
                f"publisher restrictions of undefined type 3 for purposes {_join(undefined)}",
            )
        )
    if not tc.is_service_specific:
        issues.append(
            ValidationIssue("not_service_specific", "IsServiceSpecific is 0; the spec requires 1")
        )
    if tc.has_allowed_vendors_segment:
        issues.append(
            ValidationIssue(
                "allowed_vendors_segment_obsolete",
                "AllowedVendors segment (type 2) is present; it is no longer defined by the spec",
            )
        )
    if not tc.has_disclosed_vendors_segment:
        issues.append(
            ValidationIssue(
                "disclosed_vendors_segment_missing",
                "DisclosedVendors segment (type 1) is missing; it is mandatory since TCF 2.3",
            )
        )
    return issues


# --- field layout of the segments ---------------------------------------------------------------------------


def _decode_core(r: BitReader, budget: Budget) -> dict[str, Any]:
    version = r.read_int(6)
    if version == 1:
        raise TCFDecodeError("string is version 1: TCF v1 strings are not supported")
    if version != 2:
        raise TCFDecodeError(f"string is version {version}: only TCF v2 strings are supported")
    core: dict[str, Any] = {"version": version}
    core["created"] = r.deciseconds()
    core["last_updated"] = r.deciseconds()
    core["cmp_id"] = r.read_int(12)
    core["cmp_version"] = r.read_int(12)
    core["consent_screen"] = r.read_int(6)
    core["consent_language"] = r.letters("ConsentLanguage")
    core["vendor_list_version"] = r.read_int(12)
    core["tcf_policy_version"] = r.read_int(6)
    core["is_service_specific"] = r.read_bool()
    core["use_non_standard_texts"] = r.read_bool()
    core["special_feature_opt_ins"] = r.id_set(12)
    core["purposes_consent"] = r.id_set(24)
    core["purposes_li_transparency"] = r.id_set(24)
    core["purpose_one_treatment"] = r.read_bool()
    core["publisher_cc"] = r.letters("PublisherCC")
    max_id, range_encoded, ids = read_vendor_section(r, budget)
    core.update(
        vendor_consents=ids,
        vendor_consents_max_id=max_id,
        vendor_consents_range_encoded=range_encoded,
    )
    max_id, range_encoded, ids = read_vendor_section(r, budget)
    core.update(
        vendor_legitimate_interests=ids,
        vendor_li_max_id=max_id,
        vendor_li_range_encoded=range_encoded,
    )
    core["publisher_restrictions"] = _read_restrictions(r, budget)
    return core


def _read_restrictions(r: BitReader, budget: Budget) -> tuple[PublisherRestriction, ...]:
    merged: dict[tuple[int, int], set[int]] = {}
    for _ in range(r.read_int(12)):
        purpose_id = r.read_int(6)
        restriction_type = r.read_int(2)
        ids = read_ranges(r, budget, f"restriction for purpose {purpose_id}", None)
        merged.setdefault((purpose_id, restriction_type), set()).update(ids)
    return tuple(
        PublisherRestriction(purpose_id=p, restriction_type=t, vendor_ids=tuple(sorted(v)))
        for (p, t), v in sorted(merged.items())
    )


def _decode_publisher_tc(r: BitReader) -> dict[str, Any]:
    out: dict[str, Any] = {
        "publisher_purposes_consent": r.id_set(24),
        "publisher_purposes_li_transparency": r.id_set(24),
    }
    n = r.read_int(6)
    out["num_custom_purposes"] = n
    out["publisher_custom_purposes_consent"] = r.id_set(n)
    out["publisher_custom_purposes_li_transparency"] = r.id_set(n)
    return out


def _iso_utc(value: datetime) -> str:
    """ISO 8601 in UTC with millisecond precision and a 'Z' suffix."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _join(ids: list[int]) -> str:
    return ", ".join(str(i) for i in ids)
