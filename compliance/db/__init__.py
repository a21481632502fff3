"""Vendor-specific SQL of the compliance core: the one place that knows which database it talks
to (``vendor``), the guard functions and triggers PostgreSQL installs (``guards_sql``,
``regional_sql``, ``audit_triggers``) and the runtime role's grants (``roles``). Apps keep their
own in ``<app>/sql.py`` (``compliance.audit.sql``, ``compliance.feed.sql``)."""
