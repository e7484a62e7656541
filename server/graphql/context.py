"""The per-request context: who asks, their account, one read session and the DataLoaders.

Built for every request and never shared (STYLE pattern 3). The read session's transaction
begins with the authentication query, so the account row (and its ``queue_version``) and
everything the resolvers read come from one snapshot. AsyncSession allows one statement at
a time, while GraphQL resolves sibling fields (and DataLoaders dispatch their batches)
concurrently: every use of the session goes through :meth:`Context.run`, which serialises.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from server import queries, suggestions
from server.accounts import actor_for
from server.errors import PermissionDenied
from server.licensing import Actor
from server.models import Account, Admin
from server.queries import AgentRow, Retained, UserRow
from server.services import Services

from .errors import Forbidden

if TYPE_CHECKING:
    from .subscriptions import EventFeed, LiveViews

P = ParamSpec("P")
R = TypeVar("R")


def new_request_id() -> str:
    return uuid.uuid4().hex[:16]


class Loaders:
    """Batch loads for the fields a list page asks of every row (no N+1)."""

    def __init__(self, ctx: Context) -> None:
        account_id = ctx.account_id

        async def users(ids: list[int]) -> list[UserRow | None]:
            found = await ctx.run(queries.users_by_id, account_id, ids)
            return [found.get(i) for i in ids]

        async def agents(user_ids: list[int]) -> list[list[AgentRow]]:
            found = await ctx.run(queries.agents_by_user, account_id, user_ids)
            return [found.get(i, []) for i in user_ids]

        async def retained(user_ids: list[int]) -> list[Retained]:
            found = await ctx.run(queries.retained_by_user, user_ids)
            return [found.get(i, Retained()) for i in user_ids]

        async def admins(ids: list[int]) -> list[Admin | None]:
            found = await ctx.run(queries.admins_by_id, account_id, ids)
            return [found.get(i) for i in ids]

        async def suggested(user_ids: list[int]) -> list[list[suggestions.Found]]:
            found = await ctx.run(suggestions.suggestions_by_user, account_id, user_ids)
            return [found.get(i, []) for i in user_ids]

        self.user = DataLoader[int, UserRow | None](load_fn=users)
        self.agents = DataLoader[int, list[AgentRow]](load_fn=agents)
        self.retained = DataLoader[int, Retained](load_fn=retained)
        self.admin = DataLoader[int, Admin | None](load_fn=admins)
        self.suggestions = DataLoader[int, list[suggestions.Found]](load_fn=suggested)


class Context:
    """What every resolver gets as ``info.context``.

    HTTP requests are authenticated before the context exists (:meth:`create`); a websocket
    gets an unbound context first and is bound once its ``connection_init`` carried a valid
    token (``server.graphql.http``).
    """

    session: AsyncSession
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
        # The app's shared event payloads, for a websocket's subscriptions.
        self.live: LiveViews | None = None
        # Set only for a shared rendering of a subscription (server.graphql.live).
        self.feed: EventFeed | None = None
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
        ctx.bind(session, admin, account)
        return ctx

    def bind(self, session: AsyncSession, admin: Admin, account: Account) -> None:
        self.session = session
        # Detached, so a later rollback of the read session cannot expire them.
        if admin in session:
            session.expunge(admin)
        if account in session:
            session.expunge(account)
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
        """Call a domain query with the request's session, one at a time."""
        async with self._lock:
            if self._closed:
                # A resolver still running after the response was decided (GraphQL stops
                # waiting for siblings once an error nulls the parent): never touch the
                # session its owner is closing.
                raise RuntimeError("the request is over")
            return await fn(self.session, *args, **kwargs)

    async def close(self) -> None:
        """Wait for the statement in flight, if any, and refuse any later one."""
        async with self._lock:
            self._closed = True

    def require_admin(self) -> None:
        """Refuse a VIEWER before any work is done (a top-level FORBIDDEN error)."""
        try:
            self.actor.require_admin()
        except PermissionDenied as exc:
            raise Forbidden(str(exc)) from None

    async def fresh_snapshot(self) -> None:
        """End the read transaction, so the next read sees every commit so far.

        After a mutation the payload must show its effect; a subscription ends its snapshot
        between events. Rows are detached first so the rollback cannot expire objects
        resolvers still hold; loaders are rebuilt so no cached older row leaks into an answer.
        """
        async with self._lock:
            self.session.expunge_all()
            await self.session.rollback()
        self.loaders = Loaders(self)
