"""``/graphql`` over HTTP and websockets: authentication first, then Strawberry's view.

Every HTTP request but the GraphiQL page (a browser's GET without a query) needs
``Authorization: Bearer <admin token>``; without a valid one it is answered 401 before any
GraphQL work. The token is checked in the request's read session, whose snapshot then
serves the whole request, and whose ``queue_version`` keys the response cache
(:mod:`server.graphql.cache`). Batching is off (Strawberry's default), mutations over GET
are refused by Strawberry, multipart uploads are off, bodies are capped.

Websockets speak only ``graphql-transport-ws``; the token comes in ``connection_init``
(``{"Authorization": "Bearer …"}``). Close codes a client sees:

* 4403 — no or bad token in ``connection_init``;
* 4408 — no ``connection_init`` within 5 s;
* 4406 — the client offered no ``graphql-transport-ws`` (e.g. only the legacy ``graphql-ws``);
* 4410 — a live subscriber fell too far behind (:mod:`server.graphql.subscriptions`):
  resync by query, then subscribe again;
* 4400/4401/4409/4429 — protocol violations, as graphql-transport-ws defines them.

At most :data:`MAX_OPERATIONS_PER_CONNECTION` operations run at once on one connection; one
more is answered with an ``error`` message for that operation id ("Subscription limit
reached") and the connection stays open.
"""

from __future__ import annotations

import contextlib
import json
import logging
from datetime import timedelta
from typing import Any

from cross_web import HTTPException
from sqlalchemy.engine import make_url
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult

from server import queries
from server.http_util import bearer_token, read_body
from server.services import Services

from .cache import ResponseCache
from .context import Context, new_request_id
from .errors import UNAUTHENTICATED
from .live import LiveHub, LiveTransportWSHandler
from .schema import schema
from .subscriptions import LiveViews

log = logging.getLogger("server.graphql")

MAX_BODY_BYTES = 1024 * 1024
# A client needs one subscription; ten leaves room for a few tabs sharing a connection while
# bounding what one token can make the server fan out to.
MAX_OPERATIONS_PER_CONNECTION = 10
_STACK = "plm.exit_stack"
_CONTEXT = "plm.context"
_ERRORS = "plm.had_errors"


def bearer(value: str | None) -> str | None:
    return bearer_token(value)


def _unauthenticated(request_id: str) -> Response:
    return JSONResponse(
        {
            "data": None,
            "errors": [
                {
                    "message": "a valid admin API token is required (Authorization: Bearer <token>)",
                    "extensions": {"code": UNAUTHENTICATED},
                }
            ],
        },
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer realm="plm"', "X-Request-ID": request_id},
    )


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


class GraphQLApp(GraphQL[Context, None]):
    """Strawberry's ASGI view with our authentication, context, cache and limits."""

    graphql_transport_ws_handler_class = LiveTransportWSHandler

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
        self._token_lookup: queries.SqliteTokenLookup | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            response = await self._http(scope, receive)
            await response(scope, receive, send)
        elif scope["type"] == "websocket":
            # A websocket's read session is opened once connection_init authenticated it,
            # and closed here when the socket ends.
            async with contextlib.AsyncExitStack() as stack:
                scope[_STACK] = stack
                await super().__call__(scope, receive, send)
        else:  # pragma: no cover - lifespan is handled by the Starlette app
            await super().__call__(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive) -> Response:
        request = Request(scope, receive)
        request_id = new_request_id()
        if request.method not in ("GET", "POST"):
            return PlainTextResponse("GraphQL only supports GET and POST requests.", 405)
        if self.should_render_graphql_ide(self.request_adapter_class(request)):
            return await self.render_graphql_ide(request)
        token = bearer(request.headers.get("authorization"))
        if token is None:
            return _unauthenticated(request_id)
        payload: Any = None
        if request.method == "POST":
            body = await _read_body(request)
            if body is None:
                return PlainTextResponse(f"The body is over {MAX_BODY_BYTES} bytes.", 413)
            request = Request(scope, _replay(body, receive))
            try:
                payload = json.loads(body)
            except ValueError:  # not JSON, or an integer too long to convert: never a 500
                return PlainTextResponse("Unable to parse request body as JSON", 400)
        if isinstance(payload, dict) and isinstance(payload.get("query"), str):
            hit = self._cached(token, payload)
            if hit is not None:
                return Response(hit, media_type="application/json", headers={"X-Request-ID": request_id})
        async with self.services.db.read() as session:
            found = await queries.authenticate(session, token)
            if found is None:
                return _unauthenticated(request_id)
            admin, account = found
            key = None
            if isinstance(payload, dict) and isinstance(payload.get("query"), str):
                op = payload.get("operationName")
                assert account.id is not None
                key = self.cache.key(
                    account.id,
                    account.queue_version,
                    admin.role.value,
                    payload["query"],
                    payload.get("variables"),
                    op if isinstance(op, str) else None,
                )
                cached = self.cache.get(key) if key is not None else None
                if cached is not None:
                    return Response(
                        cached, media_type="application/json", headers={"X-Request-ID": request_id}
                    )
            ctx = Context.create(
                self.services, session, admin, account, request_id=request_id, request=request
            )
            try:
                response = await self.run(request, context=ctx)
            except HTTPException as exc:
                response = PlainTextResponse(exc.reason, status_code=exc.status_code)
            finally:
                await ctx.close()
        if key is not None and response.status_code == 200 and scope.get(_ERRORS) is False:
            self.cache.put(key, bytes(response.body))
        response.headers["X-Request-ID"] = request_id
        return response

    def _tokens(self) -> queries.SqliteTokenLookup | None:
        if self._token_lookup is None and self.services.db.is_sqlite:
            path = make_url(self.services.db.url).database
            if path and path != ":memory:":
                self._token_lookup = queries.SqliteTokenLookup(path)
        return self._token_lookup

    def _cached(self, token: str, payload: dict[str, Any]) -> bytes | None:
        """A cache hit found with a synchronous token read (SQLite), or ``None``.

        Only hits are answered here. A miss executes in the request's read session, whose
        snapshot gives the version the entry is stored under.
        """
        lookup = self._tokens()
        if lookup is None:
            return None
        info = lookup.lookup(token)
        if not isinstance(info, queries.TokenInfo):
            return None
        op = payload.get("operationName")
        key = self.cache.key(
            info.account_id,
            info.queue_version,
            info.role,
            payload["query"],
            payload.get("variables"),
            op if isinstance(op, str) else None,
        )
        return None if key is None else self.cache.get(key)

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        # Only answers without any error are cached.
        request.scope[_ERRORS] = bool(result.errors)
        return await super().process_result(request, result)

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
            raise ConnectionRejectionError({"message": "a valid admin API token is required"})
        stack: contextlib.AsyncExitStack = context.request.scope[_STACK]
        session = await stack.enter_async_context(self.services.db.read())
        found = await queries.authenticate(session, token)
        if found is None:
            raise ConnectionRejectionError({"message": "a valid admin API token is required"})
        context.bind(session, *found)
        # End the authentication's read transaction: each event opens its own snapshot.
        await context.fresh_snapshot()
        return None
