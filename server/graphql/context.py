"""The per-request context: who asks, their account, one read session and the DataLoaders.

Built for every request and never shared (a per-request context, never shared). The read session's transaction
begins with the authentication query, so the account row (and its ``queue_version``) and
everything the resolvers read come from one snapshot. AsyncSession allows one statement at
a time, while GraphQL resolves sibling fields (and DataLoaders dispatch their batches)
concurrently: every use of the session goes through :meth:`Context.run`, which serialises.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import AbstractCache, DataLoader
from strawberry.exceptions import WrongNumberOfResultsReturned
from strawberry.types import Info

from server.domain.auth import actor_for
from server.domain.changes import Actor
from server.domain.errors import PermissionDenied
from server.domain.models import Account, Admin
from server.domain.reads import activity, loads
from server.domain.reads.activity import ActivitySummary
from server.domain.reads.loads import Retained
from server.domain.reads.rows import AgentRow, UserRow
from server.domain.suggestions.store import Found, suggestions_by_user
from server.domain.undo import check
from server.web.observe import new_request_id
from server.web.runtime import Services

from .completion import UNKNOWN, Unknown
from .errors import Forbidden
from .feed import EventFeed, LiveViews

P = ParamSpec("P")
R = TypeVar("R")
K = TypeVar("K")
V = TypeVar("V")


class Primed(AbstractCache[K, V]):
    """A loader's cache in which a primed value waits as a value: its future is made only if a
    load asks for it. A page primes its rows' ~100 keys (:func:`load_many_now`) that
    no other load of the request usually asks for; Strawberry's ``prime_many`` makes a
    resolved future for each (~0.5 us)."""

    __slots__ = ("futures", "values")

    def __init__(self) -> None:
        self.futures: dict[K, asyncio.Future[V]] = {}
        self.values: dict[K, V] = {}

    def holds(self, key: K) -> bool:
        return key in self.futures or key in self.values

    def prime(self, values: Mapping[K, V]) -> None:
        """As ``prime_many`` without ``force``: a key held already keeps its value."""
        for key, value in values.items():
            if not self.holds(key):
                self.values[key] = value

    def get(self, key: K) -> asyncio.Future[V] | None:
        future = self.futures.get(key)
        if future is None and key in self.values:
            future = asyncio.get_running_loop().create_future()
            future.set_result(self.values.pop(key))
            self.futures[key] = future
        return future

    def set(self, key: K, value: asyncio.Future[V]) -> None:
        self.values.pop(key, None)
        self.futures[key] = value

    def delete(self, key: K) -> None:
        if self.values.pop(key, _ABSENT) is _ABSENT:
            del self.futures[key]  # KeyError for a key never held, as Strawberry's cache
        else:
            self.futures.pop(key, None)

    def clear(self) -> None:
        self.futures.clear()
        self.values.clear()


_ABSENT = object()


def loader(load_fn: Callable[[list[K]], Awaitable[list[V]]]) -> DataLoader[K, V]:
    """A request's DataLoader of ``load_fn``, with a :class:`Primed` cache."""
    return DataLoader(load_fn=load_fn, cache_map=Primed())


async def load_many_now(loader: DataLoader[K, V], keys: list[K]) -> list[V]:
    """``loader.load_many(keys)`` for a page's keys, by one call of its batch function.

    When its cache holds none of the keys (a queued key is held), the answer is the batch
    function's, and the cache is primed with it (:class:`Primed`),
    without a future, a task and a callback per key (~150 us for 50 keys). Otherwise
    ``load_many``.
    """
    cache = loader.cache_map if loader.cache else None
    if not isinstance(cache, Primed) or any(cache.holds(key) for key in keys):
        return await loader.load_many(keys)
    values = list(await loader.load_fn(keys))
    if len(values) != len(keys):
        raise WrongNumberOfResultsReturned(expected=len(keys), received=len(values))
    found: list[V] = []
    for value in values:
        if isinstance(value, BaseException):  # load_many raises the first one
            raise value
        found.append(value)
    cache.prime(dict(zip(keys, found, strict=True)))
    return found


def primed(loader: DataLoader[K, V], key: K) -> V | Unknown:
    """``key``'s value when ``loader`` holds it loaded already (:func:`load_many_now` primed
    it, or an earlier load finished), else ``UNKNOWN``: a resolver answers what is
    loaded without an await, so a list of them completes without a task per row."""
    cache = loader.cache_map if loader.cache else None
    if isinstance(cache, Primed):
        held: Primed[K, V] = cache
        if key in held.values:
            return held.values[key]
        future = held.futures.get(key)
        if future is not None and future.done() and not future.cancelled() and future.exception() is None:
            return future.result()
    return UNKNOWN


def _per_key(
    ctx: Context,
    fetch: Callable[[AsyncSession, int, list[K]], Awaitable[Mapping[K, V]]],
    missing: Callable[[], V],
) -> DataLoader[K, V]:
    """A loader of ``fetch(session, account_id, keys)``'s answer for each key; ``missing()``
    for a key it has no answer for."""

    async def load(keys: list[K]) -> list[V]:
        found = await ctx.run(fetch, ctx.account_id, keys)
        return [found[k] if k in found else missing() for k in keys]

    return loader(load)


def _none() -> None:
    return None


class Loaders:
    """Batch loads for the fields a list page asks of every row (no N+1).

    Each loader is made when first asked for: a request uses two or three of them, and a
    live rendering makes a new set for every event."""

    def __init__(self, ctx: Context) -> None:
        # A proxy: the context holds its loaders, and a loader's batch function its context;
        # held strongly, that cycle (and the rows the loaders cache) would be left to the
        # cyclic garbage collector after every request.
        self._ctx: Context = weakref.proxy(ctx)

    @cached_property
    def user(self) -> DataLoader[int, UserRow | None]:
        return _per_key(self._ctx, loads.users_by_id, _none)

    @cached_property
    def agents(self) -> DataLoader[int, list[AgentRow]]:
        return _per_key(self._ctx, loads.agents_by_user, list)

    @cached_property
    def retained(self) -> DataLoader[int, Retained]:
        ctx = self._ctx

        async def retained(user_ids: list[int]) -> list[Retained]:
            found = await ctx.run(loads.retained_by_user, user_ids)
            return [found.get(i, Retained()) for i in user_ids]

        return loader(retained)

    @cached_property
    def admin(self) -> DataLoader[int, Admin | None]:
        return _per_key(self._ctx, loads.admins_by_id, _none)

    @cached_property
    def suggestions(self) -> DataLoader[int, list[Found]]:
        return _per_key(self._ctx, suggestions_by_user, list)

    @cached_property
    def activity(self) -> DataLoader[tuple[int, int], ActivitySummary]:
        """Keyed by (user id, days)."""
        ctx = self._ctx

        async def activities(keys: list[tuple[int, int]]) -> list[ActivitySummary]:
            # One clock reading for the batch; one pair of statements per distinct ``days``.
            now = ctx.services.clock()
            by_days: dict[int, list[int]] = defaultdict(list)
            for user_id, days in keys:
                by_days[days].append(user_id)
            found: dict[tuple[int, int], ActivitySummary] = {}
            for days, user_ids in by_days.items():
                summaries = await ctx.run(activity.activity_by_user, user_ids, days, now)
                found.update({(uid, days): summary for uid, summary in summaries.items()})
            return [found[k] for k in keys]

        return loader(activities)

    @cached_property
    def last_activity(self) -> DataLoader[int, datetime | None]:
        return _per_key(self._ctx, activity.last_activity_by_user, _none)

    @cached_property
    def undoable(self) -> DataLoader[int, datetime | None]:
        ctx = self._ctx

        async def undoable(entry_ids: list[int]) -> list[datetime | None]:
            window = timedelta(hours=ctx.services.settings.undo_hours)
            found = await ctx.run(
                check.undoable_until, ctx.account_id, entry_ids, ctx.services.clock(), window
            )
            return [found.get(i) for i in entry_ids]

        return loader(undoable)


class Context:
    """What every resolver gets as ``info.context``.

    An HTTP request is authenticated before its context exists, in the read session that
    then serves the whole request (:meth:`create`). Everything else (a websocket's
    operations, a shared live rendering) binds the admin and account only; its session is
    opened at the first read and closed by :meth:`release` when the operation or event is
    done, so a connection held open by a client never holds a database connection or an
    old snapshot between messages.
    """

    admin: Admin
    account: Account
    actor: Actor
    loaders: Loaders

    def __init__(self, services: Services, *, request_id: str | None = None, request: Any = None) -> None:
        self.services = services
        self.request_id = request_id or new_request_id()
        self.request = request
        self.bound = False
        # Set by Strawberry from a websocket's ``connection_init`` payload.
        self.connection_params: Any = None
        # A websocket's token, checked again for each of its operations.
        self.token: str | None = None
        # What the app's queue events show, loaded once (feed.LiveViews), for a websocket's subscriptions.
        self.live: LiveViews | None = None
        # Set only for a shared rendering of a subscription (server.graphql.live).
        self.feed: EventFeed | None = None
        # The executed operation's type and name, once validated (operation.OperationInfo).
        self.operation_type: str | None = None
        self.operation_name: str | None = None
        self._session: AsyncSession | None = None
        # Whether the context opened its session (and so closes it), or was given one.
        self._owns_session = False
        self._lock = asyncio.Lock()
        self._closed = False

    @classmethod
    def create(
        cls,
        services: Services,
        session: AsyncSession,
        admin: Admin,
        account: Account,
        *,
        request_id: str | None = None,
        request: Any = None,
    ) -> Context:
        ctx = cls(services, request_id=request_id, request=request)
        ctx.bind(admin, account, session)
        return ctx

    def bind(self, admin: Admin, account: Account, session: AsyncSession | None = None) -> None:
        """Who asks; ``session`` serves the reads if given (its owner closes it), else one
        is opened on demand."""
        # Detached, so a later rollback of a read session cannot expire them. Rows of the
        # session given need not be: fresh_snapshot detaches everything before it rolls that
        # session back, and closing it detaches everything without expiring.
        owner = session.sync_session if session is not None else None
        for row in (admin, account):
            row_session = sa_inspect(row).session
            if row_session is not None and row_session is not owner:
                row_session.expunge(row)
        if session is not None:
            self._session = session
            self._owns_session = False
        self.admin = admin
        self.account = account
        self.actor = actor_for(admin)
        self.loaders = Loaders(self)
        self.bound = True

    @property
    def account_id(self) -> int:
        return self.actor.account_id

    async def run(
        self,
        fn: Callable[Concatenate[AsyncSession, P], Awaitable[R]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        """Call a domain query with the context's read session, one at a time."""
        async with self._lock:
            if self._closed:
                # A resolver still running after the response was decided (GraphQL stops
                # waiting for siblings once an error nulls the parent): never touch the
                # session its owner is closing.
                raise RuntimeError("the request is over")
            if self._session is None:
                self._session = self.services.db.read_session()
                self._owns_session = True
            return await fn(self._session, *args, **kwargs)

    async def close(self) -> None:
        """Wait for the statement in flight, if any, refuse any later one, and give back
        the session this context opened."""
        async with self._lock:
            self._closed = True
            await self._end_session()

    async def release(self) -> None:
        """End the read: the next one opens a new session and sees every commit so far.

        Between a websocket's operations and a subscription's events. Loaders are rebuilt
        so no row cached from the older snapshot leaks into a later answer.
        """
        async with self._lock:
            await self._end_session()
        self.loaders = Loaders(self)

    def require_admin(self) -> None:
        """Refuse a VIEWER before any work is done (a top-level FORBIDDEN error)."""
        try:
            self.actor.require_admin()
        except PermissionDenied as exc:
            raise Forbidden(str(exc)) from None

    async def fresh_snapshot(self) -> None:
        """End the read transaction, so the next read sees every commit so far.

        After a mutation the payload must show its effect. Rows are detached first so the
        rollback cannot expire objects resolvers still hold; loaders are rebuilt so no
        cached older row leaks into an answer.
        """
        async with self._lock:
            if self._owns_session or self._session is None:
                await self._end_session()
            else:
                self._session.expunge_all()
                await self._session.rollback()
        self.loaders = Loaders(self)

    async def _end_session(self) -> None:
        session, self._session = self._session, None
        if session is not None and self._owns_session:
            await session.close()
        self._owns_session = False


Ctx = Info[Context, None]
"""What resolvers annotate ``info`` with."""
