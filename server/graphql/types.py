"""The GraphQL object types of the contract, built from domain rows.

Plain fields are copied from the row when the object is made, so GraphQL reads them with
its default resolver; fields that need more data (a user's agents, pending info, an audit
entry's actor) resolve through the request's DataLoaders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any

import strawberry

from server.domain import models
from server.domain.activity.report import AppUsage as DomainAppUsage
from server.domain.activity.report import UserActivity as DomainUserActivity
from server.domain.errors import DomainError
from server.domain.errors import ErrorCode as DomainErrorCode
from server.domain.events import AccountUsage
from server.domain.metrics import QueueMetrics as DomainQueueMetrics
from server.domain.reads import cursors, lists, loads, rows
from server.domain.suggestions.store import Found

from .context import Ctx
from .errors import BadUserInput
from .feed import LiveEvent, LiveUser

Role = strawberry.enum(models.Role, name="Role")
UserStatus = strawberry.enum(models.UserStatus, name="UserStatus")
PendingReason = strawberry.enum(models.PendingReason, name="PendingReason")
PendingOrder = strawberry.enum(lists.PendingOrder, name="PendingOrder")
QueueAction = strawberry.enum(models.QueueAction, name="QueueAction")
ErrorCode = strawberry.enum(DomainErrorCode, name="ErrorCode")
SuggestionKind = strawberry.enum(models.SuggestionKind, name="SuggestionKind")


def gid(value: int | None) -> strawberry.ID:
    assert value is not None
    return strawberry.ID(str(value))


@strawberry.type(name="Admin")
class AdminType:
    id: strawberry.ID
    email: str
    name: str
    role: Role  # type: ignore[valid-type]
    notify_on_pending: bool

    @classmethod
    def of(cls, admin: models.Admin) -> AdminType:
        return cls(
            id=gid(admin.id),
            email=admin.email,
            name=admin.name,
            role=admin.role,
            notify_on_pending=admin.notify_on_pending,
        )


@strawberry.type(name="Account")
class AccountType:
    id: strawberry.ID
    name: str
    license_limit: int
    licenses_used: int
    licenses_available: int
    pending_count: int
    manual_review: bool
    retention_days: int

    @classmethod
    def of(cls, account: models.Account, usage: AccountUsage) -> AccountType:
        return cls(
            id=gid(account.id),
            name=account.name,
            license_limit=usage.license_limit,
            licenses_used=usage.licenses_used,
            licenses_available=max(usage.license_limit - usage.licenses_used, 0),
            pending_count=usage.pending_count,
            manual_review=usage.manual_review,
            retention_days=account.retention_days,
        )


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

    @classmethod
    def of(cls, info: loads.PendingInfo) -> PendingInfoType:
        return cls(
            reason=info.reason,
            entered_at=info.entered_at,
            retained_event_count=info.retained_event_count,
            retained_active_seconds=info.retained_active_seconds,
            oldest_retained_at=info.oldest_retained_at,
            data_expires_at=info.data_expires_at,
        )


@strawberry.type(name="Agent", description="A login on a device, as reported by the monitoring agent.")
class AgentType:
    id: strawberry.ID
    device_name: str
    domain: str
    logon_name: str
    first_seen_at: datetime
    last_seen_at: datetime
    user_id: strawberry.Private[int]
    # Set when the owner is already resolved (a live event's user): no loader, no session.
    owner: strawberry.Private[UserType | None] = None

    @classmethod
    def of(cls, agent: rows.AgentFields, owner: UserType | None = None) -> AgentType:
        return cls(
            id=gid(agent.id),
            device_name=agent.device_name,
            domain=agent.domain,
            logon_name=agent.logon_name,
            first_seen_at=agent.first_seen_at,
            last_seen_at=agent.last_seen_at,
            user_id=agent.user_id,
            owner=owner,
        )

    @strawberry.field
    async def user(self, info: Ctx) -> UserType:
        if self.owner is not None:
            return self.owner
        user = await info.context.loaders.user.load(self.user_id)
        # An agent always has its user; both rows come from one snapshot of one account.
        assert user is not None
        return UserType.of(user)


@strawberry.type(name="User", description="A tracked person: the unit that consumes a license.")
class UserType:
    id: strawberry.ID
    display_name: str
    status: UserStatus  # type: ignore[valid-type]
    first_seen_at: datetime
    last_seen_at: datetime
    licensed_at: datetime | None
    row: strawberry.Private[rows.UserFields]
    # Set for a live event's user, whose rows are loaded once for every subscriber
    # (server.graphql.feed): its fields then need no loader or session.
    resolved: strawberry.Private[ResolvedUser | None] = None

    @classmethod
    def of(cls, user: rows.UserFields) -> UserType:
        return cls(
            id=gid(user.id),
            display_name=user.display_name,
            status=user.status,
            first_seen_at=user.first_seen_at,
            last_seen_at=user.last_seen_at,
            licensed_at=user.licensed_at,
            row=user,
        )

    @classmethod
    def resolved_of(
        cls,
        user: rows.UserFields,
        agents: Sequence[rows.AgentFields],
        pending: loads.PendingInfo | None,
    ) -> UserType:
        """A user whose agents and pending info are already known."""
        view = cls.of(user)
        view.resolved = ResolvedUser(
            agents=[AgentType.of(a, owner=view) for a in agents],
            pending=None if pending is None else PendingInfoType.of(pending),
        )
        return view

    @strawberry.field
    async def agents(self, info: Ctx) -> list[AgentType]:
        if self.resolved is not None:
            return self.resolved.agents
        assert self.row.id is not None
        return [AgentType.of(a) for a in await info.context.loaders.agents.load(self.row.id)]

    @strawberry.field(description="Null unless status is PENDING.")  # type: ignore[untyped-decorator]  # Strawberry's decorator-with-arguments overload is untyped
    async def pending(self, info: Ctx) -> PendingInfoType | None:
        if self.resolved is not None:
            return self.resolved.pending
        if self.row.status is not models.UserStatus.PENDING:
            return None
        assert self.row.id is not None
        retained = await info.context.loaders.retained.load(self.row.id)
        found = loads.pending_info(self.row, retained, info.context.account.retention_days)
        return None if found is None else PendingInfoType.of(found)

    @strawberry.field
    async def suggestions(self, info: Ctx, first: int = 3) -> list[SuggestionType]:
        if not 1 <= first <= cursors.MAX_PAGE:
            raise BadUserInput(f"first must be from 1 to {cursors.MAX_PAGE}; got {first}", field="first")
        if self.row.status is not models.UserStatus.PENDING:
            return []
        assert self.row.id is not None
        found = await info.context.loaders.suggestions.load(self.row.id)
        return [SuggestionType.of(f) for f in found[:first]]


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


@dataclass(frozen=True, slots=True)
class ResolvedUser:
    agents: list[AgentType]
    pending: PendingInfoType | None


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None

    @classmethod
    def of(cls, page: cursors.Page[Any]) -> PageInfo:
        return cls(has_next_page=page.has_next, end_cursor=page.end_cursor)


@strawberry.type
class UserEdge:
    cursor: str
    node: UserType


@strawberry.type
class UserConnection:
    edges: list[UserEdge]
    page_info: PageInfo
    count_filter: strawberry.Private[lists.PendingFilter | lists.UserFilter]

    @classmethod
    def of(
        cls, page: cursors.Page[rows.UserRow], filt: lists.PendingFilter | lists.UserFilter
    ) -> UserConnection:
        return cls(
            edges=[
                UserEdge(cursor=c, node=UserType.of(u)) for u, c in zip(page.items, page.cursors, strict=True)
            ],
            page_info=PageInfo.of(page),
            count_filter=filt,
        )

    @strawberry.field
    async def total_count(self, info: Ctx) -> int:
        filt = self.count_filter
        if isinstance(filt, lists.PendingFilter):
            return await info.context.run(lists.pending_count, filt)
        return await info.context.run(lists.users_count, filt)


@strawberry.type
class AgentEdge:
    cursor: str
    node: AgentType


@strawberry.type
class AgentConnection:
    edges: list[AgentEdge]
    page_info: PageInfo
    count_filter: strawberry.Private[lists.AgentFilter]

    @strawberry.field
    async def total_count(self, info: Ctx) -> int:
        return await info.context.run(lists.agents_count, self.count_filter)


@strawberry.type
class AppUsage:
    app: str
    active_seconds: int

    @classmethod
    def of(cls, usage: DomainAppUsage) -> AppUsage:
        return cls(app=usage.app, active_seconds=usage.active_seconds)


@strawberry.type
class UserActivity:
    user: UserType
    active_seconds: int
    productive_seconds: int
    unproductive_seconds: int
    top_apps: list[AppUsage]

    @classmethod
    def of(cls, row: DomainUserActivity) -> UserActivity:
        return cls(
            user=UserType.of(row.user),
            active_seconds=row.active_seconds,
            productive_seconds=row.productive_seconds,
            unproductive_seconds=row.unproductive_seconds,
            top_apps=[AppUsage.of(a) for a in row.top_apps],
        )


@strawberry.type
class ActivityReport:
    from_: date = strawberry.field(name="from")
    to: date
    rows: list[UserActivity]


@strawberry.type
class ActionCount:
    action: QueueAction  # type: ignore[valid-type]
    count: int


@strawberry.type
class QueueMetrics:
    pending_count: int
    oldest_pending_since: datetime | None
    resolved_count: int
    average_resolution_seconds: float | None
    median_resolution_seconds: float | None
    resolved_by_action: list[ActionCount]

    @classmethod
    def of(cls, m: DomainQueueMetrics) -> QueueMetrics:
        return cls(
            pending_count=m.pending_count,
            oldest_pending_since=m.oldest_pending_since,
            resolved_count=m.resolved_count,
            average_resolution_seconds=m.average_resolution_seconds,
            median_resolution_seconds=m.median_resolution_seconds,
            resolved_by_action=[ActionCount(action=a, count=n) for a, n in m.resolved_by_action],
        )


@strawberry.type(name="AuditEntry")
class AuditEntryType:
    id: strawberry.ID
    at: datetime
    action: QueueAction  # type: ignore[valid-type]
    user_id: strawberry.ID
    user_display_name: str
    detail: str
    actor_id: strawberry.Private[int | None]

    @classmethod
    def of(cls, entry: models.AuditEntry) -> AuditEntryType:
        return cls(
            id=gid(entry.id),
            at=entry.at,
            action=entry.action,
            user_id=gid(entry.user_id),
            user_display_name=entry.user_display_name,
            detail=entry.detail,
            actor_id=entry.actor_id,
        )

    @strawberry.field(description="Null when the system acted (ingestion, a lowered limit).")  # type: ignore[untyped-decorator]  # Strawberry's decorator-with-arguments overload is untyped
    async def actor(self, info: Ctx) -> AdminType | None:
        return await actor_of(info, self.actor_id)


async def actor_of(info: Ctx, actor_id: int | None) -> AdminType | None:
    """The admin who acted, through the request's loader; ``None`` for the system."""
    if actor_id is None:
        return None
    admin = await info.context.loaders.admin.load(actor_id)
    return None if admin is None else AdminType.of(admin)


@strawberry.type
class AuditEntryEdge:
    cursor: str
    node: AuditEntryType


@strawberry.type
class AuditEntryConnection:
    edges: list[AuditEntryEdge]
    page_info: PageInfo

    @strawberry.field
    async def total_count(self, info: Ctx) -> int:
        return await info.context.run(lists.audit_count, info.context.account_id)


@strawberry.type(
    name="SettingsChange", description="A change to the account's settings: who made it and what changed."
)
class SettingsChangeType:
    id: strawberry.ID
    at: datetime
    manual_review: bool
    previous_manual_review: bool
    license_limit: int
    previous_license_limit: int
    moved_to_pending: int = strawberry.field(
        description="How many licensed users a lowered limit moved to the Pending Licenses queue."
    )
    actor_id: strawberry.Private[int | None]

    @classmethod
    def of(cls, change: models.SettingsChange) -> SettingsChangeType:
        return cls(
            id=gid(change.id),
            at=change.at,
            manual_review=change.manual_review_after,
            previous_manual_review=change.manual_review_before,
            license_limit=change.license_limit_after,
            previous_license_limit=change.license_limit_before,
            moved_to_pending=change.moved_to_pending,
            actor_id=change.actor_id,
        )

    @strawberry.field(description="Null when the system acted (the plm CLI).")  # type: ignore[untyped-decorator]  # Strawberry's decorator-with-arguments overload is untyped
    async def actor(self, info: Ctx) -> AdminType | None:
        return await actor_of(info, self.actor_id)


@strawberry.type
class SettingsChangeEdge:
    cursor: str
    node: SettingsChangeType


@strawberry.type
class SettingsChangeConnection:
    edges: list[SettingsChangeEdge]
    page_info: PageInfo

    @strawberry.field
    async def total_count(self, info: Ctx) -> int:
        return await info.context.run(lists.settings_history_count, info.context.account_id)


@strawberry.type
class UserError:
    code: ErrorCode  # type: ignore[valid-type]
    message: str
    field: str | None = strawberry.field(description="The input field at fault, where there is one.")

    @classmethod
    def of(cls, error: DomainError) -> UserError:
        return cls(code=error.code, message=error.message, field=error.field)


# ---------------------------------------------------------------------------- inputs & payloads


@strawberry.input
class ApprovePendingUsersInput:
    user_ids: list[strawberry.ID]


@strawberry.type
class ApprovePendingUsersPayload:
    approved: list[UserType]
    account: AccountType
    errors: list[UserError]


@strawberry.input
class AssignPendingUserInput:
    pending_user_id: strawberry.ID
    target_user_id: strawberry.ID


@strawberry.type
class AssignPendingUserPayload:
    user: UserType | None = strawberry.field(
        description="The existing user that now owns the pending user's agents."
    )
    account: AccountType
    errors: list[UserError]


@strawberry.input
class MergePendingUserInput:
    pending_user_id: strawberry.ID
    target_agent_id: strawberry.ID


@strawberry.type
class MergePendingUserPayload:
    agent: AgentType | None = strawberry.field(
        description="The existing agent that absorbed the pending user's agent."
    )
    account: AccountType
    errors: list[UserError]


@strawberry.input
class RemoveUsersInput:
    user_ids: list[strawberry.ID]
    do_not_track: bool = False


@strawberry.type
class RemoveUsersPayload:
    removed_user_ids: list[strawberry.ID]
    account: AccountType
    errors: list[UserError]


@strawberry.input
class UpdateAccountSettingsInput:
    manual_review: bool | None = None
    license_limit: int | None = None


@strawberry.type
class UpdateAccountSettingsPayload:
    account: AccountType
    errors: list[UserError]


@strawberry.input
class UpdateNotificationSettingsInput:
    notify_on_pending: bool


@strawberry.type
class UpdateNotificationSettingsPayload:
    me: AdminType
    errors: list[UserError]


@strawberry.type
class PendingQueueEvent:
    action: QueueAction  # type: ignore[valid-type]
    user_id: strawberry.ID
    user: UserType | None = strawberry.field(
        description="The user's state after the change; null when it was removed, assigned or merged away."
    )
    account: AccountType = strawberry.field(description="License usage after the change.")
    actor: AdminType | None = strawberry.field(description="Null when the system acted.")
    at: datetime
    target: UserType | None = strawberry.field(
        default=None,
        description="ASSIGNED or MERGED: the user the pending user became part of, after the change "
        "(a pending target's row shows the activity and agents it gained); null otherwise.",
    )

    @classmethod
    def of(cls, view: LiveEvent) -> PendingQueueEvent:
        """An event as its loaded rows show it: no field needs a loader or a session."""
        event = view.event
        return cls(
            action=event.action,
            user_id=gid(event.user_id),
            user=_live_user(view.user),
            account=AccountType.of(view.account, event.usage),
            actor=None if view.actor is None else AdminType.of(view.actor),
            at=event.at,
            target=_live_user(view.target),
        )


def _live_user(user: LiveUser | None) -> UserType | None:
    return None if user is None else UserType.resolved_of(user.row, user.agents, user.pending)


FromDate = Annotated[date, strawberry.argument(name="from")]
