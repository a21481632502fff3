"""One settings object, one lookup rule (environment, then Django settings, then default), and
``docs/settings.md`` generated from the declarations."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from compliance.checks import check_settings_parse
from compliance.conf import DECLARED, SETTINGS, compliance_settings, settings_markdown
from compliance.feed.conf import feed_settings
from compliance.retention.conf import retention_settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "settings.md"


def test_settings_doc_is_generated_from_the_declarations():
    assert DOC.read_text() == settings_markdown(), (
        "docs/settings.md is out of date: python -m compliance.conf > docs/settings.md"
    )
    for setting in SETTINGS:
        assert f"`{setting.variable}`" in DOC.read_text()


def test_default_then_django_setting_then_environment(settings, monkeypatch):
    monkeypatch.delenv("COMPLIANCE_FEED_BATCH_SIZE", raising=False)
    del settings.COMPLIANCE_FEED_BATCH_SIZE
    assert feed_settings.BATCH_SIZE == 500
    settings.COMPLIANCE_FEED_BATCH_SIZE = "70"
    assert feed_settings.BATCH_SIZE == 70 == compliance_settings.FEED_BATCH_SIZE
    monkeypatch.setenv("COMPLIANCE_FEED_BATCH_SIZE", "9")
    assert feed_settings.BATCH_SIZE == 9


def test_environment_values_are_parsed_by_type(settings, monkeypatch):
    monkeypatch.setenv("COMPLIANCE_DSAR_AUTO_APPROVE_METHODS", " bank_id, eid ,")
    monkeypatch.setenv("COMPLIANCE_SEGMENTS_PAUSE_OVERDUE", "on")
    monkeypatch.setenv("COMPLIANCE_COUNTRY_REGIONS", "gb=eu, CH=eu")
    monkeypatch.setenv("COMPLIANCE_RETENTION_AUDIT_MIN_DAYS", "30")
    assert compliance_settings.DSAR_AUTO_APPROVE_METHODS == ["bank_id", "eid"]
    assert compliance_settings.SEGMENTS_PAUSE_OVERDUE is True
    mapping = compliance_settings.COUNTRY_REGION_MAP
    assert mapping["GB"] == mapping["CH"] == mapping["DE"] == "eu" and "US" not in mapping
    assert retention_settings.AUDIT_MIN_DAYS == 30


def test_computed_defaults_follow_other_settings(settings):
    del settings.COMPLIANCE_AUDIT_WITNESS_DIR
    assert compliance_settings.AUDIT_WITNESS_DIR == str(Path(settings.VAR_DIR) / "witness")
    settings.COMPLIANCE_AUDIT_WITNESS_DIR = None
    assert compliance_settings.AUDIT_WITNESS_DIR == ""


def test_a_value_that_does_not_parse_names_its_variable(monkeypatch):
    monkeypatch.setenv("COMPLIANCE_AUDIT_CHECKPOINT_SECONDS", "soon")
    with pytest.raises(ImproperlyConfigured, match="COMPLIANCE_AUDIT_CHECKPOINT_SECONDS"):
        _ = compliance_settings.AUDIT_CHECKPOINT_SECONDS


def test_system_check_reports_a_setting_that_does_not_parse(settings, monkeypatch):
    assert check_settings_parse() == []
    settings.COMPLIANCE_FEED_BATCH_SIZE = "many"
    monkeypatch.setenv("COMPLIANCE_SEGMENTS_PAUSE_OVERDUE", "yes")
    errors = check_settings_parse()
    assert [(e.id, e.obj) for e in errors] == [("compliance.E020", "COMPLIANCE_FEED_BATCH_SIZE")]


def test_unknown_names_are_refused():
    with pytest.raises(AttributeError, match="GLOBAL_APP"):
        _ = compliance_settings.GLOBAL_APP
    assert "BATCH_SIZE" in dir(feed_settings) and "REGIONS" in dir(compliance_settings)


def test_no_direct_reads_of_compliance_settings():
    """Code reads ``compliance_settings``, never ``settings.COMPLIANCE_*`` or the environment."""
    root = Path(__file__).resolve().parents[2]
    offenders = []
    for package in ("compliance", "segments"):
        for path in (root / package).rglob("*.py"):
            if "migrations" in path.parts or path.name == "conf.py":
                continue
            text = path.read_text()
            for name in DECLARED:
                for needle in (f"settings.COMPLIANCE_{name}", f'"{DECLARED[name].variable}"'):
                    if needle in text:
                        offenders.append(f"{path.relative_to(root)}: {needle}")
    assert offenders == []


def test_postgresql_databases_prepare_the_hot_statements_unless_turned_off(monkeypatch):
    """``DB_PREPARED_STATEMENTS`` (on by default) gives each PostgreSQL alias psycopg's
    ``prepare_threshold``, which ``compliance.db.batch`` follows; off, or on SQLite, none."""
    from compliance.conf import environment_value
    from config import settings as config

    monkeypatch.delenv("DB_PREPARED_STATEMENTS", raising=False)
    assert environment_value("DB_PREPARED_STATEMENTS") is True
    monkeypatch.setenv("DB_PREPARED_STATEMENTS", "false")
    assert environment_value("DB_PREPARED_STATEMENTS") is False
    monkeypatch.setenv("DATABASE_URL_ZZ", "postgresql://runtime@db.example:5432/zz")
    monkeypatch.setattr(config, "_PREPARED", True)
    assert config._database("zz")["OPTIONS"]["prepare_threshold"] == 5
    monkeypatch.setattr(config, "_PREPARED", False)
    assert "prepare_threshold" not in config._database("zz").get("OPTIONS", {})
    monkeypatch.setattr(config, "_PREPARED", True)
    monkeypatch.setenv("DATABASE_URL_ZZ", "sqlite:////tmp/zz.sqlite3")
    assert "prepare_threshold" not in config._database("zz").get("OPTIONS", {})
