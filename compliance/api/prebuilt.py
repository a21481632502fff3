"""``FieldsBuiltOnce``: an input serializer whose fields are built once per class.

DRF deep-copies and binds every declared field for every serializer instance (about 0.5 ms for
the consent body's nested serializers, measured by ``python -m bench api``), so that an
instance may change its own fields. The hot input serializers never do: with this mixin the
first use builds the fields on a blank instance of the class (no data, no context) and every
instance reads that one set.

Only for serializers whose fields keep no state of their own while validating: no context
(``request``, ``view``), no ``partial``, no field added or changed per instance, no
``CurrentUserDefault``-like default. Validation itself, its errors and ``validated_data`` stay
per instance.
"""

from __future__ import annotations

import threading

from django.utils.functional import cached_property

_lock = threading.Lock()


class FieldsBuiltOnce:
    """Mix in before ``serializers.Serializer`` (see the module docstring)."""

    @cached_property
    def fields(self):
        cls = type(self)
        built = cls.__dict__.get("_fields_built_once")
        if built is None:
            with _lock:
                built = cls.__dict__.get("_fields_built_once")
                if built is None:
                    built = super(FieldsBuiltOnce, cls()).fields
                    cls._fields_built_once = built
        return built
