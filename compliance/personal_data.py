"""Registry of every regional model that holds a person's data.

Each app registers its models in ``AppConfig.ready()``; erasure, access/portability packages
and the post-erasure sweep walk this registry, so a model that holds personal data and is not
registered is a bug (``tests`` check every regional model is registered or explicitly exempt).

``subject_field`` names the column holding the subject id. ``order`` decides erasure order
(low first: dependants before what they depend on; ``Subject`` itself is last).

``retained`` (optional) names rows that erasure deliberately KEEPS: a dict of field name ->
value (exact equality, every pair must match), with ``retained_why`` saying why. Both erasure
paths (per request and bulk) leave those rows, the post-erasure sweep and the preview do not
count them, and the receipt lists them with the reason. Example: the change feed keeps its
erasure notices (``retract`` changes with reason ``erasure``: a random subject id and a segment
key) until they reach every recipient (GDPR Art. 17(2)/19), then removes them itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from uuid import UUID

from django.db import models
from django.db.models import Q, QuerySet


@dataclass(frozen=True)
class PersonalDataModel:
    model: type[models.Model]
    subject_field: str
    order: int
    description: str
    #: included in access/portability packages (False for keys, suppression, internals)
    exportable: bool = True
    #: rows erasure keeps on purpose (field name -> value, all must match), or None
    retained: dict | None = field(default=None, hash=False)
    #: why the ``retained`` rows are kept (shown in erasure receipts)
    retained_why: str = ""

    @property
    def label(self) -> str:
        return self.model._meta.label

    @property
    def retained_q(self) -> Q | None:
        """The ``retained`` filter as a ``Q`` (None when nothing is retained)."""
        return Q(**self.retained) if self.retained else None

    def rows(self, *, using: str, subject_ids: Sequence[UUID]) -> QuerySet:
        """Every row of ``subject_ids`` in database ``using``, retained ones included."""
        return self.model._default_manager.using(using).filter(
            **{f"{self.subject_field}__in": list(subject_ids)}
        )

    def erasable(self, *, using: str, subject_ids: Sequence[UUID]) -> QuerySet:
        """The rows of ``subject_ids`` that erasure removes (all but the retained ones)."""
        rows = self.rows(using=using, subject_ids=subject_ids)
        return rows.exclude(self.retained_q) if self.retained else rows

    def kept(self, *, using: str, subject_ids: Sequence[UUID]) -> QuerySet:
        """The rows of ``subject_ids`` that erasure keeps (empty when nothing is retained)."""
        rows = self.rows(using=using, subject_ids=subject_ids)
        return rows.filter(self.retained_q) if self.retained else rows.none()


_REGISTRY: dict[str, PersonalDataModel] = {}
#: regional models that hold no personal data of a subject (say why)
_EXEMPT: dict[str, str] = {}


def personal_data_register(
    *,
    model: type[models.Model],
    subject_field: str,
    order: int,
    description: str,
    exportable: bool = True,
    retained: dict | None = None,
    retained_why: str = "",
) -> None:
    """Register ``model`` as holding subjects' data (idempotent). ``retained``: rows erasure
    keeps (concrete field name -> value, exact match), with ``retained_why`` (required)."""
    if retained:
        if not retained_why:
            raise ValueError(f"{model._meta.label}: retained rows need a retained_why")
        for name in retained:
            if not model._meta.get_field(name).concrete:  # FieldDoesNotExist: lookups, typos
                raise ValueError(f"{model._meta.label}: retained field {name!r} not concrete")
    _REGISTRY[model._meta.label] = PersonalDataModel(
        model=model,
        subject_field=subject_field,
        order=order,
        description=description,
        exportable=exportable,
        retained=dict(retained) if retained else None,
        retained_why=retained_why if retained else "",
    )


def personal_data_exempt(*, model: type[models.Model], why: str) -> None:
    """Declare that a regional model holds no subject's personal data."""
    _EXEMPT[model._meta.label] = why


def personal_data_models() -> list[PersonalDataModel]:
    """Registered models in erasure order."""
    return sorted(_REGISTRY.values(), key=lambda entry: (entry.order, entry.label))


def personal_data_exemptions() -> dict[str, str]:
    return dict(_EXEMPT)
