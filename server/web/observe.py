"""ASGI middleware: a request id, the HTTP metrics and one access line per request.

The request id comes from a well-formed ``X-Request-ID`` (a proxy's) or is made here; every
answer carries it back, and every log line written while serving carries it
(:data:`server.infra.logs.current_request`). Routes add what they learn to the same
:class:`~server.infra.logs.RequestInfo` (the account, the GraphQL operation).

Metrics and the access line name the route template (the app's routes are fixed paths), so
neither a path a client made up nor a query string ever becomes a label or a log field.
Websockets get one line when they end, with their close code.
"""

from __future__ import annotations

import logging
import re
import time
from random import getrandbits
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.infra.logs import RequestInfo, current_request
from server.infra.telemetry import Telemetry

log = logging.getLogger("plm.access")

_SCOPE_KEY = "plm.request"
_INCOMING_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def new_request_id() -> str:
    """16 random hex digits (64 bits), without building a UUID: every request makes one.

    From ``random`` (seeded from the OS at start-up, and again in a forked worker), not
    ``os.urandom``: a request id correlates logs and is no secret, and ``os.urandom`` is a
    system call that gives up the GIL and must take it back (under ingest load py-spy found
    tens of us per request there)."""
    return f"{getrandbits(64):016x}"


def request_info(scope: Scope) -> RequestInfo | None:
    """The request's info, set by :class:`Observe` (``None`` outside the middleware, in tests)."""
    info: RequestInfo | None = scope.get(_SCOPE_KEY)
    return info


class Observe:
    def __init__(self, app: ASGIApp, telemetry: Telemetry, routes: frozenset[str]) -> None:
        self.app = app
        self.telemetry = telemetry
        self.routes = routes

    def _route(self, path: str) -> str:
        return path if path in self.routes else "unmatched"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        info = RequestInfo(incoming if incoming and _INCOMING_ID.fullmatch(incoming) else new_request_id())
        scope[_SCOPE_KEY] = info
        token = current_request.set(info)
        started = time.perf_counter()
        status = 500 if kind == "http" else 1006
        header = (b"x-request-id", info.request_id.encode())

        async def observed_send(message: Message) -> None:
            nonlocal status
            kind_ = message["type"]
            if kind_ == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                if not any(name.lower() == b"x-request-id" for name, _ in headers):
                    headers.append(header)
                    message = {**message, "headers": headers}
            elif kind_ == "websocket.close":
                status = message.get("code", 1000)
            elif kind_ == "websocket.accept":
                status = 1000
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            seconds = time.perf_counter() - started
            route = self._route(scope["path"])
            if kind == "http":
                self.telemetry.observe_http(route, status, seconds)
            if log.isEnabledFor(logging.INFO):
                _access(scope, info, route, status, seconds)
            info.finished = True
            current_request.reset(token)


def _access(scope: Scope, info: RequestInfo, route: str, status: int, seconds: float) -> None:
    method = scope.get("method", "WS")
    operation = " ".join(p for p in (info.operation_type, info.operation_name) if p)
    text = f"{method} {route} {status} {seconds * 1000:.1f} ms request={info.request_id}"
    if info.account_id is not None:
        text += f" account={info.account_id}"
    if operation:
        text += f" operation={operation}"
    extra: dict[str, Any] = {
        "method": method,
        "route": route,
        "status": status,
        "duration_ms": round(seconds * 1000, 3),
        "operation_type": info.operation_type,
        "operation": info.operation_name,
    }
    log.info("%s", text, extra=extra)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None
