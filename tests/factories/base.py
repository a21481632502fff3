"""What the factories share: the actor they record as, service-only and regional bases."""

from __future__ import annotations

import factory

from compliance.audit.services.append import Actor
from compliance.regions import region_alias

ACTOR = Actor.system("test")


class ServiceFactory(factory.Factory):
    """A factory whose ``_create`` calls a toolkit service; nothing is built without it."""

    class Meta:
        abstract = True

    @classmethod
    def _build(cls, model_class, *args, **kwargs):
        raise TypeError(f"{cls.__name__} makes rows through a service only: use create()")


class RegionalRowFactory(factory.django.DjangoModelFactory):
    """A plain row of a regional model, written to the database of ``region`` (default
    ``eu``; a model without a ``region`` column takes it as a parameter only)."""

    class Meta:
        abstract = True

    region = "eu"

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        has_column = any(f.name == "region" for f in model_class._meta.concrete_fields)
        region = kwargs["region"] if has_column else kwargs.pop("region")
        manager = cls._get_manager(model_class).db_manager(region_alias(region=region))
        return manager.create(*args, **kwargs)
