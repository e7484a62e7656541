"""Users, their agents, pending info, activity and suggestions, and their lists (connections).

A list page loads what its document asks of its rows (agents, pending info, activity, last
activity) once for the page (:func:`server.graphql.types.user_pages.user_connection`), and a
live event's user comes with its agents and pending info loaded. What is loaded is answered
synchronously (``agents``, ``pending`` and ``Agent.user`` from the views, ``activity`` and
``lastActivityAt`` from the loaders' primed values), so graphql-core completes the page
without a task or an await per row. Anything else (a user met through ``user(id)``,
``Agent.user`` or a suggestion; suggestions always) goes through the request's DataLoaders
(a live event's rendering opens a read of its own for them).
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Iterable, Sequence
from datetime import datetime
from enum import Enum
from typing import Literal

import strawberry

from server.domain import models, reclaim
from server.domain.errors import DomainError
from server.domain.reads import activity, cursors, lists, loads, rows
from server.domain.reads.activity import DEFAULT_DAYS, ActivitySummary
from server.domain.suggestions.store import Found

from ..completion import completes_as
from ..context import Context, Ctx, primed
from ..errors import BadUserInput
from ..execution import UNKNOWN, Unknown, known_answer
from .activity import ActivitySummaryType
from .base import PageInfo, PendingReason, SuggestionKind, UserStatus, builder, gid


@strawberry.type(name="PendingInfo")
class PendingInfoType:
    reason: PendingReason  # type: ignore[valid-type]
    entered_at: datetime
    retained_event_count: int
    retained_active_seconds: int
    oldest_retained_at: datetime | None
    data_expires_at: datetime | None = strawberry.field(
        description="When the oldest retained activity falls out of the retention window."
    )
    due_at: datetime | None = strawberry.field(
        description="enteredAt plus the account's queueTargetHours; null without a target."
    )

    @strawberry.field(description="dueAt has passed.")  # type: ignore[untyped-decorator]  # Strawberry's decorator-with-arguments overload is untyped
    def overdue(self, info: Ctx) -> bool:
        return self.due_at is not None and self.due_at <= info.context.services.clock()


# Its values are the domain's records as they are: no Strawberry object per page row.
completes_as(PendingInfoType, loads.PendingInfo)


@strawberry.type(name="Agent", description="A login on a device, as reported by the monitoring agent.")
class AgentType:
    id: strawberry.ID
    device_name: str
    domain: str
    logon_name: str
    first_seen_at: datetime
    last_seen_at: datetime
    user_id: strawberry.Private[int]
    # Set when the owner is already resolved (its page's user, a live event's): no loader, no
    # session. Weak: the owner holds its agents, and a cycle would leave every page's objects
    # to the cyclic garbage collector (pauses of tens of ms, hundreds under a busy heap).
    owner: strawberry.Private[weakref.ref[UserType] | None] = None

    @classmethod
    def of(cls, agent: rows.AgentFields, owner: UserType | None = None) -> AgentType:
        return _new_agent(
            id=gid(agent.id),
            device_name=agent.device_name,
            domain=agent.domain,
            logon_name=agent.logon_name,
            first_seen_at=agent.first_seen_at,
            last_seen_at=agent.last_seen_at,
            user_id=agent.user_id,
            owner=None if owner is None else weakref.ref(owner),
        )

    def _known_user(self) -> UserType | Unknown:
        owner = None if self.owner is None else self.owner()
        return UNKNOWN if owner is None else owner

    @strawberry.field(graphql_type="UserType")  # type: ignore[untyped-decorator]  # Strawberry's decorator-with-arguments overload is untyped
    @known_answer(_known_user)
    def user(self, info: Ctx) -> UserType | Awaitable[UserType]:
        # Not ``async``: a known owner is answered without an await (see the module docstring).
        known = self._known_user()
        if known is not UNKNOWN:
            return known
        return self._load_user(info)

    async def _load_user(self, info: Ctx) -> UserType:
        user = await info.context.loaders.user.load(self.user_id)
        # An agent always has its user; both rows come from one snapshot of one account.
        assert user is not None
        return UserType.of(user)


class _Unloaded(Enum):
    UNLOADED = "unloaded"


UNLOADED = _Unloaded.UNLOADED
"""What a user's view was not given with it (``UserType.known_agents``, ``known_pending``):
its loader resolves it."""
Unloaded = Literal[_Unloaded.UNLOADED]


@strawberry.type(name="User", description="A tracked person: the unit that consumes a license.")
class UserType:
    id: strawberry.ID
    display_name: str
    status: UserStatus  # type: ignore[valid-type]
    first_seen_at: datetime
    last_seen_at: datetime
    licensed_at: datetime | None
    row: strawberry.Private[rows.UserFields]
    # Given with a page's users and a live event's (whose rows are loaded once for every
    # subscriber: server.graphql.feed): these fields then need no loader or session.
    known_agents: strawberry.Private[list[AgentType] | Unloaded] = UNLOADED
    known_pending: strawberry.Private[loads.PendingInfo | Unloaded | None] = UNLOADED

    @classmethod
    def of(cls, user: rows.UserFields, pending: loads.PendingInfo | Unloaded | None = UNLOADED) -> UserType:
        return _new_user(
            id=gid(user.id),
            display_name=user.display_name,
            status=user.status,
            first_seen_at=user.first_seen_at,
            last_seen_at=user.last_seen_at,
            licensed_at=user.licensed_at,
            row=user,
            known_pending=pending,
        )

    @classmethod
    def resolved_of(
        cls,
        user: rows.UserFields,
        agents: Sequence[rows.AgentFields] | Unloaded,
        pending: loads.PendingInfo | Unloaded | None,
    ) -> UserType:
        """A user with what is known of it; ``UNLOADED`` fields resolve through the loaders."""
        view = cls.of(user, pending)
        if agents is not UNLOADED:
            view.known_agents = [AgentType.of(a, owner=view) for a in agents]
        return view

    # ``agents`` and ``pending`` are not ``async``: what is known is answered without an await
    # (and, marked ``known_answer``, without a resolver call: server.graphql.execution).
    def _known_agents(self) -> list[AgentType] | Unknown:
        if self.known_agents is not UNLOADED:
            return self.known_agents
        return UNKNOWN

    @strawberry.field(graphql_type=list[AgentType])  # type: ignore[untyped-decorator]  # Strawberry's decorator-with-arguments overload is untyped
    @known_answer(_known_agents)
    def agents(self, info: Ctx) -> list[AgentType] | Awaitable[list[AgentType]]:
        known = self._known_agents()
        if known is not UNKNOWN:
            return known
        return self._load_agents(info)

    async def _load_agents(self, info: Ctx) -> list[AgentType]:
        assert self.row.id is not None
        return [AgentType.of(a) for a in await info.context.loaders.agents.load(self.row.id)]

    def _known_pending(self) -> loads.PendingInfo | Unknown | None:
        if self.known_pending is not UNLOADED:
            return self.known_pending
        if self.row.status is not models.UserStatus.PENDING:
            return None
        return UNKNOWN

    @strawberry.field(graphql_type=PendingInfoType | None, description="Null unless status is PENDING.")  # type: ignore[untyped-decorator]  # Strawberry's decorator-with-arguments overload is untyped
    @known_answer(_known_pending)
    def pending(self, info: Ctx) -> loads.PendingInfo | Awaitable[loads.PendingInfo | None] | None:
        known = self._known_pending()
        if known is not UNKNOWN:
            return known
        return self._load_pending(info)

    async def _load_pending(self, info: Ctx) -> loads.PendingInfo | None:
        assert self.row.id is not None
        retained = await info.context.loaders.retained.load(self.row.id)
        account = info.context.account
        return loads.pending_info(self.row, retained, account.retention_days, account.queue_target_hours)

    @strawberry.field(
        description=(
            "Likely matches among the account's other users and agents, pending or licensed, best"
            " first (score 0 to 1, at least 0.70): where to assign or merge a pending user, or the"
            " seat a licensed duplicate wastes. Of two duplicates, each shows the other."
        )
    )  # type: ignore[untyped-decorator]  # Strawberry's decorator-with-arguments overload is untyped
    async def suggestions(self, info: Ctx, first: int = 3) -> list[SuggestionType]:
        if not 1 <= first <= cursors.MAX_PAGE:
            raise BadUserInput(f"first must be from 1 to {cursors.MAX_PAGE}; got {first}", field="first")
        assert self.row.id is not None
        found = await info.context.loaders.suggestions.load(self.row.id)
        return [SuggestionType.of(f) for f in found[:first]]

    @strawberry.field(
        description=(
            "The user's activity over the last `days` UTC days (1 to 90), today included: a"
            " pending user's retained activity, or a licensed user's. The totals cover the"
            " `days` * 24 hours up to now (the rule retention applies); the hours of that window"
            " before the oldest day's midnight count in the oldest day's entry."
        ),
        graphql_type=ActivitySummaryType,
    )  # type: ignore[untyped-decorator]  # Strawberry's decorator-with-arguments overload is untyped
    def activity(self, info: Ctx, days: int = DEFAULT_DAYS) -> ActivitySummary | Awaitable[ActivitySummary]:
        # Not ``async``: a page's rows were loaded with it (user_connection), answered at once.
        try:
            activity.check_days(days)
        except DomainError as exc:
            raise BadUserInput(exc.message, field=exc.field) from None
        assert self.row.id is not None
        key = (self.row.id, days)
        loaded = primed(info.context.loaders.activity, key)
        if loaded is not UNKNOWN:
            return loaded
        return self._load_activity(info, key)

    async def _load_activity(self, info: Ctx, key: tuple[int, int]) -> ActivitySummary:
        return await info.context.loaders.activity.load(key)

    @strawberry.field(  # type: ignore[untyped-decorator]  # Strawberry's decorator-with-arguments overload is untyped
        graphql_type=datetime | None,
        description="When the user's latest stored activity ended; null when none is stored.",
    )
    def last_activity_at(self, info: Ctx) -> datetime | Awaitable[datetime | None] | None:
        assert self.row.id is not None
        loaded = primed(info.context.loaders.last_activity, self.row.id)
        if loaded is not UNKNOWN:
            return loaded
        return self._load_last_activity(info, self.row.id)

    async def _load_last_activity(self, info: Ctx, user_id: int) -> datetime | None:
        return await info.context.loaders.last_activity.load(user_id)


# What a page makes per row, made without calling the classes (types.base.builder).
_new_agent = builder(AgentType)
_new_user = builder(UserType)


@strawberry.type(name="Suggestion")
class SuggestionType:
    kind: SuggestionKind  # type: ignore[valid-type]
    user: UserType | None = strawberry.field(
        description="ASSIGN: the existing user the pending user probably is."
    )
    agent: AgentType | None = strawberry.field(
        description="MERGE: the existing agent the pending user's agent probably is."
    )
    score: float = strawberry.field(description="0 to 1: how sure the server is.")
    reasons: list[str] = strawberry.field(
        description="Why, in words an admin reads: e.g. 'same login jdoe on ACME', 'display name matches'."
    )

    @classmethod
    def of(cls, found: Found) -> SuggestionType:
        return cls(
            kind=found.kind,
            user=None if found.user is None else UserType.of(found.user),
            agent=None if found.agent is None else AgentType.of(found.agent),
            score=found.score,
            reasons=found.reasons,
        )


@strawberry.type
class UserEdge:
    cursor: str
    node: UserType


_new_edge = builder(UserEdge)


# ``totalCount`` is not ``async``: a page that is the whole list (cursors.Page.count, most
# searches) knows its count, answered without a query or an await (and, marked
# ``known_answer``, without a resolver call); any other page counts by query.


def _known_count(connection: UserConnection | AgentConnection) -> int | Unknown:
    return UNKNOWN if connection.known_count is None else connection.known_count


UserList = lists.PendingFilter | lists.UserFilter | reclaim.InactiveFilter  # a connection's list


@strawberry.type
class UserConnection:
    edges: list[UserEdge]
    page_info: PageInfo
    count_filter: strawberry.Private[UserList]
    # The list's count when known: the page's rows are the whole list (cursors.Page.count),
    # or its resolver counted it (user_connection); else None.
    known_count: strawberry.Private[int | None] = None

    @classmethod
    def of(
        cls,
        page: cursors.Page[rows.UserRow],
        filt: UserList,
        nodes: Iterable[UserType] | None = None,
        count: int | None = None,
    ) -> UserConnection:
        """``count``: the list's, if known (else the page's, when it is the whole list)."""
        views = [UserType.of(u) for u in page.items] if nodes is None else nodes
        return cls(
            edges=[_new_edge(cursor=c, node=v) for v, c in zip(views, page.cursors, strict=True)],
            page_info=PageInfo.of(page),
            count_filter=filt,
            known_count=page.count if count is None else count,
        )

    @strawberry.field(graphql_type=int)  # type: ignore[untyped-decorator]  # Strawberry's decorator-with-arguments overload is untyped
    @known_answer(_known_count)
    def total_count(self, info: Ctx) -> int | Awaitable[int]:
        known = _known_count(self)
        if known is not UNKNOWN:
            return known
        return self._count(info)

    async def _count(self, info: Ctx) -> int:
        return await list_count(info.context, self.count_filter)


async def list_count(ctx: Context, filt: UserList) -> int:
    """How many users the list of ``filt`` holds."""
    if isinstance(filt, lists.PendingFilter):
        return await ctx.run(lists.pending_count, filt)
    if isinstance(filt, reclaim.InactiveFilter):
        return await ctx.run(reclaim.inactive_count, filt)
    return await ctx.run(lists.users_count, filt)


@strawberry.type
class AgentEdge:
    cursor: str
    node: AgentType


@strawberry.type
class AgentConnection:
    edges: list[AgentEdge]
    page_info: PageInfo
    count_filter: strawberry.Private[lists.AgentFilter]
    known_count: strawberry.Private[int | None] = None

    @strawberry.field(graphql_type=int)  # type: ignore[untyped-decorator]  # Strawberry's decorator-with-arguments overload is untyped
    @known_answer(_known_count)
    def total_count(self, info: Ctx) -> int | Awaitable[int]:
        known = _known_count(self)
        if known is not UNKNOWN:
            return known
        return info.context.run(lists.agents_count, self.count_filter)
