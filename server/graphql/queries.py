"""``Query``: every read of the contract, thin over :mod:`server.domain.reads` and friends.

Reads never error for a missing or foreign id (``null``); an argument out of range is a
top-level ``BAD_USER_INPUT`` error.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import date
from typing import TypeVar

import strawberry

from server.domain import changes, metrics, plans, reclaim
from server.domain.activity import report
from server.domain.errors import DomainError
from server.domain.reads import cursors, lists

from .context import Context, Ctx
from .errors import BadUserInput
from .execution import UNKNOWN, Unknown, context_answer
from .inputs import bulk_ids
from .types.account import AccountType, ActivityReport, AdminType, FromDate, QueueMetrics, UserActivity
from .types.base import PageInfo, PendingOrder, PendingReason, UserStatus
from .types.history import (
    AuditEntryConnection,
    AuditEntryEdge,
    AuditEntryType,
    SettingsChangeConnection,
    SettingsChangeEdge,
    SettingsChangeType,
)
from .types.payloads import UpdateAccountSettingsInput
from .types.plans import SeatPlanType
from .types.user_pages import user_connection
from .types.users import AgentConnection, AgentEdge, AgentType, UserConnection, UserType

T = TypeVar("T")


async def _checked(call: Awaitable[T]) -> T:
    """A domain refusal of a read's arguments becomes a top-level BAD_USER_INPUT error."""
    try:
        return await call
    except DomainError as exc:
        raise BadUserInput(exc.message, field=exc.field) from None


def _me(ctx: Context) -> AdminType | Unknown:
    return AdminType.of(ctx.admin) if ctx.bound else UNKNOWN


@strawberry.type
class Query:
    @strawberry.field(graphql_type=AdminType)  # type: ignore[untyped-decorator]  # Strawberry's decorator-with-arguments overload is untyped
    @context_answer(_me)
    def me(self, info: Ctx) -> AdminType:
        known = _me(info.context)
        if known is UNKNOWN:  # an unbound context: no request reaches a resolver with one
            raise RuntimeError("no admin is signed in")
        return known

    @strawberry.field
    async def account(self, info: Ctx) -> AccountType:
        ctx = info.context
        usage = await ctx.run(changes.account_usage, ctx.account)
        return AccountType.of(ctx.account, usage)

    @strawberry.field
    async def pending_users(
        self,
        info: Ctx,
        first: int = 50,
        after: str | None = None,
        search: str | None = None,
        reason: PendingReason | None = None,  # type: ignore[valid-type]
        order_by: PendingOrder = lists.PendingOrder.ENTERED_ASC,  # type: ignore[valid-type]
    ) -> UserConnection:
        ctx = info.context
        filt = lists.PendingFilter(ctx.account_id, search, reason)
        page = await _checked(ctx.run(lists.pending_page, filt, first, after, order_by))
        return await user_connection(info, page, filt)

    @strawberry.field
    async def users(
        self,
        info: Ctx,
        first: int = 50,
        after: str | None = None,
        search: str | None = None,
        status: UserStatus | None = None,  # type: ignore[valid-type]
    ) -> UserConnection:
        ctx = info.context
        filt = lists.UserFilter(ctx.account_id, search, status)
        page = await _checked(ctx.run(lists.users_page, filt, first, after))
        return await user_connection(info, page, filt)

    @strawberry.field
    async def user(self, info: Ctx, id: strawberry.ID) -> UserType | None:
        user_id = cursors.parse_id(id)
        if user_id is None:
            return None
        user = await info.context.loaders.user.load(user_id)
        return None if user is None else UserType.of(user)

    @strawberry.field(
        description="LICENSED users with no activity in the last `days` days (1 to 365), "
        "least recently active first, never-active first of all."
    )  # type: ignore[untyped-decorator]  # Strawberry's decorator-with-arguments overload is untyped
    async def inactive_users(
        self, info: Ctx, days: int = 14, first: int = 50, after: str | None = None
    ) -> UserConnection:
        ctx = info.context
        filt = reclaim.InactiveFilter(ctx.account_id, days, ctx.services.clock())
        page = await _checked(ctx.run(reclaim.inactive_page, filt, first, after))
        return await user_connection(info, page, filt)

    @strawberry.field
    async def agents(
        self, info: Ctx, first: int = 50, after: str | None = None, search: str | None = None
    ) -> AgentConnection:
        ctx = info.context
        filt = lists.AgentFilter(ctx.account_id, search)
        page = await _checked(ctx.run(lists.agents_page, filt, first, after))
        return AgentConnection(
            edges=[
                AgentEdge(cursor=c, node=AgentType.of(a))
                for a, c in zip(page.items, page.cursors, strict=True)
            ],
            page_info=PageInfo.of(page),
            count_filter=filt,
            known_count=page.count,
        )

    @strawberry.field
    async def activity_report(self, info: Ctx, from_: FromDate, to: date) -> ActivityReport:
        ctx = info.context
        rows = await _checked(ctx.run(report.activity_report, ctx.account_id, from_, to))
        return ActivityReport(from_=from_, to=to, rows=[UserActivity.of(r) for r in rows])

    @strawberry.field
    async def queue_metrics(self, info: Ctx, days: int = 30) -> QueueMetrics:
        ctx = info.context
        found = await _checked(ctx.run(metrics.queue_metrics, ctx.account_id, days, ctx.services.clock()))
        return QueueMetrics.of(found)

    @strawberry.field(
        description="Who changed the account's settings (limit, manual review) and how, newest first."
    )  # type: ignore[untyped-decorator]  # Strawberry's decorator-with-arguments overload is untyped
    async def settings_history(
        self, info: Ctx, first: int = 50, after: str | None = None
    ) -> SettingsChangeConnection:
        ctx = info.context
        page = await _checked(ctx.run(lists.settings_history_page, ctx.account_id, first, after))
        return SettingsChangeConnection(
            edges=[
                SettingsChangeEdge(cursor=c, node=SettingsChangeType.of(e))
                for e, c in zip(page.items, page.cursors, strict=True)
            ],
            page_info=PageInfo.of(page),
        )

    @strawberry.field
    async def audit_log(self, info: Ctx, first: int = 50, after: str | None = None) -> AuditEntryConnection:
        ctx = info.context
        page = await _checked(ctx.run(lists.audit_page, ctx.account_id, first, after))
        return AuditEntryConnection(
            edges=[
                AuditEntryEdge(cursor=c, node=AuditEntryType.of(e))
                for e, c in zip(page.items, page.cursors, strict=True)
            ],
            page_info=PageInfo.of(page),
        )

    @strawberry.field(
        description="What approvePendingUsers would do with these ids now (auto-approval included)."
    )  # type: ignore[untyped-decorator]  # Strawberry's decorator-with-arguments overload is untyped
    async def preview_approval(self, info: Ctx, user_ids: list[strawberry.ID]) -> SeatPlanType:
        ctx = info.context
        try:
            ids = bulk_ids(user_ids, "userIds")
        except DomainError as refused:
            return SeatPlanType.of(await ctx.run(plans.refused, ctx.account_id, refused))
        return SeatPlanType.of(await ctx.run(plans.preview_approval, ctx.account_id, ids))

    @strawberry.field(description="What updateAccountSettings would do with this input now.")  # type: ignore[untyped-decorator]  # Strawberry's decorator-with-arguments overload is untyped
    async def preview_account_settings(self, info: Ctx, input: UpdateAccountSettingsInput) -> SeatPlanType:
        ctx = info.context
        # Previews ignore expectedQueueVersion: they show the plan as it is now.
        change = plans.SettingsInput(
            manual_review=input.manual_review,
            license_limit=input.license_limit,
            auto_approve=input.auto_approve,
            auto_approve_domains=input.auto_approve_domains,
            queue_target_hours=input.queue_target_hours,
        )
        return SeatPlanType.of(await ctx.run(plans.preview_settings, ctx.account_id, change))
