"""The live feed: what each queue event shows, loaded once for every subscriber.

An event's payload is the same for every subscriber of its account, so what it shows is
loaded once per event, not once per subscriber (:class:`LiveViews`): one read snapshot loads
the users, agents, retained activity and actors of every event waiting, and every rendering
of a subscription gets the same :class:`LiveEvent`, from which it builds its
``PendingQueueEvent`` (:mod:`server.graphql.subscriptions`), whose fields then need no
database. With 500 subscribers, an event costs five queries, not 2,500. Users (with their
agents and retained activity) are read only for documents that show ``user`` or ``target``:
a document of ``action userId`` costs the account's row alone. ``account`` is the
usage snapshot the event carries (taken in the writing transaction); ``user`` is read after
the commit, so it shows the user's state after the change, or a later one if the user
changed again in the meantime (the later change's own event follows).

:class:`EventFeed` is what a shared rendering of a subscription (:mod:`server.graphql.live`)
reads instead of the broker's stream. Neither knows GraphQL: the request context holds
them, and the GraphQL types are built from what they load.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cachetools import FIFOCache

from server.domain.events import QueueEvent
from server.domain.models import Account, Admin, QueueAction
from server.domain.reads import loads
from server.domain.reads.loads import PendingInfo
from server.domain.reads.rows import AgentRow, UserRow
from server.infra.broadcast import DEFAULT_SUBSCRIBER_QUEUE
from server.infra.db import Database

# After these the user no longer exists: the event carries only its id.
_GONE = frozenset({QueueAction.ASSIGNED, QueueAction.MERGED, QueueAction.REMOVED})

# Events whose payload stays cached for subscribers still working through their queue;
# a subscriber further behind than this re-reads its event (correct, just slower).
_VIEW_CACHE = 4 * DEFAULT_SUBSCRIBER_QUEUE


@dataclass(frozen=True, slots=True)
class LiveUser:
    """A user as an event shows it, with its agents and pending info: nothing left to load."""

    row: UserRow
    agents: list[AgentRow]
    pending: PendingInfo | None


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """What one queue event shows, loaded after its commit."""

    event: QueueEvent
    account: Account
    # None when the user is gone (removed, assigned or merged away).
    user: LiveUser | None
    actor: Admin | None
    # ASSIGNED or MERGED: the user the pending user became part of.
    target: LiveUser | None


class LiveViews:
    """What each event shows, loaded once for every subscriber in this process.

    One per app (never module-level): it holds its database and an LRU of events already
    loaded. Loads run in their own task, so a subscriber that goes away mid-load never
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
        # The most recent events' views, with their users or without: the oldest is dropped first.
        self._views: FIFOCache[tuple[QueueEvent, bool], asyncio.Future[LiveEvent]] = FIFOCache(cache_size)
        self._loads: set[asyncio.Task[None]] = set()

    async def views(self, events: Sequence[QueueEvent], *, users: bool = True) -> list[LiveEvent]:
        """What each event shows. ``users=False``: without its user and target (``None``),
        for a document that asks for neither: no user, agent or activity is read."""
        missing = [e for e in dict.fromkeys(events) if (e, users) not in self._views]
        if missing:
            loop = asyncio.get_running_loop()
            futures = {e: loop.create_future() for e in missing}
            for event, future in futures.items():
                future.add_done_callback(_retrieve)
                self._views[event, users] = future
            task = loop.create_task(self._load(futures, users))
            self._loads.add(task)
            task.add_done_callback(self._loads.discard)
        wanted = [self._views[e, users] for e in events]
        # Shielded: cancelling this subscriber must not cancel a future others await.
        return [f.result() if f.done() else await asyncio.shield(f) for f in wanted]

    async def _load(self, futures: dict[QueueEvent, asyncio.Future[LiveEvent]], users: bool) -> None:
        try:
            built = await self._build(list(futures), users)
        except BaseException as exc:
            for event, future in futures.items():
                # Forget the failure so a later subscriber tries again.
                if self._views.get((event, users)) is future:
                    del self._views[event, users]
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for event, future in futures.items():
            if not future.done():
                future.set_result(built[event])

    async def _build(self, events: list[QueueEvent], users_too: bool) -> dict[QueueEvent, LiveEvent]:
        by_account: dict[int, list[QueueEvent]] = defaultdict(list)
        for event in events:
            by_account[event.account_id].append(event)
        built: dict[QueueEvent, LiveEvent] = {}
        async with self.db.read() as session:
            for account_id, evs in by_account.items():
                account = await loads.account_by_id(session, account_id)
                if account is None:
                    raise LookupError(f"account {account_id} is gone")
                user_ids = sorted(
                    {e.user_id for e in evs if e.action not in _GONE}
                    | {e.target_user_id for e in evs if e.target_user_id is not None}
                    if users_too
                    else ()
                )
                actor_ids = sorted({e.actor_id for e in evs if e.actor_id is not None})
                users = await loads.users_by_id(session, account_id, user_ids) if user_ids else {}
                agents = await loads.agents_by_user(session, account_id, list(users)) if users else {}
                retained = await loads.retained_by_user(session, list(users)) if users else {}
                admins = await loads.admins_by_id(session, account_id, actor_ids) if actor_ids else {}
                live_users: dict[int, LiveUser] = {}
                for uid, user in users.items():
                    info = loads.pending_info(
                        user,
                        retained.get(uid, loads.Retained()),
                        account.retention_days,
                        account.queue_target_hours,
                    )
                    live_users[uid] = LiveUser(user, agents.get(uid, []), info)
                for e in evs:
                    built[e] = LiveEvent(
                        event=e,
                        account=account,
                        user=None if e.action in _GONE else live_users.get(e.user_id),
                        actor=None if e.actor_id is None else admins.get(e.actor_id),
                        target=None if e.target_user_id is None else live_users.get(e.target_user_id),
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
