"""Residency declarations: every model is ``GLOBAL`` (control database) or ``REGIONAL``.

A model declares it with a class attribute ``residency``; the base classes below do it for
our own models. Third-party apps listed in ``COMPLIANCE_GLOBAL_APPS`` count as global. The
router (``compliance.router``) and the system checks (``compliance.checks``) read it.
"""

from __future__ import annotations

import enum

from django.db import models

from compliance.conf import compliance_settings
from compliance.errors import InternalError


class Residency(enum.StrEnum):
    GLOBAL = "global"
    REGIONAL = "regional"
    #: a table in every database (control and regions), always used with an explicit alias;
    #: the audit chain is the one such table: one chain per database.
    PER_DATABASE = "per_database"


GLOBAL = Residency.GLOBAL
REGIONAL = Residency.REGIONAL
PER_DATABASE = Residency.PER_DATABASE


class RegionRequiredError(InternalError):
    """A regional model was used without naming its database."""

    def __init__(self, model: type[models.Model]) -> None:
        label = model._meta.label
        super().__init__(
            f"{label} is REGIONAL: name its database, e.g. {model.__name__}.objects.using(alias) "
            f"or transaction.atomic(using=alias), with alias from "
            f"compliance.regions.region_alias(region=...). Regional data never goes to 'default'."
        )


class GlobalModel(models.Model):
    """Base for models stored only in the control database (no personal data)."""

    residency = GLOBAL

    class Meta:
        abstract = True


class RegionalModel(models.Model):
    """Base for models stored only in region databases (all personal data)."""

    residency = REGIONAL

    class Meta:
        abstract = True


class PerDatabaseModel(models.Model):
    """Base for models with a table in every database, always used with ``.using(alias)``."""

    residency = PER_DATABASE

    class Meta:
        abstract = True


def residency_of(model: type[models.Model]) -> Residency | None:
    """The model's declared residency, ``GLOBAL`` for listed third-party apps, else ``None``."""
    declared = getattr(model, "residency", None)
    if isinstance(declared, Residency):
        return declared
    if model._meta.app_label in compliance_settings.GLOBAL_APPS:
        return GLOBAL
    return None
