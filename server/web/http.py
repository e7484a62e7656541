"""Small HTTP helpers shared by the routes: bearer tokens, capped bodies, the request deadline, logs."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.web.observe import request_info

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value, or ``None``."""
    scheme, _, token = (header or "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes | None:
    """The body, or ``None`` once it passes ``limit``; never buffers more than the limit.

    A declared ``Content-Length`` over the limit is refused before reading anything; a
    chunked body is cut off as soon as it passes the limit.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class Deadline:
    """ASGI middleware: an HTTP request not answered within ``seconds`` gets a 503.

    The bound every wait inside a request shares (a paused database, a long lock wait):
    the client hears "retry later" in seconds, and a request whose client gave up stops
    holding memory and its place in queues. Websockets are bounded per operation instead.
    """

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            async with asyncio.timeout(self.seconds) as deadline:
                await self.app(scope, receive, tracking_send)
        except TimeoutError:
            if not deadline.expired() or started:
                raise
            info = request_info(scope)
            request_id = info.request_id if info is not None else uuid.uuid4().hex[:16]
            log.warning(
                "%s %s (request %s): no answer within %.1fs; answered 503",
                scope["method"],
                scope["path"],
                request_id,
                self.seconds,
            )
            await _timed_out(scope["path"], self.seconds, request_id)(scope, receive, send)


def _timed_out(path: str, seconds: float, request_id: str) -> Response:
    message = f"the request took longer than {seconds:g} s (the database may be unavailable); retry it"
    headers = {"Retry-After": "2", "X-Request-ID": request_id}
    if path.startswith("/graphql"):
        body: dict[str, Any] = {
            "data": None,
            "errors": [{"message": message, "extensions": {"code": "SERVICE_UNAVAILABLE"}}],
        }
    else:
        body = {"error": {"code": "UNAVAILABLE", "message": message, "details": []}}
    return JSONResponse(body, status_code=503, headers=headers)


class _NoQueryStrings(logging.Filter):
    """Drops the query string from uvicorn's request log lines.

    A query string may carry a secret (``/graphql?token=…`` is refused, but uvicorn logs
    the request before anyone refuses it), and no route needs its query string logged.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, str) and "?" in a for a in record.args):
            record.args = tuple(
                a.split("?", 1)[0] if isinstance(a, str) and a.startswith("/") else a for a in record.args
            )
        return True


_FILTER = _NoQueryStrings()


def keep_query_strings_out_of_logs() -> None:
    """Install the filter on uvicorn's access log and on its websocket lines (idempotent)."""
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def redirect_to(path: str) -> Callable[[Request], Awaitable[Response]]:
    """A 307 to ``path`` (keeping the query string) with a relative ``Location``.

    Starlette's own slash redirect builds an absolute URL from the request's Host header,
    which a client controls.
    """

    async def endpoint(request: Request) -> Response:
        query = request.url.query
        return Response(status_code=307, headers={"Location": path + ("?" + query if query else "")})

    return endpoint
