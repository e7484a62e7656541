"""``/graphql`` over HTTP and websockets: authentication first, then Strawberry's view.

Every HTTP request but the GraphiQL page (a browser's GET without a query) needs
``Authorization: Bearer <admin token>``; without a valid one it is answered 401 before any
GraphQL work. The token is checked in the request's read session, whose snapshot then
serves the whole request, and whose ``queue_version`` keys the response cache
(:mod:`server.graphql.cache`). Batching is off (Strawberry's default), mutations over GET
are refused by Strawberry, multipart uploads are off, and sizes are capped: a body at
:data:`MAX_BODY_BYTES`, a document at :data:`MAX_DOCUMENT_BYTES`, a websocket message at
:data:`MAX_FRAME_BYTES`. A body that is not a JSON object is a 400.

When the database is unavailable, a request is answered HTTP 503 with ``Retry-After`` and
``extensions.code`` ``SERVICE_UNAVAILABLE``; a websocket is closed with 1013.

Websockets speak only ``graphql-transport-ws``; the token comes in ``connection_init``
(``{"Authorization": "Bearer …"}``). Each operation on a socket takes its own short read
(:class:`~server.graphql.live.LiveTransportWSHandler`). Close codes a client sees:

* 4403 — no or bad token in ``connection_init`` (or the token stopped working: revoked or
  rotated, :mod:`server.graphql.sockets`);
* 4408 — no ``connection_init`` within 5 s;
* 4406 — the client offered no ``graphql-transport-ws`` (e.g. only the legacy ``graphql-ws``);
* 4410 — a live subscriber must resync by query, then subscribe again: it fell too far
  behind, or the server lost its connection to the database's event stream (the reason
  says which; :mod:`server.graphql.subscriptions`);
* 1009 — a message over :data:`MAX_FRAME_BYTES`;
* 1013 — the database is unavailable: try again later;
* 4429 — the token already has ``PLM_MAX_WS_PER_TOKEN`` sockets open on this process, or
  the client address is over its limit of failed sign-ins (and graphql-transport-ws's own
  "too many initialisation requests");
* 4400/4401/4409 — protocol violations, as graphql-transport-ws defines them.

Rate limits (:mod:`server.infra.rate_limits`): every operation counts against its admin's
``PLM_RATE_LIMIT_GRAPHQL``; over it, HTTP 429 with ``Retry-After`` and ``extensions.code``
``RATE_LIMITED`` (over a websocket: an ``error`` message for that operation). A request
that fails to authenticate counts against its client address
(``PLM_RATE_LIMIT_UNAUTHENTICATED``): over it, 429 instead of 401.

At most :data:`MAX_OPERATIONS_PER_CONNECTION` operations run at once on one connection; one
more is answered with an ``error`` message for that operation id ("Subscription limit
reached") and the connection stays open.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator
from datetime import timedelta
from typing import Any

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from sqlalchemy.engine import make_url
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError, MissingQueryError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.exceptions import NonJsonMessageReceived, NonTextMessageReceived
from strawberry.http.types import HTTPMethod
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from server.domain import auth
from server.infra.db import is_unavailable
from server.infra.logs import RequestInfo, operation_label
from server.infra.rate_limits import Surface
from server.infra.sqlite_tokens import SqliteTokenLookup, TokenInfo
from server.infra.turns import Turns
from server.web.http import bearer_token, read_body
from server.web.observe import new_request_id, request_info
from server.web.runtime import Services

from .cache import CacheKey, Lookup, ResponseCache
from .context import Context
from .errors import SERVICE_UNAVAILABLE, has_code
from .feed import LiveViews
from .graphiql import graphiql_page
from .live import MAX_DOCUMENT_BYTES, LiveHub, LiveTransportWSHandler
from .schema import schema
from .sockets import OpenSockets, TooManySockets
from .wire import (
    answer,
    bad_request,
    decode,
    encode,
    media_type,
    rate_limited_response,
    request_data,
    unauthenticated_response,
    unavailable_response,
)

log = logging.getLogger("server.graphql")

# Room for the largest document plus variables (500 ids); far below what could hurt.
MAX_BODY_BYTES = 256 * 1024
# MAX_DOCUMENT_BYTES (from .live): a document's text, comments and whitespace included:
# the parser, the caches and the limits all take time and memory in its size.
# One websocket message (uvicorn's ``ws_max_size`` too, for ``plm serve``).
MAX_FRAME_BYTES = MAX_BODY_BYTES
# A client needs one subscription; ten leaves room for a few tabs sharing a connection while
# bounding what one token can make the server fan out to.
MAX_OPERATIONS_PER_CONNECTION = 10
_CONTEXT = "plm.context"
_ERRORS = "plm.had_errors"
_UNAVAILABLE = "plm.unavailable"


def bearer(value: str | None) -> str | None:
    return bearer_token(value)


def client_address(request: Request | WebSocket) -> str:
    return request.client.host if request.client else "unknown"


def _document_too_large(query: object) -> bool:
    return isinstance(query, str) and len(query.encode("utf-8", "surrogatepass")) > MAX_DOCUMENT_BYTES


async def _read_body(request: Request) -> bytes | None:
    return await read_body(request, MAX_BODY_BYTES)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the already-read body to Strawberry once."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class _WebSocketAdapter(ASGIWebSocketAdapter):
    """Strawberry's adapter, with messages capped at :data:`MAX_FRAME_BYTES` (close 1009)."""

    async def iter_json(self, *, ignore_parsing_errors: bool = False) -> AsyncGenerator[object, None]:
        while self.ws.application_state != WebSocketState.DISCONNECTED:
            try:
                text = await self.ws.receive_text()
            except KeyError as exc:  # a binary message
                raise NonTextMessageReceived from exc
            except WebSocketDisconnect:
                return
            if len(text) > MAX_FRAME_BYTES:
                await self.ws.close(code=1009, reason=f"messages are limited to {MAX_FRAME_BYTES} bytes")
                return
            try:
                yield self.view.decode_json(text)
            except json.JSONDecodeError as exc:
                if not ignore_parsing_errors:
                    raise NonJsonMessageReceived from exc


class GraphQLApp(GraphQL[Context, None]):
    """Strawberry's ASGI view with our authentication, context, cache and limits."""

    graphql_transport_ws_handler_class = LiveTransportWSHandler
    websocket_adapter_class = _WebSocketAdapter
    # False: every request through Strawberry's view (a test compares the two; see _answer).
    direct_posts = True

    def __init__(self, services: Services, *, cache: ResponseCache | None = None) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql",
            allow_queries_via_get=True,
            subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
            connection_init_wait_timeout=timedelta(seconds=5),
            multipart_uploads_enabled=False,
            max_subscriptions_per_connection=MAX_OPERATIONS_PER_CONNECTION,
        )
        self.services = services
        self.live = LiveViews(services.db)
        self.live_hub = LiveHub(self.live)
        self.cache = cache if cache is not None else ResponseCache(schema._schema)
        self._token_lookup: SqliteTokenLookup | None = None
        self.sockets = OpenSockets(services.settings.max_ws_per_token)
        self.turns = Turns(budget=services.settings.graphql_turn_budget_ms / 1000)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            response = await self._http(scope, receive)
            await response(scope, receive, send)
        else:
            # A websocket: no session lives as long as the socket (see on_ws_connect).
            await super().__call__(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive) -> Response:
        request = Request(scope, receive)
        info = request_info(scope) or RequestInfo(new_request_id())
        request_id = info.request_id
        if request.method not in ("GET", "POST"):
            return PlainTextResponse("GraphQL only supports GET and POST requests.", 405)
        if self.should_render_graphql_ide(self.request_adapter_class(request)):
            return await self.render_graphql_ide(request)
        token = bearer(request.headers.get("authorization"))
        if token is None:
            return await self._refuse(request, request_id)
        payload: Any = None
        if request.method == "POST":
            body = await _read_body(request)
            if body is None:
                return bad_request(f"The body is over {MAX_BODY_BYTES} bytes.", 413)
            request = Request(scope, _replay(body, receive))
            try:
                payload = decode(body)
            except (ValueError, RecursionError):  # not JSON, too deep, an over-long integer
                return bad_request("Unable to parse request body as JSON")
            if not isinstance(payload, dict | list):
                return bad_request('The body must be a JSON object: {"query": …, "variables": …}')
            if isinstance(payload, dict) and _document_too_large(payload.get("query")):
                return bad_request(f"The GraphQL document is over {MAX_DOCUMENT_BYTES} bytes.", 413)
        elif _document_too_large(request.query_params.get("query")):
            return bad_request(f"The GraphQL document is over {MAX_DOCUMENT_BYTES} bytes.", 413)
        lookup: Lookup | None = None
        counted: int | None = None  # the admin this request was already counted against
        if isinstance(payload, dict) and isinstance(payload.get("query"), str):
            op = payload.get("operationName")
            lookup = self.cache.lookup(
                payload["query"], payload.get("variables"), op if isinstance(op, str) else None
            )
            # A document known not to be cacheable can have no hit: the request's read
            # session authenticates it (and counts it against the limit) as on a miss.
            found = None if lookup.never_served else self._token_info(token)
            if found is not None:
                wait = await self.services.limits.hit(Surface.GRAPHQL, str(found.admin_id))
                if wait is not None:
                    return rate_limited_response(request_id, wait)
                counted = found.admin_id
                hit = self._cached(found, lookup)
                if hit is not None:
                    # Only queries are cached.
                    info.account_id, info.operation_type = found.account_id, "query"
                    info.operation_name = operation_label(op if isinstance(op, str) else None)
                    self.services.telemetry.graphql_operation("query")
                    return Response(hit, media_type="application/json", headers={"X-Request-ID": request_id})
        try:
            async with self.turns:  # uncached executions: a few start per turn of the loop
                response, key = await self._execute(request, payload, info, token, lookup, counted)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            log.warning("request %s: the database is unavailable (%s)", request_id, exc)
            return unavailable_response(request_id)
        if scope.get(_UNAVAILABLE):
            return unavailable_response(request_id)
        if key is not None and response.status_code == 200 and scope.get(_ERRORS) is False:
            self.cache.put(key, bytes(response.body))
        response.headers["X-Request-ID"] = request_id
        return response

    async def _refuse(self, request: Request, request_id: str) -> Response:
        """401, or 429 once the client's address is over its limit of failed sign-ins."""
        wait = await self.services.limits.hit(Surface.UNAUTHENTICATED, client_address(request))
        return (
            unauthenticated_response(request_id) if wait is None else rate_limited_response(request_id, wait)
        )

    async def _execute(
        self,
        request: Request,
        payload: Any,
        info: RequestInfo,
        token: str,
        lookup: Lookup | None,
        counted: int | None,
    ) -> tuple[Response, CacheKey | None]:
        """Authenticate and execute in one read session; the response and its cache key."""
        request_id = info.request_id
        async with self.services.db.read() as session:
            found = await auth.authenticate(session, token)
            if found is None:
                return await self._refuse(request, request_id), None
            admin, account = found
            info.account_id = admin.account_id
            if admin.id != counted:
                wait = await self.services.limits.hit(Surface.GRAPHQL, str(admin.id))
                if wait is not None:
                    return rate_limited_response(request_id, wait), None
            key = None
            if lookup is not None:
                assert account.id is not None
                key = lookup.key(account.id, account.queue_version, admin.role.value)
                cached = self.cache.get(key) if key is not None else None
                if cached is not None:
                    return Response(cached, media_type="application/json"), None
            ctx = Context.create(
                self.services, session, admin, account, request_id=request_id, request=request
            )
            try:
                response = await self._answer(request, payload, ctx)
            except HTTPException as exc:
                response = PlainTextResponse(exc.reason, status_code=exc.status_code)
            finally:
                await ctx.close()
                info.operation_type, info.operation_name = ctx.operation_type, ctx.operation_name
                if ctx.operation_type is not None:
                    self.services.telemetry.graphql_operation(ctx.operation_type)
        return response, key

    def _tokens(self) -> SqliteTokenLookup | None:
        if self._token_lookup is None and self.services.db.is_sqlite:
            path = make_url(self.services.db.url).database
            if path and path != ":memory:":
                try:
                    self._token_lookup = SqliteTokenLookup(path)
                except Exception:  # the file is gone or unreadable: the async path answers
                    return None
        return self._token_lookup

    def _token_info(self, token: str) -> TokenInfo | None:
        """The token's admin and account read synchronously (SQLite), or ``None`` (not found,
        or not on SQLite: the request's read session authenticates)."""
        tokens = self._tokens()
        if tokens is None:
            return None
        info = tokens.lookup(token)
        return info if isinstance(info, TokenInfo) else None

    def _cached(self, info: TokenInfo, lookup: Lookup) -> bytes | None:
        """A cache hit for the token's account and role, or ``None``.

        Only hits are answered here. A miss executes in the request's read session, whose
        snapshot gives the version the entry is stored under.
        """
        key = lookup.key(info.account_id, info.queue_version, info.role)
        return None if key is None else self.cache.get(key)

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        # Only answers without any error are cached; one the database could not serve is a 503.
        request.scope[_ERRORS] = bool(result.errors)
        request.scope[_UNAVAILABLE] = has_code(result.errors, SERVICE_UNAVAILABLE)
        return await super().process_result(request, result)

    async def _answer(self, request: Request, payload: Any, ctx: Context) -> Response:
        """A POSTed JSON object is executed from the body ``_http`` already decoded, and its
        answer encoded once, as bytes; anything else (a GET, a batch, a streaming ``Accept``)
        goes through Strawberry's view. Both give the same answer (tests/graphql/test_direct_posts.py)."""
        if not (self.direct_posts and isinstance(payload, dict) and self._json_only(request)):
            return await self.run(request, context=ctx)
        result = await self._execute_operation(request, "POST", request_data(payload), ctx)
        return answer(await self.process_result(request, result))

    def _json_only(self, request: Request) -> bool:
        return (
            "application/json" in media_type(request.headers.get("content-type", ""))
            # Only Accept is read: Strawberry's scan of every header decodes them all.
            and self._get_stream_transport_from_headers({"accept": request.headers.get("accept", "")}) is None
        )

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        return await self._execute_operation(request, request_adapter.method, request_data, context)

    async def _execute_operation(
        self, request: Request, method: HTTPMethod, request_data: GraphQLRequestData, context: Context
    ) -> ExecutionResult:
        # Strawberry's execute_single, minus subscriptions: they are served over websockets
        # only (it would otherwise execute one over HTTP as a query and fail inside).
        allowed = OperationType.from_http(method) - {OperationType.SUBSCRIPTION}
        try:
            return await self.schema.execute(
                request_data.query,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=allowed,
                operation_extensions=request_data.extensions,
            )
        except CannotGetOperationTypeError as exc:
            raise HTTPException(400, exc.as_http_error_reason()) from exc
        except InvalidOperationTypeError as exc:
            if exc.operation_type is OperationType.SUBSCRIPTION:
                raise HTTPException(
                    400, "Subscriptions are served over websockets (graphql-transport-ws) at /graphql."
                ) from exc
            raise HTTPException(400, exc.as_http_error_reason(method)) from exc
        except MissingQueryError as exc:
            raise HTTPException(400, "No GraphQL query found in the request") from exc

    def encode_json(self, data: object) -> str:
        # Text, not bytes: a websocket's messages go out as text frames.
        return encode(data).decode()

    def decode_json(self, data: str | bytes) -> object:
        try:
            return decode(data)
        except RecursionError:  # nested too deep: not a message we take
            raise json.JSONDecodeError("nested too deeply", "", 0) from None

    async def render_graphql_ide(self, request: Request) -> Response:
        return graphiql_page(self.graphql_ide_html)

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        # HTTP requests get their context from _http (``run(context=...)``); this is the
        # websocket's, bound in on_ws_connect.
        ctx = Context(self.services, request=request)
        ctx.live = self.live
        return ctx

    async def on_ws_connect(self, context: Context) -> dict[str, object] | None:
        params = context.connection_params
        raw = params.get("Authorization") or params.get("authorization") if isinstance(params, dict) else None
        token = bearer(raw) if isinstance(raw, str) else None
        if token is None:
            await self._refuse_socket(context)
        assert token is not None
        # A short read: the socket keeps who it is, never a session (each operation
        # reads in its own; LiveTransportWSHandler).
        async with asyncio.timeout(self.services.settings.request_timeout_seconds):
            async with self.services.db.read() as session:
                found = await auth.authenticate(session, token)
        if found is None:
            await self._refuse_socket(context)
        assert found is not None
        self.sockets.open(context, token)  # TooManySockets: closed with 4429
        context.token = token
        context.bind(*found)
        if (info := request_info(context.request.scope)) is not None:
            info.account_id = found[0].account_id
        return None

    async def _refuse_socket(self, context: Context) -> None:
        wait = await self.services.limits.hit(Surface.UNAUTHENTICATED, client_address(context.request))
        if wait is not None:
            raise TooManySockets("too many failed sign-ins from this address; retry later")
        raise ConnectionRejectionError({"message": "a valid admin API token is required"})
