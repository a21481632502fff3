"""System checks: residency declarations, region aliases, keys. Errors stop start-up."""

from __future__ import annotations

import base64
import binascii

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, models

from compliance.conf import DECLARED, compliance_settings, setting_value
from compliance.db.roles import connected_role
from compliance.residency import residency_of


@checks.register(checks.Tags.models)
def check_residency_declared(app_configs=None, **kwargs):
    """Every concrete model declares GLOBAL or REGIONAL (or belongs to a listed global app)."""
    errors = []
    for model in apps.get_models(include_auto_created=True):
        if model._meta.abstract or model._meta.proxy:
            continue
        if model._meta.auto_created:
            continue  # m2m through tables follow their owner
        if residency_of(model) is None:
            errors.append(
                checks.Error(
                    f"{model._meta.label} declares no residency.",
                    hint=(
                        "Inherit compliance.residency.GlobalModel or RegionalModel, or set "
                        "`residency = GLOBAL|REGIONAL` on the model."
                    ),
                    obj=model,
                    id="compliance.E001",
                )
            )
    return errors


def residency_crossing_fields(model: type[models.Model]) -> list[str]:
    """Relation fields of ``model`` that point to a model of another residency."""
    crossing = []
    for field in model._meta.get_fields():
        if not field.is_relation or field.related_model is None or not field.concrete:
            continue
        if residency_of(field.related_model) is not residency_of(model):
            crossing.append(field.name)
    return crossing


@checks.register(checks.Tags.models)
def check_no_cross_residency_relations(app_configs=None, **kwargs):
    """No foreign key or m2m links a regional model to a global one (or the other way)."""
    errors = []
    for model in apps.get_models():
        if residency_of(model) is None:
            continue
        for name in residency_crossing_fields(model):
            errors.append(
                checks.Error(
                    f"{model._meta.label}.{name} relates models of different residency.",
                    hint="Hold the global row's key as a plain column instead of a foreign key.",
                    obj=model,
                    id="compliance.E002",
                )
            )
    return errors


@checks.register()
def check_settings_parse(app_configs=None, **kwargs):
    """Every declared setting can be read (an environment value of the wrong type cannot)."""
    errors = []
    for name in DECLARED:
        try:
            setting_value(name)
        except (ImproperlyConfigured, TypeError, ValueError) as exc:
            errors.append(checks.Error(str(exc), obj=f"COMPLIANCE_{name}", id="compliance.E020"))
    return errors


@checks.register()
def check_regions_have_databases(app_configs=None, **kwargs):
    errors = []
    regions = compliance_settings.REGIONS
    if not regions:
        errors.append(checks.Error("COMPLIANCE_REGIONS is empty.", id="compliance.E003"))
    for region in regions:
        if region not in settings.DATABASES:
            errors.append(
                checks.Error(
                    f"Region {region!r} has no database alias.",
                    hint=f"Add DATABASES[{region!r}] (env DATABASE_URL_{region.upper()}).",
                    id="compliance.E004",
                )
            )
        if region == "default":
            errors.append(
                checks.Error("A region may not be called 'default'.", id="compliance.E005")
            )
    if compliance_settings.DEFAULT_REGION not in regions:
        errors.append(
            checks.Error(
                f"COMPLIANCE_DEFAULT_REGION {compliance_settings.DEFAULT_REGION!r} is not a region.",
                id="compliance.E006",
            )
        )
    for country, region in compliance_settings.COUNTRY_REGION_MAP.items():
        if region not in regions:
            errors.append(
                checks.Error(
                    f"COMPLIANCE_COUNTRY_REGION_MAP sends {country} to unknown region {region!r}.",
                    id="compliance.E007",
                )
            )
    return errors


@checks.register()
def check_keys(app_configs=None, **kwargs):
    errors = []
    for name in ("ROOT_KEY", "SIGNING_KEY"):
        value = getattr(compliance_settings, name)
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            errors.append(
                checks.Error(
                    f"COMPLIANCE_{name} must be 32 random bytes, base64-encoded.",
                    hint='Generate one: python -c "import os,base64;print(base64.b64encode(os.urandom(32)).decode())"',
                    id="compliance.E010",
                )
            )
    return errors


@checks.register()
def check_runtime_role(app_configs=None, **kwargs):
    """Under production settings (DEBUG off), the role the application connects as must be
    neither a superuser nor the owner of the protected tables: either passes every guard."""
    if settings.DEBUG:
        return []
    warnings = []
    for alias in settings.DATABASES:
        try:
            found = connected_role(using=alias)
        except DatabaseError:
            continue
        if found is None:
            continue  # no roles (SQLite)
        user, superuser, owned = found
        problem = "is a superuser" if superuser else f"owns {', '.join(owned)}" if owned else ""
        if problem:
            warnings.append(
                checks.Warning(
                    f"database {alias!r}: the application connects as {user!r}, which "
                    f"{problem}; the audit and consent guards do not bind it.",
                    hint="Connect the web and workers as the runtime role: run `python manage.py "
                    "db_roles --database ALIAS --app-role NAME` as the owner and put that role in "
                    "DATABASE_URL*; keep the owner in DATABASE_OWNER_URL* for migrate_all "
                    "(docs/audit.md).",
                    id="compliance.W010",
                )
            )
    return warnings
