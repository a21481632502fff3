"""The officer pages, one module per page (``urls.py`` maps them). Each view is wrapped by
``admin.site.admin_view`` (active staff, login redirect) in ``urls.py`` and checks its own
permission (403 otherwise); POST-only actions call the owning app's service and show its refusal
as an admin message, never a 500."""
