"""JSON log lines: ``JsonFormatter`` and the ``RequestIdFilter`` that stamps the request id.

A line is one JSON object: ``time``, ``level``, ``logger``, ``message``, ``request_id``, the
exception text when there is one, and every ``extra=`` field of the call (JSON-encoded, or as
text when it is not JSON). Callers must not pass personal data in ``extra``.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from compliance.ops.context import current_request_id

#: attributes every LogRecord has; anything else on a record came from ``extra=``
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class RequestIdFilter(logging.Filter):
    """Sets ``record.request_id`` from the current request or task (``-`` outside of one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = current_request_id.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or current_request_id.get() or "-",
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in line:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, separators=(",", ":"))
