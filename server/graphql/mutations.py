"""``Mutation``: each resolver checks the role, opens one write transaction, calls one domain
function and maps its result (thin resolvers: the rules live in the domain).

Expected failures (:class:`DomainError`) come back in the payload's ``errors`` with the
domain's code and field; nothing changed, because the transaction rolled back. That is done
once, by :func:`_payload`: each resolver hands it its work (``_approve``, ``_assign``, ...)
and what the payload shows when refused. A VIEWER acting, or more ids than a bulk input
allows, is a top-level error instead: no data choice would make it succeed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from server.domain import accounts, actions, changes, reclaim
from server.domain.errors import DomainError, PermissionDenied
from server.domain.reads import loads
from server.domain.undo import apply as undo

from .context import Context, Ctx
from .errors import Forbidden
from .inputs import bulk_ids as _bulk_ids
from .inputs import parse_id as _id
from .types.account import AccountType, AdminType
from .types.base import gid
from .types.payloads import (
    ApprovePendingUsersInput,
    ApprovePendingUsersPayload,
    AssignPendingUserInput,
    AssignPendingUserPayload,
    MergePendingUserInput,
    MergePendingUserPayload,
    ReleaseLicensesInput,
    ReleaseLicensesPayload,
    RemoveUsersInput,
    RemoveUsersPayload,
    SwapLicenseInput,
    SwapLicensePayload,
    UndoActionsInput,
    UndoActionsPayload,
    UpdateAccountSettingsInput,
    UpdateAccountSettingsPayload,
    UpdateNotificationSettingsInput,
    UpdateNotificationSettingsPayload,
    UserError,
)
from .types.users import AgentType, UserType

P = TypeVar("P")
P_co = TypeVar("P_co", covariant=True)
R = TypeVar("R")


async def _write(ctx: Context, action: Callable[[AsyncSession, datetime], Awaitable[R]]) -> R:
    """Run ``action`` in one write transaction, then let the payload read what it wrote."""
    try:
        async with ctx.services.db.write() as session:
            return await action(session, ctx.services.clock())
    except PermissionDenied as exc:
        raise Forbidden(str(exc)) from None
    finally:
        await ctx.fresh_snapshot()


async def _payload(perform: Awaitable[P], refused: Callable[[list[UserError]], Awaitable[P]]) -> P:
    """The payload ``perform`` answers, or ``refused``'s when a domain rule refused it.

    Saleor's ``BaseMutation.mutate``, once for every mutation: ``perform`` reads the input,
    calls one domain function and maps its result; a :class:`DomainError` on the way (an id
    not found, a full license, ...) becomes the payload's ``errors``. Anything else, a
    VIEWER acting included, stays a top-level error.
    """
    try:
        return await perform
    except DomainError as exc:
        return await refused([UserError.of(exc)])


class _AccountPayload(Protocol[P_co]):
    """A payload type that shows the account; its other fields have a default."""

    def __call__(self, *, account: AccountType, errors: list[UserError]) -> P_co: ...


def _unchanged(ctx: Context, payload: _AccountPayload[P]) -> Callable[[list[UserError]], Awaitable[P]]:
    """A refused account action's payload: the account as it is (nothing changed), the errors."""

    async def refused(errors: list[UserError]) -> P:
        account = await ctx.run(loads.account_by_id, ctx.account_id)
        assert account is not None
        usage = await ctx.run(changes.account_usage, account)
        return payload(account=AccountType.of(account, usage), errors=errors)

    return refused


def _account(result: changes.ActionResult) -> AccountType:
    return AccountType.of(result.account, result.usage)


# ---------------------------------------------------------------------------- each mutation's work


async def _approve(ctx: Context, input: ApprovePendingUsersInput) -> ApprovePendingUsersPayload:
    ids = _bulk_ids(input.user_ids, "userIds")
    expected = input.expected_queue_version
    result = await _write(ctx, lambda s, now: actions.approve(s, ctx.actor, ids, now, expected))
    return ApprovePendingUsersPayload(
        approved=[UserType.of(u) for u in result.users], account=_account(result), errors=[]
    )


async def _assign(ctx: Context, input: AssignPendingUserInput) -> AssignPendingUserPayload:
    pending = _id(input.pending_user_id, "pendingUserId")
    target = _id(input.target_user_id, "targetUserId")
    result = await _write(ctx, lambda s, now: actions.assign(s, ctx.actor, pending, target, now))
    return AssignPendingUserPayload(user=UserType.of(result.users[0]), account=_account(result), errors=[])


async def _merge(ctx: Context, input: MergePendingUserInput) -> MergePendingUserPayload:
    pending = _id(input.pending_user_id, "pendingUserId")
    target = _id(input.target_agent_id, "targetAgentId", "agent")
    result = await _write(ctx, lambda s, now: actions.merge(s, ctx.actor, pending, target, now))
    assert result.agent is not None
    return MergePendingUserPayload(agent=AgentType.of(result.agent), account=_account(result), errors=[])


async def _remove(ctx: Context, input: RemoveUsersInput) -> RemoveUsersPayload:
    ids = _bulk_ids(input.user_ids, "userIds")
    result = await _write(ctx, lambda s, now: actions.remove(s, ctx.actor, ids, input.do_not_track, now))
    return RemoveUsersPayload(
        removed_user_ids=[gid(i) for i in result.removed_user_ids], account=_account(result), errors=[]
    )


async def _update_settings(ctx: Context, input: UpdateAccountSettingsInput) -> UpdateAccountSettingsPayload:
    result = await _write(
        ctx,
        lambda s, now: actions.update_settings(
            s,
            ctx.actor,
            now,
            manual_review=input.manual_review,
            license_limit=input.license_limit,
            auto_approve=input.auto_approve,
            auto_approve_domains=input.auto_approve_domains,
            queue_target_hours=input.queue_target_hours,
            expected_version=input.expected_queue_version,
        ),
    )
    return UpdateAccountSettingsPayload(account=_account(result), errors=[])


async def _release(ctx: Context, input: ReleaseLicensesInput) -> ReleaseLicensesPayload:
    ids = _bulk_ids(input.user_ids, "userIds")
    result = await _write(ctx, lambda s, now: reclaim.release(s, ctx.actor, ids, now))
    released = [UserType.of(u) for u in result.users if u.id in ids]
    return ReleaseLicensesPayload(released=released, account=_account(result), errors=[])


async def _swap(ctx: Context, input: SwapLicenseInput) -> SwapLicensePayload:
    release = _id(input.release_user_id, "releaseUserId")
    approve = _id(input.approve_user_id, "approveUserId")
    result = await _write(ctx, lambda s, now: reclaim.swap(s, ctx.actor, release, approve, now))
    released, approved = (UserType.of(u) for u in result.users)
    return SwapLicensePayload(released=released, approved=approved, account=_account(result), errors=[])


async def _undo(ctx: Context, input: UndoActionsInput) -> UndoActionsPayload:
    ids = _bulk_ids(input.audit_entry_ids, "auditEntryIds", "audit entry")
    window = timedelta(hours=ctx.services.settings.undo_hours)
    result = await _write(ctx, lambda s, now: undo.undo_actions(s, ctx.actor, ids, now, window))
    return UndoActionsPayload(
        users=[UserType.of(u) for u in result.users], account=_account(result), errors=[]
    )


async def _update_notifications(
    ctx: Context, input: UpdateNotificationSettingsInput
) -> UpdateNotificationSettingsPayload:
    admin_id = ctx.actor.admin_id
    assert admin_id is not None
    admin = await _write(
        ctx, lambda s, now: accounts.update_notification_settings(s, admin_id, input.notify_on_pending, now)
    )
    ctx.admin = admin
    return UpdateNotificationSettingsPayload(me=AdminType.of(admin), errors=[])


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def approve_pending_users(
        self, info: Ctx, input: ApprovePendingUsersInput
    ) -> ApprovePendingUsersPayload:
        ctx = info.context
        ctx.require_admin()
        return await _payload(_approve(ctx, input), _unchanged(ctx, ApprovePendingUsersPayload))

    @strawberry.mutation
    async def assign_pending_user(self, info: Ctx, input: AssignPendingUserInput) -> AssignPendingUserPayload:
        ctx = info.context
        ctx.require_admin()
        return await _payload(_assign(ctx, input), _unchanged(ctx, AssignPendingUserPayload))

    @strawberry.mutation
    async def merge_pending_user(self, info: Ctx, input: MergePendingUserInput) -> MergePendingUserPayload:
        ctx = info.context
        ctx.require_admin()
        return await _payload(_merge(ctx, input), _unchanged(ctx, MergePendingUserPayload))

    @strawberry.mutation
    async def remove_users(self, info: Ctx, input: RemoveUsersInput) -> RemoveUsersPayload:
        ctx = info.context
        ctx.require_admin()
        return await _payload(_remove(ctx, input), _unchanged(ctx, RemoveUsersPayload))

    @strawberry.mutation
    async def update_account_settings(
        self, info: Ctx, input: UpdateAccountSettingsInput
    ) -> UpdateAccountSettingsPayload:
        ctx = info.context
        ctx.require_admin()
        return await _payload(_update_settings(ctx, input), _unchanged(ctx, UpdateAccountSettingsPayload))

    @strawberry.mutation
    async def release_licenses(self, info: Ctx, input: ReleaseLicensesInput) -> ReleaseLicensesPayload:
        ctx = info.context
        ctx.require_admin()
        return await _payload(_release(ctx, input), _unchanged(ctx, ReleaseLicensesPayload))

    @strawberry.mutation
    async def swap_license(self, info: Ctx, input: SwapLicenseInput) -> SwapLicensePayload:
        ctx = info.context
        ctx.require_admin()
        return await _payload(_swap(ctx, input), _unchanged(ctx, SwapLicensePayload))

    @strawberry.mutation
    async def undo_actions(self, info: Ctx, input: UndoActionsInput) -> UndoActionsPayload:
        ctx = info.context
        ctx.require_admin()
        return await _payload(_undo(ctx, input), _unchanged(ctx, UndoActionsPayload))

    @strawberry.mutation(
        description="The caller's own preferences; a VIEWER may set them (nothing of the account changes)."
    )  # type: ignore[untyped-decorator]  # Strawberry's decorator-with-arguments overload is untyped
    async def update_notification_settings(
        self, info: Ctx, input: UpdateNotificationSettingsInput
    ) -> UpdateNotificationSettingsPayload:
        ctx = info.context

        async def refused(errors: list[UserError]) -> UpdateNotificationSettingsPayload:
            return UpdateNotificationSettingsPayload(me=AdminType.of(ctx.admin), errors=errors)

        return await _payload(_update_notifications(ctx, input), refused)
