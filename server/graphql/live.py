"""Fan-out of live subscriptions: each event is executed once per distinct subscription.

A ``pendingQueueChanged`` payload depends only on the event and the subscription document
(the account's data is the same for every admin of it), yet plain Strawberry executes the
document once per subscriber: at 500 subscribers that is 500 GraphQL executions per event,
far more than the event's whole latency budget. Here subscribers of one account with the
same document, variables and operation name share one :class:`SharedRendering`: a single
Strawberry subscription (validation, extensions, execution, error masking as usual) that
renders each event once, serialised once, and every subscriber sends that text.

Each subscriber still reads its own bounded broker stream (:mod:`server.infra.broadcast`), so
ordering, isolation, overflow and ``broker.subscriber_count`` are per subscriber exactly as
without sharing: it pushes the events it reads to the rendering and sends the results in
its own order. Anything but a well-formed subscription (queries and mutations over the
socket, syntax errors) takes Strawberry's own path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Sequence
from typing import Any

from cachetools import FIFOCache
from graphql import GraphQLError, OperationDefinitionNode, OperationType, parse
from starlette.websockets import WebSocketDisconnect
from strawberry.schema import BaseSchema
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
    _OperationStreamClosed,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    SubscribeMessage,
)
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError

from server.domain import auth
from server.domain.events import QueueEvent
from server.infra.broadcast import SubscriberOverflow
from server.infra.db import is_unavailable
from server.infra.rate_limits import Surface

from .context import Context
from .errors import SERVICE_UNAVAILABLE, UNAVAILABLE_MESSAGE, has_code, rate_limited
from .extensions import MAX_TOKENS, SizedCache, text_bytes
from .feed import EventFeed, LiveViews
from .sockets import CLOSE_TOO_MANY, TooManySockets
from .subscriptions import close_fell_behind

log = logging.getLogger(__name__)

# Rendered payloads kept per shared rendering for subscribers further behind the first.
_RENDERED = 2048
# A document's size, comments included (as over HTTP: server.graphql.http).
MAX_DOCUMENT_BYTES = 64 * 1024

# Parsed documents remembered for the "is it a subscription?" check, by total text size.
_KINDS_BYTES = 4 * 1024 * 1024

#: The websocket close code when the database is unavailable: "try again later" (RFC 6455).
CLOSE_TRY_AGAIN_LATER = 1013


class RenderingEnded(Exception):
    """The shared rendering stopped (an execution error ended its stream)."""


class DatabaseUnavailable(RenderingEnded):
    """The rendering could not read what an event needs: the database is unavailable."""


Key = tuple[int, str, str, str | None]


class SharedRendering:
    """One Strawberry subscription whose results every member subscriber sends."""

    def __init__(self, hub: LiveHub, key: Key) -> None:
        self.hub = hub
        self.key = key
        self.members = 0
        self.feed = EventFeed()
        # ``None`` once the subscription runs; the errors if it never could (validation).
        self.ready: asyncio.Future[list[GraphQLError] | None] = asyncio.get_running_loop().create_future()
        # Payloads kept for subscribers further behind the first; the oldest dropped first.
        self._rendered: FIFOCache[QueueEvent, asyncio.Future[str]] = FIFOCache(_RENDERED)
        # Futures for the events pushed, in push order: the stream answers in that order.
        self._waiting: deque[asyncio.Future[str]] = deque()
        self._ended = False
        self.task: asyncio.Task[None] | None = None

    def render(self, events: Sequence[QueueEvent]) -> list[asyncio.Future[str]]:
        """The payload text of each event (``{"data": …}``), rendering those not yet asked for."""
        if self._ended:
            raise RenderingEnded("the shared rendering ended")
        loop = asyncio.get_running_loop()
        out: list[asyncio.Future[str]] = []
        todo: list[QueueEvent] = []
        for event in events:
            future = self._rendered.get(event)
            if future is None:
                future = loop.create_future()
                future.add_done_callback(_retrieve)
                self._rendered[event] = future
                self._waiting.append(future)
                todo.append(event)
            out.append(future)
        self.feed.push(todo)
        return out

    async def run(
        self, schema: BaseSchema, member: Context, query: str, variables: Any, operation_name: str | None
    ) -> None:
        # The rendering's own context: same account, never the member's (the member may
        # leave first). Its fields come preloaded from LiveViews; what else an event's
        # document reads (e.g. suggestions) opens a session that is closed once that
        # event is rendered: no connection or snapshot is held between events.
        ctx = Context(member.services, request_id=f"live-{member.request_id}")
        ctx.bind(member.admin, member.account)
        ctx.live = self.hub.views
        ctx.feed = self.feed
        try:
            stream = await schema.subscribe(
                query, variable_values=variables, context_value=ctx, operation_name=operation_name
            )
            async with contextlib.aclosing(stream):
                async for result in stream:
                    if not self.feed.started.done() or isinstance(result, PreExecutionError):
                        # Before the resolver ran: the document was refused.
                        if not self.ready.done():
                            self.ready.set_result(list(result.errors or [GraphQLError("refused")]))
                        return
                    await ctx.release()
                    self._answer(result)
        finally:
            await ctx.close()
            self._end()

    def mark_ready(self) -> None:
        if not self.ready.done():
            self.ready.set_result(None)

    def _answer(self, result: ExecutionResult) -> None:
        if has_code(result.errors, SERVICE_UNAVAILABLE):
            # Nothing to send: every member closes its socket with 1013 (retry later).
            self._ended = True
            while self._waiting:
                future = self._waiting.popleft()
                if not future.done():
                    future.set_exception(DatabaseUnavailable(UNAVAILABLE_MESSAGE))
            return
        payload: dict[str, Any] = {"data": result.data}
        if result.errors:
            payload["errors"] = [e.formatted for e in result.errors]
        if result.extensions:
            payload["extensions"] = result.extensions
        text = json.dumps(payload, separators=(",", ":"))
        if not self._waiting:  # pragma: no cover - the resolver yields once per event pushed
            log.error("a live rendering produced a result nobody asked for")
            return
        future = self._waiting.popleft()
        if not future.done():
            future.set_result(text)

    def _end(self) -> None:
        self._ended = True
        self.hub.forget(self)
        if not self.ready.done():
            self.ready.set_result([GraphQLError("the subscription could not start")])
        while self._waiting:
            future = self._waiting.popleft()
            if not future.done():
                future.set_exception(RenderingEnded("the shared rendering ended"))


class LiveHub:
    """The shared renderings of one app, by account and document."""

    def __init__(self, views: LiveViews) -> None:
        self.views = views
        self._renderings: dict[Key, SharedRendering] = {}
        # Bounded by the bytes of the documents it keys.
        self._kinds: SizedCache[tuple[str, str | None], bool] = SizedCache(_KINDS_BYTES)

    def rendering_count(self) -> int:
        return len(self._renderings)

    def is_subscription(self, query: str, operation_name: str | None) -> bool:
        """Whether ``query`` parses to a subscription operation (else Strawberry's path)."""
        key = (query, operation_name)
        known = self._kinds.get(key)
        if known is None:
            known = _is_subscription(query, operation_name)
            self._kinds.put(key, known, text_bytes(query) + text_bytes(operation_name))
        return known

    def join(
        self, schema: BaseSchema, member: Context, operation: Operation[Context, None]
    ) -> SharedRendering:
        key: Key = (
            member.account_id,
            operation.query,
            json.dumps(operation.variables, sort_keys=True),
            operation.operation_name,
        )
        rendering = self._renderings.get(key)
        if rendering is None:
            rendering = SharedRendering(self, key)
            self._renderings[key] = rendering
            rendering.task = asyncio.create_task(
                rendering.run(schema, member, operation.query, operation.variables, operation.operation_name),
                name=f"live-rendering-{member.account_id}",
            )
            rendering.task.add_done_callback(_log_failure)
            rendering.feed.started.add_done_callback(lambda _: rendering.mark_ready())
        rendering.members += 1
        return rendering

    def leave(self, rendering: SharedRendering) -> None:
        rendering.members -= 1
        if rendering.members == 0:
            # Gone from the registry now, so a newcomer starts a fresh rendering rather
            # than joining one that is shutting down.
            self.forget(rendering)
            rendering.feed.close()

    def forget(self, rendering: SharedRendering) -> None:
        if self._renderings.get(rendering.key) is rendering:
            del self._renderings[rendering.key]


def _is_subscription(query: str, operation_name: str | None) -> bool:
    try:
        # The token limit applies here as it does in the schema's extensions.
        document = parse(query, max_tokens=MAX_TOKENS)
    except GraphQLError:
        return False
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name is not None and o.name.value == operation_name]
    return len(operations) == 1 and operations[0].operation is OperationType.SUBSCRIPTION


def _retrieve(future: asyncio.Future[Any]) -> None:
    # A rendering may end after every subscriber waiting for it left.
    if not future.cancelled():
        future.exception()


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("a shared live rendering failed", exc_info=exc)


class LiveTransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """Strawberry's graphql-transport-ws handler, with our session discipline.

    * Subscriptions are rendered once per event for all subscribers of the same document
      (:class:`SharedRendering`).
    * Every other operation gets a context of its own: the token is checked again and one
      short read serves that operation only, ended when it completes. The socket itself
      never holds a database connection or a snapshot between messages.
    * A database that cannot be reached closes the socket with :data:`CLOSE_TRY_AGAIN_LATER`.
    * Every operation counts against its admin's rate limit; over it, that operation gets an
      ``error`` message (``RATE_LIMITED``) and the socket stays open. Sockets are counted per
      token (``view.sockets``: the cap, and closing those of a revoked token).
    """

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        if message.get("payload") is None:
            # No payload at all is a missing token (4403), not a malformed message.
            message = {**message, "payload": {}}
        try:
            await super().handle_connection_init(message)
        except Exception as exc:
            if isinstance(exc, TooManySockets):
                with contextlib.suppress(Exception):
                    await self.websocket.close(code=CLOSE_TOO_MANY, reason=str(exc))
                return
            if not is_unavailable(exc):
                raise
            log.warning("websocket connection refused: the database is unavailable (%s)", exc)
            await self._close_unavailable()

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        payload = message.get("payload")
        if (
            not isinstance(payload, dict)
            or not isinstance(payload.get("query"), str)
            or not isinstance(payload.get("variables"), dict | None)
            or not isinstance(payload.get("operationName"), str | None)
        ):
            await self.websocket.close(code=4400, reason="Invalid subscribe payload")
            return
        query = payload["query"]
        too_large = (
            isinstance(query, str) and len(query.encode("utf-8", "surrogatepass")) > MAX_DOCUMENT_BYTES
        )
        if too_large and self.connection_acknowledged and message["id"] not in self.operations:
            error = GraphQLError(f"The GraphQL document is over {MAX_DOCUMENT_BYTES} bytes.")
            await self.send_message({"id": message["id"], "type": "error", "payload": [error.formatted]})
            return
        ctx = self.context
        if self.connection_acknowledged and ctx.bound and message["id"] not in self.operations:
            wait = await ctx.services.limits.hit(Surface.GRAPHQL, str(ctx.admin.id))
            if wait is not None:
                error_payload: Any = [rate_limited(wait)]
                await self.send_message({"id": message["id"], "type": "error", "payload": error_payload})
                return
        await super().handle_subscribe(message)

    async def shutdown(self) -> None:
        try:
            await super().shutdown()
        finally:
            sockets = getattr(self.view, "sockets", None)
            if sockets is not None:
                sockets.close(self.context)

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        hub: LiveHub | None = getattr(self.view, "live_hub", None)
        try:
            if hub is not None and hub.is_subscription(operation.query, operation.operation_name):
                await self._run_shared(hub, operation)
            else:
                await self._run_single(operation)
        except Exception as error:  # as Strawberry's run_operation: log, then complete
            await self.handle_task_exception(error)
            with contextlib.suppress(Exception):
                await operation.send_operation_message({"id": operation.id, "type": "complete"})
            self.operations.pop(operation.id, None)
            raise

    async def _run_single(self, operation: Operation[Context, None]) -> None:
        """A query or mutation (or a document that is no subscription) over the socket."""
        conn = self.context
        ctx = Context(conn.services, request=conn.request)
        ctx.live = conn.live
        try:
            async with asyncio.timeout(conn.services.settings.request_timeout_seconds):
                found = await ctx.run(auth.authenticate, conn.token or "")
                if found is None:
                    # Revoked or rotated since the socket authenticated.
                    await self.websocket.close(code=4403, reason="Forbidden")
                    return
                ctx.bind(*found)
                source = await self.schema.stream(
                    operation.query,
                    variable_values=operation.variables,
                    context_value=ctx,
                    operation_name=operation.operation_name,
                )
                async with contextlib.aclosing(source):
                    first = True
                    async for result in source:
                        if first and isinstance(result, PreExecutionError):
                            await self._handle_pre_execution_error(operation, result)
                            return
                        first = False
                        if not isinstance(result, ExecutionResult):
                            await self._reject_incremental_delivery(operation)
                            return
                        if has_code(result.errors, SERVICE_UNAVAILABLE):
                            await self._close_unavailable()
                            return
                        await operation.send_next(result)
                if ctx.operation_type is not None:
                    ctx.services.telemetry.graphql_operation(ctx.operation_type)
        except _OperationStreamClosed:
            return
        except Exception as exc:
            if not is_unavailable(exc):  # incl. the deadline (TimeoutError)
                raise
            log.warning("websocket operation failed: the database is unavailable (%s)", exc)
            await self._close_unavailable()
            return
        finally:
            await ctx.close()
        await operation.send_operation_message({"id": operation.id, "type": "complete"})

    async def _close_unavailable(self) -> None:
        with contextlib.suppress(Exception):
            await self.websocket.close(code=CLOSE_TRY_AGAIN_LATER, reason=UNAVAILABLE_MESSAGE)

    async def _run_shared(self, hub: LiveHub, operation: Operation[Context, None]) -> None:
        ctx = self.context
        rendering = hub.join(self.schema, ctx, operation)
        ctx.services.telemetry.graphql_operation("subscription")
        try:
            errors = await asyncio.shield(rendering.ready)
            if errors is not None:
                if has_code(errors, SERVICE_UNAVAILABLE):
                    await self._close_unavailable()
                    return
                await operation.send_initial_errors(errors)
                return
            stream = ctx.services.db.broadcaster.subscribe(ctx.account_id, hub.views.queue_size)
            prefix = '{"id":' + json.dumps(operation.id) + ',"type":"next","payload":'
            try:
                while batch := await stream.next_batch():
                    for future in rendering.render(batch):
                        # Usually rendered already (another subscriber asked first): no await.
                        # Shielded otherwise: cancelling this subscriber must not cancel it.
                        payload = future.result() if future.done() else await asyncio.shield(future)
                        if not await self._send_text(prefix + payload + "}"):
                            return
            except SubscriberOverflow as exc:
                await close_fell_behind(ctx.request, ctx.account_id, exc)
                return
            except DatabaseUnavailable:
                await self._close_unavailable()
                return
            except RenderingEnded:
                pass  # the execution error was sent as the last "next"; complete below
            finally:
                stream.close()
        finally:
            hub.leave(rendering)
        await operation.send_operation_message({"id": operation.id, "type": "complete"})

    async def _send_text(self, text: str) -> bool:
        """Send one pre-serialised message; ``False`` once the socket is gone."""
        try:
            await self.context.request.send_text(text)
        except (WebSocketDisconnect, RuntimeError, OSError):
            return False
        return True
