"""Seat plans (docs/behaviour.md, Seat plans): what an approval or a settings change would do.

One planner per change, used twice:

* by the action itself (:mod:`server.domain.actions`), under the account's lock, which then
  applies exactly the plan it got;
* by a preview (``previewApproval``, ``previewAccountSettings``), in a read transaction that
  writes nothing, which shows the plan and the errors applying it would answer.

So a preview can never disagree with the action about who is licensed or moved: there is
no second copy of the rules. A planner only reads, and refuses with a :class:`DomainError`
exactly where the action would.

The account's ``plan_version`` (the API's ``queueVersion``) changes with every write a plan
depends on. An action given the version of the plan the admin looked at
(``expectedQueueVersion``) applies only while it is unchanged (:func:`check_version`).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field, replace

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.domain.changes import MAX_LICENSE_LIMIT, check_ids, count_users, load_users, require_pending
from server.domain.errors import DomainError, ErrorCode
from server.domain.models import (
    Account,
    Agent,
    AuditEntry,
    AutoApproveMode,
    PendingReason,
    QueueAction,
    User,
    UserStatus,
)

MAX_AUTO_APPROVE_DOMAINS = 100
MAX_QUEUE_TARGET_HOURS = 8760
# A Windows domain, a device name (a local account's domain) or a DNS name: letters (any
# script), digits, hyphens and underscores, in dot-separated labels of at most 63 characters.
_DOMAIN = re.compile(r"^(?=.{1,253}$)\w(?:[\w-]{0,61}\w)?(?:\.\w(?:[\w-]{0,61}\w)?)*\Z")
# The reasons the rule approves; MANUAL_REVIEW users always wait for an admin.
AUTO_APPROVED_REASONS = (PendingReason.OVER_LIMIT, PendingReason.RELEASED)


@dataclass(frozen=True, slots=True)
class SettingsInput:
    """What ``updateAccountSettings`` was asked to change (``None``: unchanged)."""

    manual_review: bool | None = None
    license_limit: int | None = None
    auto_approve: AutoApproveMode | None = None
    auto_approve_domains: Sequence[str] | None = None
    # 0 removes the target.
    queue_target_hours: int | None = None


@dataclass
class SeatPlan:
    """Who a change licenses (in order), who it moves to the queue, and usage around it."""

    license_limit: int
    licenses_used_before: int
    approve: list[User] = field(default_factory=list)
    move_to_pending: list[User] = field(default_factory=list)

    @property
    def licenses_used_after(self) -> int:
        return self.licenses_used_before + len(self.approve) - len(self.move_to_pending)


@dataclass
class Preview:
    """A plan as a preview shows it: the plan, or what applying would answer instead."""

    plan: SeatPlan
    queue_version: str
    errors: list[DomainError] = field(default_factory=list)


def version_of(account: Account) -> str:
    """The account's ``queueVersion``: opaque to clients, compared only for equality."""
    return str(account.plan_version)


def check_version(account: Account, expected: str | None) -> None:
    """Refuse with PLAN_CHANGED unless ``expected`` (when given) is the account's version now.

    Called under the account's lock, before anything is read for the plan: the plan then
    applied is the one the admin previewed.
    """
    if expected is not None and expected != version_of(account):
        raise DomainError(
            ErrorCode.PLAN_CHANGED,
            "the queue changed since this plan was previewed; nothing was applied: preview it again",
            "expectedQueueVersion",
            expected=expected,
            current=version_of(account),
        )


# ---------------------------------------------------------------------------- the planners


async def plan_approval(session: AsyncSession, account: Account, user_ids: Sequence[int]) -> SeatPlan:
    """Approving these pending users: all of them, in the order given, or a refusal."""
    assert account.id is not None
    ids = check_ids(user_ids, "userIds")
    users = await load_users(session, account.id, ids, "userIds")
    require_pending(users, "userIds")
    used = await count_users(session, account.id, UserStatus.LICENSED)
    available = max(account.license_limit - used, 0)
    if len(users) > available:
        raise DomainError(
            ErrorCode.LICENSE_LIMIT_EXCEEDED,
            f"{len(users)} license(s) requested but only {available} available; nobody was approved",
            "userIds",
            available=available,
            requested=len(users),
        )
    return SeatPlan(license_limit=account.license_limit, licenses_used_before=used, approve=users)


def check_settings(change: SettingsInput) -> SettingsInput:
    """Refuse out-of-range settings; the change with its domains normalised (lower case, unique)."""
    limit = change.license_limit
    if limit is not None and not 0 <= limit <= MAX_LICENSE_LIMIT:
        raise DomainError(
            ErrorCode.INVALID_INPUT,
            f"licenseLimit must be from 0 to {MAX_LICENSE_LIMIT}; got {limit}",
            "licenseLimit",
        )
    target = change.queue_target_hours
    if target is not None and not 0 <= target <= MAX_QUEUE_TARGET_HOURS:
        raise DomainError(
            ErrorCode.INVALID_INPUT,
            f"queueTargetHours must be from 1 to {MAX_QUEUE_TARGET_HOURS}, or 0 to remove the target; got {target}",
            "queueTargetHours",
        )
    if change.auto_approve_domains is None:
        return change
    domains = list(dict.fromkeys(d.strip().lower() for d in change.auto_approve_domains))
    if len(domains) > MAX_AUTO_APPROVE_DOMAINS:
        raise DomainError(
            ErrorCode.INVALID_INPUT,
            f"at most {MAX_AUTO_APPROVE_DOMAINS} domains; {len(domains)} were given",
            "autoApproveDomains",
        )
    bad = [d for d in domains if not _DOMAIN.match(d)]
    if bad:
        shown = ", ".join(repr(d[:64]) for d in bad[:5])
        raise DomainError(
            ErrorCode.INVALID_INPUT,
            f"not a domain name: {shown} (letters, digits, '-' and '_' in dot-separated labels)",
            "autoApproveDomains",
        )
    return replace(change, auto_approve_domains=domains)


async def auto_approvals(
    session: AsyncSession,
    account_id: int,
    mode: AutoApproveMode,
    domains: Sequence[str],
    free: int,
    exclude: Collection[int] = (),
) -> list[User]:
    """Whom the auto-approval rule licenses into ``free`` licenses, in order (docs/behaviour.md, Automation).

    OVER_LIMIT and RELEASED users with an agent whose domain is in ``domains`` (any domain
    when empty), oldest entry first, then by id. ``exclude``: users this very write put in
    the queue (a release), who wait for an admin. So does a user whose approval was undone,
    for as long as it waits with the entry time the undo gave back: the UNDONE entry of an
    approval carries that time (server.domain.undo.apply).
    """
    if mode is AutoApproveMode.OFF or free <= 0:
        return []
    query = sa.select(User).where(
        User.account_id == account_id,  # type: ignore[arg-type]
        User.status == UserStatus.PENDING,  # type: ignore[arg-type]
        User.pending_reason.in_(AUTO_APPROVED_REASONS),  # type: ignore[union-attr]
        ~sa.exists().where(
            col(AuditEntry.user_id) == User.id,
            col(AuditEntry.action) == QueueAction.UNDONE,
            col(AuditEntry.queue_entered_at) == User.pending_since,
        ),
    )
    if exclude:
        query = query.where(User.id.not_in(list(exclude)))  # type: ignore[union-attr]
    if domains:
        query = query.where(
            sa.exists().where(
                Agent.user_id == User.id,  # type: ignore[arg-type]
                sa.func.lower(Agent.domain).in_(list(domains)),
            )
        )
    query = query.order_by(User.pending_since, User.id).limit(free)  # type: ignore[arg-type]
    return list((await session.execute(query)).scalars())


async def plan_settings(session: AsyncSession, account: Account, change: SettingsInput) -> SeatPlan:
    """Changing the settings: a lowered limit moves the most recently licensed to the queue;
    with the auto-approval rule on after the change, free licenses go to the queue's oldest."""
    assert account.id is not None
    change = check_settings(change)
    used = await count_users(session, account.id, UserStatus.LICENSED)
    limit = account.license_limit if change.license_limit is None else change.license_limit
    plan = SeatPlan(license_limit=limit, licenses_used_before=used)
    if used > limit:
        plan.move_to_pending = list(
            (
                await session.execute(
                    sa.select(User)
                    .where(User.account_id == account.id, User.status == UserStatus.LICENSED)  # type: ignore[arg-type]
                    .order_by(User.licensed_at.desc(), User.id.desc())  # type: ignore[union-attr]
                    .limit(used - limit)
                )
            ).scalars()
        )
    plan.approve = await auto_approvals(
        session,
        account.id,
        account.auto_approve if change.auto_approve is None else change.auto_approve,
        account.auto_approve_domains if change.auto_approve_domains is None else change.auto_approve_domains,
        limit - plan.licenses_used_after,
    )
    return plan


# ---------------------------------------------------------------------------- previews


async def _account(session: AsyncSession, account_id: int) -> Account:
    return (
        await session.execute(sa.select(Account).where(Account.id == account_id))  # type: ignore[arg-type]
    ).scalar_one()


async def refused(session: AsyncSession, account_id: int, error: DomainError) -> Preview:
    """The preview of a change applying would refuse with ``error``: nobody moves."""
    account = await _account(session, account_id)
    used = await count_users(session, account_id, UserStatus.LICENSED)
    empty = SeatPlan(license_limit=account.license_limit, licenses_used_before=used)
    return Preview(plan=empty, queue_version=version_of(account), errors=[error])


async def _preview(
    session: AsyncSession, account_id: int, planner: Callable[[Account], Awaitable[SeatPlan]]
) -> Preview:
    account = await _account(session, account_id)
    try:
        plan = await planner(account)
    except DomainError as error:
        return await refused(session, account_id, error)
    return Preview(plan=plan, queue_version=version_of(account))


async def preview_approval(session: AsyncSession, account_id: int, user_ids: Sequence[int]) -> Preview:
    """What ``approve`` would do now; writes nothing."""
    return await _preview(session, account_id, lambda account: plan_approval(session, account, user_ids))


async def preview_settings(session: AsyncSession, account_id: int, change: SettingsInput) -> Preview:
    """What ``update_settings`` would do now; writes nothing."""
    return await _preview(session, account_id, lambda account: plan_settings(session, account, change))
