"""What mutations take and answer (inputs, payloads, ``UserError``), and the live queue event."""

from __future__ import annotations

from datetime import datetime

import strawberry

from server.domain.errors import DomainError

from ..feed import LiveEvent, LiveUser
from .account import AccountType, AdminType
from .base import AutoApproveMode, ErrorCode, QueueAction, gid
from .users import AgentType, UserType


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
    expected_queue_version: str | None = strawberry.field(
        default=None,
        description="From a SeatPlan: apply only if the queue has not changed since (else PLAN_CHANGED).",
    )


@strawberry.type
class ApprovePendingUsersPayload:
    # Each result field's default is what a refused mutation shows (nothing changed).
    approved: list[UserType] = strawberry.field(default_factory=list)
    account: AccountType
    errors: list[UserError]


@strawberry.input
class AssignPendingUserInput:
    pending_user_id: strawberry.ID
    target_user_id: strawberry.ID


@strawberry.type
class AssignPendingUserPayload:
    user: UserType | None = strawberry.field(
        default=None, description="The existing user that now owns the pending user's agents."
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
        default=None, description="The existing agent that absorbed the pending user's agent."
    )
    account: AccountType
    errors: list[UserError]


@strawberry.input
class RemoveUsersInput:
    user_ids: list[strawberry.ID]
    do_not_track: bool = False


@strawberry.type
class RemoveUsersPayload:
    removed_user_ids: list[strawberry.ID] = strawberry.field(default_factory=list)
    account: AccountType
    errors: list[UserError]


@strawberry.input
class UpdateAccountSettingsInput:
    manual_review: bool | None = None
    license_limit: int | None = None
    auto_approve: AutoApproveMode | None = None  # type: ignore[valid-type]
    auto_approve_domains: list[str] | None = None
    queue_target_hours: int | None = strawberry.field(
        default=None, description="1 to 8760; 0 removes the target."
    )
    expected_queue_version: str | None = strawberry.field(
        default=None,
        description="From a SeatPlan: apply only if the queue has not changed since (else PLAN_CHANGED).",
    )


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


@strawberry.input(
    description="Every id must be LICENSED; all or nothing. They become PENDING with reason RELEASED "
    "(their data is kept as any pending user's)."
)
class ReleaseLicensesInput:
    user_ids: list[strawberry.ID]


@strawberry.type
class ReleaseLicensesPayload:
    released: list[UserType] = strawberry.field(default_factory=list)
    account: AccountType
    errors: list[UserError]


@strawberry.input(
    description="One transaction: releaseUserId (LICENSED) goes to the queue as RELEASED, "
    "and approveUserId (PENDING) takes its license."
)
class SwapLicenseInput:
    release_user_id: strawberry.ID
    approve_user_id: strawberry.ID


@strawberry.type
class SwapLicensePayload:
    released: UserType | None = None
    approved: UserType | None = None
    account: AccountType
    errors: list[UserError]


@strawberry.input(
    description="All or nothing; entries of one bulk action are undone together by passing all their ids."
)
class UndoActionsInput:
    audit_entry_ids: list[strawberry.ID]


@strawberry.type
class UndoActionsPayload:
    users: list[UserType] = strawberry.field(
        default_factory=list, description="The users the undo restored or changed, as they are now."
    )
    account: AccountType
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
