"""Registry of every regional model that holds a person's data.

Each app registers its models in ``AppConfig.ready()``; erasure, access/portability packages
and the post-erasure sweep walk this registry, so a model that holds personal data and is not
registered is a bug (``tests`` check every regional model is registered or explicitly exempt).

``subject_field`` names the column holding the subject id. ``order`` decides erasure order
(low first: dependants before what they depend on; ``Subject`` itself is last).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models


@dataclass(frozen=True)
class PersonalDataModel:
    model: type[models.Model]
    subject_field: str
    order: int
    description: str
    #: included in access/portability packages (False for keys, suppression, internals)
    exportable: bool = True

    @property
    def label(self) -> str:
        return self.model._meta.label


_REGISTRY: dict[str, PersonalDataModel] = {}
#: regional models that hold no personal data of a subject (say why)
_EXEMPT: dict[str, str] = {}


def personal_data_register(
    *, model: type[models.Model], subject_field: str, order: int, description: str,
    exportable: bool = True,
) -> None:
    """Register ``model`` as holding subjects' data (idempotent)."""
    _REGISTRY[model._meta.label] = PersonalDataModel(
        model=model, subject_field=subject_field, order=order, description=description,
        exportable=exportable,
    )


def personal_data_exempt(*, model: type[models.Model], why: str) -> None:
    """Declare that a regional model holds no subject's personal data."""
    _EXEMPT[model._meta.label] = why


def personal_data_models() -> list[PersonalDataModel]:
    """Registered models in erasure order."""
    return sorted(_REGISTRY.values(), key=lambda entry: (entry.order, entry.label))


def personal_data_exemptions() -> dict[str, str]:
    return dict(_EXEMPT)
