"""Logging: plain text or one JSON object per line (``PLM_LOG_FORMAT``), never a secret.

Every line written while a request is served carries that request's id, and its account
once known (:class:`RequestInfo`, a context variable the edge sets): the access line, and
equally a masked error logged deep inside a resolver. The access line adds the route
template (never the path or its query string), the GraphQL operation, the status and the
duration.

Secrets are kept out by construction (credentials are never logged, query strings never
reach a line); as a second line of defence every formatted line is scrubbed of anything
shaped like a credential (``plm_…``, ``plmi_…``, ``whsec_…``) and of the SMTP password.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from server.infra.settings import Settings


@dataclass
class RequestInfo:
    """What the edge learns about one request (or websocket) as it is served."""

    request_id: str
    account_id: int | None = None
    operation_type: str | None = None
    operation_name: str | None = None
    # Set once the access line is written: a task started during the request (the ingest
    # writer, say) inherits the context variable but is not part of the request.
    finished: bool = False


current_request: contextvars.ContextVar[RequestInfo | None] = contextvars.ContextVar(
    "plm_current_request", default=None
)

# Fields an access line passes as ``extra``; JSON lines show them as they are.
ACCESS_FIELDS = ("method", "route", "status", "duration_ms", "operation_type", "operation")

_CREDENTIAL = re.compile(r"\b(plmi?_|whsec_)[A-Za-z0-9_\-+/=]{8,}")
_MAX_OPERATION_NAME = 100


def operation_label(name: str | None) -> str | None:
    """A client-chosen GraphQL operation name, fit for a log line (bounded, printable)."""
    if not name:
        return None
    return "".join(c if c.isprintable() else "?" for c in name[:_MAX_OPERATION_NAME])


class _Scrub:
    def __init__(self, password: str | None) -> None:
        # A short password would match ordinary words; real ones are not that short.
        self.password = password if password and len(password) >= 6 else None

    def __call__(self, text: str) -> str:
        text = _CREDENTIAL.sub(lambda m: m.group(1) + "[redacted]", text)
        if self.password and self.password in text:
            text = text.replace(self.password, "[redacted]")
        return text


class TextFormatter(logging.Formatter):
    def __init__(self, scrub: _Scrub) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.scrub = scrub

    def format(self, record: logging.LogRecord) -> str:
        return self.scrub(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the request's ids, extras."""

    def __init__(self, scrub: _Scrub) -> None:
        super().__init__()
        self.scrub = scrub

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        info = current_request.get()
        if info is not None and not info.finished:
            line["request_id"] = info.request_id
            if info.account_id is not None:
                line["account_id"] = info.account_id
        for name in ACCESS_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value
        for name in ("request_id", "account_id"):
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return self.scrub(json.dumps(line, ensure_ascii=False, default=str))


def configure(settings: Settings) -> None:
    """Root logging for ``plm``: to stderr, in ``PLM_LOG_FORMAT``, at ``PLM_LOG_LEVEL``."""
    scrub = _Scrub(settings.smtp_password)
    handler = logging.StreamHandler(sys.stderr)
    formatter: logging.Formatter = (
        JsonFormatter(scrub) if settings.log_format == "json" else TextFormatter(scrub)
    )
    handler.setFormatter(formatter)
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler], force=True)
