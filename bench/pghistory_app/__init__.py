"""Bench-only app (``bench/pghistory_settings.py``): a django-pghistory tracked copy of the
membership table, the trigger-based audit reference of ``python -m bench segments_apply``."""
