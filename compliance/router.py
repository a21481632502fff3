"""Database router: global models live on ``default``, regional ones only where named.

* reads and writes of a global model go to ``default``;
* a regional model must be used with ``.using(alias)`` (or through an instance that was loaded
  from a region); otherwise ``RegionRequiredError`` says which model and how to fix it;
* migrations create global tables only on ``default`` and regional tables only on region aliases.
  Operations without a model (``RunPython``, ``RunSQL``) pass ``hints={"residency": "regional"}``
  or ``"global"``; without a hint they run on ``default`` only.
"""

from __future__ import annotations

from django.apps import apps

from compliance.conf import compliance_settings
from compliance.residency import (
    GLOBAL,
    PER_DATABASE,
    REGIONAL,
    RegionRequiredError,
    Residency,
    residency_of,
)


class ResidencyRouter:
    def _route(self, model, hints) -> str:
        residency = residency_of(model)
        if residency in (REGIONAL, PER_DATABASE):
            instance = hints.get("instance")
            db = getattr(getattr(instance, "_state", None), "db", None)
            if db in compliance_settings.REGIONS or (residency is PER_DATABASE and db):
                return db
            raise RegionRequiredError(model)
        return "default"

    def db_for_read(self, model, **hints):
        return self._route(model, hints)

    def db_for_write(self, model, **hints):
        return self._route(model, hints)

    def allow_relation(self, obj1, obj2, **hints):
        return obj1._state.db == obj2._state.db

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        residency = self._migration_residency(app_label, model_name, hints)
        if residency is PER_DATABASE:
            return True
        if residency is REGIONAL:
            return db in compliance_settings.REGIONS
        return db == "default"

    @staticmethod
    def _migration_residency(app_label, model_name, hints) -> Residency:
        hinted = hints.get("residency")
        if hinted:
            return Residency(hinted)
        if model_name:
            try:
                model = apps.get_model(app_label, model_name)
            except LookupError:
                return GLOBAL
            return residency_of(model) or GLOBAL
        return GLOBAL
