"""One settings object for the toolkit, ``compliance_settings``, with one lookup rule.

Every setting is declared once in ``SETTINGS`` below: name, type, default and a one-line doc.
``compliance_settings.NAME`` looks it up by one rule: the environment variable (``COMPLIANCE_NAME``
unless the declaration names another), then the Django setting ``COMPLIANCE_NAME``, then the
default. Read settings only through it, never ``settings.COMPLIANCE_NAME`` or ``os.environ``.
``docs/settings.md`` is generated from the declarations (``python -m compliance.conf``; a test
fails when it is out of date). Mistakes are reported by the system checks in ``compliance.checks``.

Environment values are text: lists are comma-separated (``eu,us``), booleans ``1``/``true``/
``yes``/``on`` (anything else is false), maps ``KEY=value`` pairs (``GB=eu,CH=eu``) added to the
default map. A value that does not parse is an ``ImproperlyConfigured`` naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

#: EU member states plus the EEA (Iceland, Liechtenstein, Norway).
EU_EEA_COUNTRIES = frozenset(
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE IS LI NO".split()
)

#: Third-party apps whose models count as global (they cannot declare a residency).
THIRD_PARTY_GLOBAL_APPS = (
    "admin",
    "auth",
    "contenttypes",
    "sessions",
    "messages",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
)

_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Computed:
    """A default computed when read (from other Django settings); ``text`` documents it."""

    compute: Callable[[], Any]
    text: str


@dataclass(frozen=True)
class Setting:
    name: str
    type: type
    default: Any
    doc: str
    #: the environment variable, when it is not ``COMPLIANCE_<name>``
    env: str = ""

    @property
    def variable(self) -> str:
        return self.env or f"COMPLIANCE_{self.name}"

    def default_value(self) -> Any:
        value = self.default.compute() if isinstance(self.default, Computed) else self.default
        return self.coerce(value)

    def parse(self, raw: str) -> Any:
        """The value of an environment variable's text."""
        if self.type is bool:
            return raw.strip().lower() in _TRUE
        if self.type is list:
            return [item.strip() for item in raw.split(",") if item.strip()]
        if self.type is dict:
            pairs = [item.split("=", 1) for item in raw.split(",") if item.strip()]
            if any(len(pair) != 2 for pair in pairs):
                raise ValueError("expected KEY=value pairs separated by commas")
            return self.default_value() | {k.strip().upper(): v.strip() for k, v in pairs}
        return self.type(raw.strip())

    def coerce(self, value: Any) -> Any:
        """A Django setting's (or default's) value as this setting's type."""
        if value is None and self.type is str:
            return ""
        return self.type(value)


SETTINGS: tuple[Setting, ...] = (
    # --- regions and residency
    Setting(
        "REGIONS",
        list,
        ["eu", "us"],
        "Configured regions; each needs a database alias of the same name (`DATABASE_URL_<REGION>`).",
    ),
    Setting("DEFAULT_REGION", str, "us", "Region of countries absent from `COUNTRY_REGION_MAP`."),
    Setting(
        "COUNTRY_REGION_MAP",
        dict,
        Computed(lambda: {code: "eu" for code in EU_EEA_COUNTRIES}, "EU and EEA countries -> `eu`"),
        "Country code -> region; the variable's `GB=eu,CH=eu` pairs are added to the default map.",
        env="COMPLIANCE_COUNTRY_REGIONS",
    ),
    Setting(
        "GLOBAL_APPS",
        list,
        list(THIRD_PARTY_GLOBAL_APPS),
        "Third-party app labels whose models are all global (stored in the control database).",
    ),
    Setting(
        "WORKER_REGIONS",
        list,
        [],
        "On a worker: the regions it may process, a second guard behind the queues (empty: all).",
    ),
    # --- keys
    Setting(
        "ROOT_KEY",
        str,
        "",
        "Base64 32-byte root key; HKDF derives region KEKs and the blind-index key from it (generated into `var/secrets.json` by the embedded default; production requires it).",
    ),
    Setting(
        "SIGNING_KEY",
        str,
        "",
        "Base64 Ed25519 private key seed (32 bytes) for checkpoints, manifests and receipts (generated like `ROOT_KEY`).",
    ),
    # --- data subject requests and the controller
    Setting(
        "DSAR_AUTO_APPROVE_METHODS",
        list,
        [],
        "Verification methods for which an erasure needs no privacy officer approval.",
    ),
    Setting(
        "CONTROLLER_NAME",
        str,
        "The data controller",
        "The controller named in access reports and erasure certificates (set your legal name).",
    ),
    Setting(
        "CONTROLLER_EMAIL",
        str,
        "privacy@example.com",
        "Where a person exercises their rights, shown in reports and certificates.",
    ),
    Setting("CONTROLLER_ADDRESS", str, "", "The controller's postal address (optional)."),
    Setting(
        "DPO_EMAIL",
        str,
        "",
        "The data protection officer's address, GDPR Art. 13(1)(b) (optional).",
    ),
    # --- consent and segments
    Setting(
        "GPC_BINDING_JURISDICTIONS",
        list,
        [
            "US-CA",
            "US-CO",
            "US-CT",
            "US-NJ",
            "US-OR",
            "US-TX",
            "US-MT",
            "US-DE",
            "US-NH",
            "US-MN",
            "US-MD",
        ],
        "Jurisdictions where `Sec-GPC: 1` is a binding opt-out; an entry matches exactly (`US-CA`) or by country (`US`).",
    ),
    Setting(
        "SEGMENTS_PAUSE_OVERDUE",
        bool,
        False,
        "Pause active segments past their review date (daily beat job).",
    ),
    Setting(
        "OUTBOUND_ALLOW_LOCAL",
        bool,
        False,
        "Callbacks and webhooks may go to `http://` and to loopback, private or link-local "
        "addresses (development only; `config.settings` turns it on with `DJANGO_DEBUG`).",
    ),
    # --- tracking plans
    Setting(
        "PLANS_UNRELIABLE_SHARE",
        float,
        0.05,
        "Share of a source's events with tracking plan violations over the last 7 days above which segments drawing on it are flagged as built on unreliable data.",
    ),
    Setting(
        "PLANS_LAYER_SOURCES",
        dict,
        {
            "FIRMOGRAPHIC": "crm partner_import",
            "TECHNOGRAPHIC": "web ios_app android_app",
            "BEHAVIORAL": "web ios_app android_app",
            "INTENT": "web crm",
            "DEMOGRAPHIC": "crm",
            "ENGAGEMENT": "web ios_app android_app email",
        },
        "Segment layer -> the event sources it draws on (space-separated keys; `INTENT=web|crm` pairs in the variable), for the unreliable-data flag.",
    ),
    # --- audit
    Setting(
        "AUDIT_CHECKPOINT_SECONDS",
        float,
        60.0,
        "Seconds between signed and witnessed checkpoints of every audit chain that moved (beat).",
    ),
    Setting(
        "AUDIT_WITNESS_DIR",
        str,
        Computed(lambda: str(settings.VAR_DIR / "witness"), "`<VAR_DIR>/witness`"),
        "Directory outside the database where every signed checkpoint is also written; empty turns it off.",
    ),
    Setting(
        "AUDIT_WITNESS_URL",
        str,
        "",
        "Optional HTTP witness: every checkpoint is also POSTed there, signed.",
    ),
    Setting(
        "AUDIT_WITNESS_TIMEOUT", float, 10.0, "Seconds before a POST to the HTTP witness gives up."
    ),
    # --- retention
    Setting(
        "RETENTION_AUDIT_MIN_DAYS",
        int,
        2190,
        "Legal minimum age of audit entries: a retention rule for them with a shorter maximum age is refused.",
    ),
    Setting("RETENTION_BATCH_SIZE", int, 2000, "Rows removed per transaction by retention."),
    # --- change feed
    Setting("FEED_BATCH_SIZE", int, 500, "Changes per webhook request."),
    Setting("FEED_HTTP_TIMEOUT", float, 5.0, "Seconds to wait for a webhook's response."),
    Setting(
        "FEED_LEASE_SECONDS",
        float,
        30.0,
        "How long a delivery run owns a subscription's cursor in a region before another may take over (renewed every batch).",
    ),
    Setting(
        "FEED_RETRY_BASE_SECONDS",
        float,
        1.0,
        "First retry delay after a failed delivery; doubles each attempt.",
    ),
    Setting("FEED_RETRY_MAX_SECONDS", float, 300.0, "Longest retry delay of a delivery."),
    Setting(
        "FEED_SWEEP_SECONDS",
        float,
        10.0,
        "Beat interval of the feed's safety-net sweep per region.",
    ),
    Setting(
        "FEED_RUN_SECONDS",
        float,
        60.0,
        "A delivery run hands over to a fresh task after this long.",
    ),
    Setting(
        "FEED_ERASURE_NOTICE_TTL_DAYS",
        float,
        30.0,
        "Days an erasure notice stays for pull consumers (removed once older and received by every webhook it is meant for).",
    ),
    # --- serving and operations
    Setting(
        "DB_CONN_MAX_AGE",
        int,
        60,
        "Seconds a database connection is kept for reuse (0: closed after each request; "
        "health-checked before reuse). One connection per database alias per thread: see "
        "docs/operations.md for sizing PostgreSQL's `max_connections`. Read from the environment "
        "only (it builds `DATABASES`).",
        env="DB_CONN_MAX_AGE",
    ),
    Setting(
        "DB_PREPARED_STATEMENTS",
        bool,
        True,
        "PostgreSQL: send the hot paths' batched statements (event batch, consent ledger, audit "
        "append) as prepared statements, several in one pipeline, parsed and planned once per "
        "connection. Turn off behind a transaction-pooling PgBouncer older than 1.21 or without "
        "`max_prepared_statements`. Read from the environment only (it builds `DATABASES`).",
        env="DB_PREPARED_STATEMENTS",
    ),
    Setting(
        "READY_TIMEOUT",
        float,
        2.0,
        "Seconds `/readyz` waits for each database and for the broker before calling it down.",
    ),
    Setting(
        "METRICS_TOKEN",
        str,
        "",
        "Bearer token that opens `/metrics` from any address (empty: only `METRICS_ALLOW`).",
    ),
    Setting(
        "METRICS_ALLOW",
        list,
        ["127.0.0.1/32", "::1/128"],
        "Networks (CIDR) whose clients may read `/metrics` without the token; the peer address "
        "is `REMOTE_ADDR` (a proxy in front must not forward outside scrapes as local).",
    ),
)

DECLARED: dict[str, Setting] = {s.name: s for s in SETTINGS}


def environment_value(name: str) -> Any:
    """``name``'s value from the environment, else its default, without Django's settings: for
    the settings module itself (``config.settings`` builds ``DATABASES`` from the regions)."""
    declared = DECLARED[name]
    raw = os.environ.get(declared.variable)
    if raw is None:
        return declared.default_value()
    try:
        return declared.parse(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"{declared.variable}={raw!r} is not a valid {declared.type.__name__}: {exc}"
        ) from None


def setting_value(name: str) -> Any:
    """``name``'s value: its environment variable, else the Django setting, else the default."""
    declared = DECLARED[name]
    if declared.variable in os.environ:
        return environment_value(name)
    value = getattr(settings, f"COMPLIANCE_{name}", declared)
    if value is declared:
        return declared.default_value()
    return declared.coerce(value)


class ComplianceSettings:
    """``compliance_settings.REGIONS`` and so on: every name declared in ``SETTINGS``."""

    def __init__(self, prefix: str = "") -> None:
        self._prefix = prefix

    def __getattr__(self, name: str) -> Any:
        if f"{self._prefix}{name}" not in DECLARED:
            raise AttributeError(f"no setting {self._prefix}{name} is declared in compliance.conf")
        return setting_value(f"{self._prefix}{name}")

    def __dir__(self) -> list[str]:
        return [n[len(self._prefix) :] for n in DECLARED if n.startswith(self._prefix)]

    def section(self, prefix: str) -> ComplianceSettings:
        """The settings named ``<prefix>_*`` without the prefix (``feed_settings.BATCH_SIZE``)."""
        return ComplianceSettings(f"{self._prefix}{prefix}_")


compliance_settings = ComplianceSettings()


def settings_markdown() -> str:
    """``docs/settings.md``: every declared setting, its variable, type, default and doc."""
    lines = [
        "# Settings",
        "",
        "Generated from `compliance/conf.py` by `python -m compliance.conf > docs/settings.md`;",
        "a test fails when this page and the declarations disagree.",
        "",
        "Each setting is looked up by one rule: the **environment variable**, then the **Django",
        "setting** `COMPLIANCE_<NAME>`, then the **default**. In the environment, lists are",
        "comma-separated (`eu,us`), booleans `1`/`true`/`yes`/`on`, maps `KEY=value` pairs added",
        "to the default map. Code reads them as `compliance_settings.<NAME>`.",
        "",
        "| setting | environment variable | type | default | meaning |",
        "|---|---|---|---|---|",
    ]
    for s in SETTINGS:
        if isinstance(s.default, Computed):
            default = s.default.text
        elif s.type is list:
            default = f"`{','.join(s.default)}`" if s.default else "none"
        elif s.default in ("", None):
            default = "empty"
        else:
            default = f"`{s.default}`"
        lines.append(f"| `{s.name}` | `{s.variable}` | {s.type.__name__} | {default} | {s.doc} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(settings_markdown(), end="")
