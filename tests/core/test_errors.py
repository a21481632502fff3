"""One error base: every error class of the toolkit derives from ``ApplicationError``, and the
API's one handler answers each with its code, field and status (faults: a generic 500)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
from rest_framework.exceptions import APIException
from rest_framework.test import APIRequestFactory

import compliance
import segments
from compliance.api.errors import error_handler
from compliance.errors import (
    ApplicationError,
    ConflictError,
    InputError,
    InternalError,
    NotFoundError,
)

#: standalone by design: the offline verifier imports nothing of the toolkit
STANDALONE = {"compliance.audit.bundle.verify_bundle"}


def _error_classes() -> list[type]:
    found = []
    for package in (compliance, segments):
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if ".migrations" in info.name or info.name in STANDALONE:
                continue
            module = importlib.import_module(info.name)
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if (
                    cls.__module__ == info.name
                    and issubclass(cls, Exception)
                    and not issubclass(cls, APIException)  # DRF's own, answered by DRF
                ):
                    found.append(cls)
    return found


def test_every_error_class_derives_from_application_error():
    classes = _error_classes()
    assert len(classes) >= 30, [c.__name__ for c in classes]
    outside = [f"{c.__module__}.{c.__qualname__}" for c in classes]
    outside = [
        name
        for name, c in zip(outside, classes, strict=True)
        if not issubclass(c, ApplicationError)
    ]
    assert outside == []


def test_builtin_bases_are_kept():
    """``except ValueError`` / ``except RuntimeError`` around a service keeps catching."""
    from compliance.consent.tcf import TCFDecodeError
    from compliance.residency import RegionRequiredError
    from compliance.services.subjects import SubjectSuppressedError

    assert issubclass(InputError, ValueError) and issubclass(TCFDecodeError, ValueError)
    assert issubclass(InternalError, RuntimeError) and issubclass(RegionRequiredError, RuntimeError)
    assert not issubclass(SubjectSuppressedError, ValueError)


def _answer(exc: Exception):
    request = APIRequestFactory().get("/api/v1/x/")
    return error_handler(exc, {"view": object(), "request": request})


@pytest.mark.parametrize(
    ("exc", "status", "code", "fields"),
    [
        (InputError("bad", field="at"), 400, "invalid", {"at": ["bad"]}),
        (NotFoundError("gone"), 404, "not_found", {}),
        (ConflictError("held", code="legal_hold"), 409, "legal_hold", {}),
        (
            InputError("two", fields={"a": ["x"], "b": ["y"]}),
            400,
            "invalid",
            {"a": ["x"], "b": ["y"]},
        ),
    ],
)
def test_handler_answers_code_field_and_status(exc, status, code, fields):
    response = _answer(exc)
    assert response.status_code == status
    assert response.data == {"error": {"code": code, "message": str(exc), "fields": fields}}


def test_domain_errors_keep_their_codes():
    from compliance.consent.services.stitching import CrossRegionMergeError
    from compliance.consent.tcf import TCFDecodeError
    from compliance.dsar.services.errors import ExpiredError, LegalHoldError
    from compliance.services.subjects import SubjectSuppressedError
    from segments.services.definitions import SegmentGovernanceError
    from segments.services.memberships import MembershipInputError

    expected = [
        (SubjectSuppressedError("erased"), 409, "suppressed", "identifiers"),
        (CrossRegionMergeError("two regions"), 409, "cross_region_merge", "identifiers"),
        (TCFDecodeError("short"), 400, "undecodable", "tc_string"),
        (MembershipInputError("unknown reason"), 400, "invalid", "reason"),
        (LegalHoldError("hold", field="type"), 409, "legal_hold", "type"),
        (ExpiredError("expired"), 410, "expired", None),
        (SegmentGovernanceError("no", code="forbidden"), 403, "forbidden", None),
        (SegmentGovernanceError("dup", code="exists", field="key"), 409, "exists", "key"),
        (SegmentGovernanceError("bad", code="not_editable"), 400, "not_editable", None),
    ]
    for exc, status, code, field in expected:
        error = _answer(exc).data["error"]
        assert (_answer(exc).status_code, error["code"]) == (status, code), exc
        assert list(error["fields"]) == ([field] if field else []), exc


def test_internal_errors_are_a_generic_500_without_their_message(caplog):
    response = _answer(InternalError("database password is hunter2"))
    assert response.status_code == 500
    assert response.data["error"]["code"] == "server_error"
    assert "hunter2" not in str(response.data)
    assert "unhandled API error" in caplog.text
