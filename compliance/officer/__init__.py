"""The privacy officer's admin: DSAR queue, request page, subject lookup, segment review,
dashboard with server-side SVG charts and the way to the audit evidence. See docs/admin.md."""
