"""``Subscription.pendingQueueChanged``: the account's queue changes, as they commit.

Events come from the broadcaster (:mod:`server.infra.broadcast`), which delivers only committed
changes, in commit order, to subscribers of the same account, each through its own bounded
queue.

An event's payload is the same for every subscriber of its account, so it is resolved once
per event, not once per subscriber (:class:`LiveViews`): one read snapshot loads the users,
agents, retained activity and actors of every event waiting, and all subscribers get the
same fully built :class:`PendingQueueEvent`, whose fields then need no database. With 500
subscribers, an event costs five queries, not 2,500. ``account`` is the usage snapshot the
event carries (taken in the writing transaction); ``user`` is read after the commit, so it
shows the user's state after the change, or a later one if the user changed again in the
meantime (the later change's own event follows).

A subscriber that falls more than its queue's size behind is dropped by the broker; its
websocket is then closed with :data:`CLOSE_FELL_BEHIND` (4410) so its client resyncs by
query and subscribes again. The same code, with its own reason, closes every subscriber
when events may have been lost upstream (a PostgreSQL listener that reconnected).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict, defaultdict
from collections.abc import AsyncGenerator, Sequence
from typing import Any

import strawberry

from server.domain.events import QueueEvent
from server.domain.models import QueueAction
from server.domain.reads import loads
from server.infra.broadcast import DEFAULT_SUBSCRIBER_QUEUE, SubscriberOverflow
from server.infra.db import Database

from .types import AccountType, AdminType, Ctx, PendingQueueEvent, UserType, gid

log = logging.getLogger(__name__)

#: The websocket close code for a subscriber that fell too far behind (its queue overflowed).
#: Outside graphql-transport-ws's own codes (4400, 4401, 4403, 4406, 4408, 4409, 4429,
#: 4500); think HTTP 410 Gone: the stream is gone, resync by query, then subscribe again.
CLOSE_FELL_BEHIND = 4410

# How long a closed subscriber waits to be cancelled by the handler before it ends anyway
# (a client that never answers the close is cut off by uvicorn's own close timeout).
_CLOSE_GRACE_SECONDS = 30.0

# After these the user no longer exists: the event carries only its id.
_GONE = frozenset({QueueAction.ASSIGNED, QueueAction.MERGED, QueueAction.REMOVED})

# Events whose payload stays cached for subscribers still working through their queue;
# a subscriber further behind than this re-reads its event (correct, just slower).
_VIEW_CACHE = 4 * DEFAULT_SUBSCRIBER_QUEUE


class LiveViews:
    """The payload of each event, resolved once for every subscriber in this process.

    One per app (never module-level): it holds its database and an LRU of events already
    resolved. Loads run in their own task, so a subscriber that goes away mid-load never
    cancels the load the others are waiting for.
    """

    def __init__(
        self,
        db: Database,
        *,
        queue_size: int = DEFAULT_SUBSCRIBER_QUEUE,
        cache_size: int = _VIEW_CACHE,
    ) -> None:
        self.db = db
        #: Each subscriber's queue bound (tests lower it to provoke an overflow).
        self.queue_size = queue_size
        self._cache_size = cache_size
        self._views: OrderedDict[QueueEvent, asyncio.Future[PendingQueueEvent]] = OrderedDict()
        self._loads: set[asyncio.Task[None]] = set()

    async def views(self, events: Sequence[QueueEvent]) -> list[PendingQueueEvent]:
        missing = [e for e in dict.fromkeys(events) if e not in self._views]
        if missing:
            loop = asyncio.get_running_loop()
            futures = {e: loop.create_future() for e in missing}
            for event, future in futures.items():
                future.add_done_callback(_retrieve)
                self._views[event] = future
            while len(self._views) > self._cache_size:
                self._views.popitem(last=False)
            task = loop.create_task(self._load(futures))
            self._loads.add(task)
            task.add_done_callback(self._loads.discard)
        wanted = [self._views[e] for e in events]
        # Shielded: cancelling this subscriber must not cancel a future others await.
        return [f.result() if f.done() else await asyncio.shield(f) for f in wanted]

    async def _load(self, futures: dict[QueueEvent, asyncio.Future[PendingQueueEvent]]) -> None:
        try:
            built = await self._build(list(futures))
        except BaseException as exc:
            for event, future in futures.items():
                # Forget the failure so a later subscriber tries again.
                if self._views.get(event) is future:
                    del self._views[event]
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for event, future in futures.items():
            if not future.done():
                future.set_result(built[event])

    async def _build(self, events: list[QueueEvent]) -> dict[QueueEvent, PendingQueueEvent]:
        by_account: dict[int, list[QueueEvent]] = defaultdict(list)
        for event in events:
            by_account[event.account_id].append(event)
        built: dict[QueueEvent, PendingQueueEvent] = {}
        async with self.db.read() as session:
            for account_id, evs in by_account.items():
                account = await loads.account_by_id(session, account_id)
                if account is None:
                    raise LookupError(f"account {account_id} is gone")
                user_ids = sorted(
                    {e.user_id for e in evs if e.action not in _GONE}
                    | {e.target_user_id for e in evs if e.target_user_id is not None}
                )
                actor_ids = sorted({e.actor_id for e in evs if e.actor_id is not None})
                users = await loads.users_by_id(session, account_id, user_ids) if user_ids else {}
                agents = await loads.agents_by_user(session, account_id, list(users)) if users else {}
                retained = await loads.retained_by_user(session, list(users)) if users else {}
                admins = await loads.admins_by_id(session, account_id, actor_ids) if actor_ids else {}
                user_views: dict[int, UserType] = {}
                for uid, user in users.items():
                    info = loads.pending_info(
                        user, retained.get(uid, loads.Retained()), account.retention_days
                    )
                    user_views[uid] = UserType.resolved_of(user, agents.get(uid, []), info)
                for e in evs:
                    actor = None if e.actor_id is None else admins.get(e.actor_id)
                    built[e] = PendingQueueEvent(
                        action=e.action,
                        user_id=gid(e.user_id),
                        user=None if e.action in _GONE else user_views.get(e.user_id),
                        account=AccountType.of(account, e.usage),
                        actor=None if actor is None else AdminType.of(actor),
                        at=e.at,
                        target=None if e.target_user_id is None else user_views.get(e.target_user_id),
                    )
        return built


class EventFeed:
    """Events pushed to one shared rendering of a subscription (:mod:`server.graphql.live`).

    Stands in for the broker's stream when the resolver runs for a shared rendering: the
    subscribers each read their own bounded broker stream and push what they need rendered
    here, in order; the resolver yields exactly one payload per event pushed.
    """

    def __init__(self) -> None:
        # Unbounded, but a subscriber pushes only a batch it is about to wait for, so it
        # never holds more than the subscribers' own bounded queues.
        self._queue: asyncio.Queue[QueueEvent | None] = asyncio.Queue()
        self.started: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def push(self, events: Sequence[QueueEvent]) -> None:
        for event in events:
            self._queue.put_nowait(event)

    def close(self) -> None:
        self._queue.put_nowait(None)

    async def next_batch(self, limit: int = 100) -> list[QueueEvent]:
        """What :meth:`server.infra.broadcast.Subscription.next_batch` does; ``[]`` once closed."""
        if not self.started.done():
            self.started.set_result(None)
        first = await self._queue.get()
        if first is None:
            return []
        batch = [first]
        while len(batch) < limit and not self._queue.empty():
            more = self._queue.get_nowait()
            if more is None:
                # Let the next call see the end too.
                self.close()
                break
            batch.append(more)
        return batch


def _retrieve(future: asyncio.Future[Any]) -> None:
    # A load may fail after every waiting subscriber left; its exception is then never
    # awaited, and asyncio would log "exception was never retrieved".
    if not future.cancelled():
        future.exception()


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
        live = ctx.live
        if live is None:
            # schema.subscribe() called directly (no app): a private view cache.
            live = ctx.live = LiveViews(ctx.services.db)
        if ctx.feed is not None:
            # A shared rendering: its subscribers hold the broker streams (server.graphql.live).
            while batch := await ctx.feed.next_batch():
                for view in await live.views(batch):
                    yield view
            return
        stream = ctx.services.db.broadcaster.subscribe(ctx.account_id, live.queue_size)
        try:
            while batch := await stream.next_batch():
                for view in await live.views(batch):
                    yield view
        except SubscriberOverflow as exc:
            await close_fell_behind(ctx.request, ctx.account_id, exc)
        finally:
            # Also when the client completes the operation or its socket goes away: the
            # broker never keeps a subscriber nobody loads.
            stream.close()
