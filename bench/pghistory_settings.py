"""Bench-only settings: the product's settings plus django-pgtrigger, django-pghistory and the
bench app with a tracked copy of the membership table. ``python -m bench segments_apply`` runs
its pghistory reference in a child process with ``DJANGO_SETTINGS_MODULE`` set to this module;
nothing changes for the product."""

import sys
import types
from pathlib import Path

from compliance.conf import THIRD_PARTY_GLOBAL_APPS

# ``config/__init__`` starts the Celery app, which reads the settings being defined here: load
# ``config.settings`` through a bare package first, then let ``config`` import for real later.
if "config" not in sys.modules:
    _bare = types.ModuleType("config")
    _bare.__path__ = [str(Path(__file__).resolve().parent.parent / "config")]
    sys.modules["config"] = _bare
    try:
        from config.settings import *  # noqa: F403
        from config.settings import INSTALLED_APPS
    finally:
        del sys.modules["config"]
else:
    from config.settings import *  # noqa: F403
    from config.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "pgtrigger", "pghistory", "bench.pghistory_app"]
PGHISTORY_INSTALL_CONTEXT_FUNC_ON_MIGRATE = False
COMPLIANCE_GLOBAL_APPS = [*THIRD_PARTY_GLOBAL_APPS, "pgtrigger", "pghistory"]  # unused here
