"""``Subscription.pendingQueueChanged``: the account's queue changes, as they commit.

Events come from the broadcaster (:mod:`server.infra.broadcast`), which delivers only committed
changes, in commit order, to subscribers of the same account, each through its own bounded
queue.

What an event shows is loaded once per event for every subscriber of its account
(:class:`~server.graphql.feed.LiveViews`); the resolver builds each
:class:`PendingQueueEvent` from it, with no database work of its own.

A subscriber that falls more than its queue's size behind is dropped by the broker; its
websocket is then closed with :data:`CLOSE_FELL_BEHIND` (4410) so its client resyncs by
query and subscribes again. The same code, with its own reason, closes every subscriber
when events may have been lost upstream (a PostgreSQL listener that reconnected).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from typing import Any

import strawberry

from server.infra.broadcast import SubscriberOverflow

from .context import Ctx
from .feed import LiveViews
from .types.payloads import PendingQueueEvent
from .types.user_pages import named

log = logging.getLogger(__name__)

#: The websocket close code for a subscriber that fell too far behind (its queue overflowed).
#: Outside graphql-transport-ws's own codes (4400, 4401, 4403, 4406, 4408, 4409, 4429,
#: 4500); think HTTP 410 Gone: the stream is gone, resync by query, then subscribe again.
CLOSE_FELL_BEHIND = 4410

# How long a closed subscriber waits to be cancelled by the handler before it ends anyway
# (a client that never answers the close is cut off by uvicorn's own close timeout).
_CLOSE_GRACE_SECONDS = 30.0


async def close_fell_behind(websocket: Any, account_id: int, exc: SubscriberOverflow) -> None:
    """Close a subscriber's websocket with :data:`CLOSE_FELL_BEHIND`, then wait to be cancelled.

    The close reason says why the stream was cut (it fell behind, or the server lost the
    database's event stream); either way the client resyncs by query. Waiting, because
    ending the operation instead would make Strawberry send "complete" on a closed socket;
    the handler cancels the operation once the close reaches it.
    """
    log.warning("closing a live subscriber of account %s: %s", account_id, exc)
    with contextlib.suppress(Exception):
        # Already closed by the client: nothing to tell it.
        await websocket.close(code=CLOSE_FELL_BEHIND, reason=exc.reason)
    await asyncio.sleep(_CLOSE_GRACE_SECONDS)


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Every change to the caller's account's pending queue, as it commits."
    )  # type: ignore[untyped-decorator]  # Strawberry's decorator-with-arguments overload is untyped
    async def pending_queue_changed(self, info: Ctx) -> AsyncGenerator[PendingQueueEvent, None]:
        ctx = info.context
        # Users are read only for a document that shows them (``user`` or ``target``).
        asked = {field.name for field in named(info.selected_fields[0].selections)}
        users = not asked.isdisjoint(("user", "target"))
        live = ctx.live
        if live is None:
            # schema.subscribe() called directly (no app): a private view cache.
            live = ctx.live = LiveViews(ctx.services.db)
        if ctx.feed is not None:
            # A shared rendering: its subscribers hold the broker streams (server.graphql.live).
            while batch := await ctx.feed.next_batch():
                for view in await live.views(batch, users=users):
                    yield PendingQueueEvent.of(view)
            return
        stream = ctx.services.db.broadcaster.subscribe(ctx.account_id, live.queue_size)
        try:
            while batch := await stream.next_batch():
                for view in await live.views(batch, users=users):
                    yield PendingQueueEvent.of(view)
        except SubscriberOverflow as exc:
            await close_fell_behind(ctx.request, ctx.account_id, exc)
        finally:
            # Also when the client completes the operation or its socket goes away: the
            # broker never keeps a subscriber nobody reads.
            stream.close()
