"""Reclaiming seats (docs/behaviour.md, Reclaim): who has been idle, releasing licenses, swaps.

``inactive_page`` lists licensed users by their latest activity, idle longest first;
``release`` moves licensed users to the queue (reason ``RELEASED``); ``swap`` releases one
licensed user and approves one pending user in one transaction. Like every action they take
the account's lock first, refuse before writing anything, audit and publish per user, and
let the auto-approval rule fill licenses they free (server.domain.actions.auto_approve).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from server.domain.actions import auto_approve, first_agent
from server.domain.changes import (
    ActionResult,
    Actor,
    audit,
    check_ids,
    finish,
    load_users,
    lock_account,
    make_licensed,
    make_pending,
    queue_arrival,
    require_pending,
)
from server.domain.errors import DomainError, ErrorCode
from server.domain.models import ActivityRollup, PendingReason, QueueAction, User, UserStatus
from server.domain.reads.cursors import Keyset, Page, keyset_page
from server.domain.reads.rows import USER, USER_COLUMNS, UserRow, user_row
from server.domain.undo import records

MAX_INACTIVE_DAYS = 365
# The sort key of a user with no activity at all: before any event, so they come first.
NEVER = datetime(1970, 1, 1, tzinfo=UTC)

_R = ActivityRollup.__table__.c  # type: ignore[attr-defined]
_LAST = ActivityRollup.__table__.alias("last")  # type: ignore[attr-defined]
_U = USER.c


# ---------------------------------------------------------------------------- who is idle


@dataclass(frozen=True)
class InactiveFilter:
    account_id: int
    days: int
    now: datetime

    def check(self) -> None:
        if not 1 <= self.days <= MAX_INACTIVE_DAYS:
            raise DomainError(
                ErrorCode.INVALID_INPUT,
                f"'days' must be from 1 to {MAX_INACTIVE_DAYS}; got {self.days}",
                "days",
            )

    def rows(self) -> sa.Subquery:
        """Licensed users with the start of their latest event (NEVER without one), idle ones only.

        The latest start is the latest of the rollup rows of the user's latest day: two seeks
        per user in ``ix_activity_rollup_user_day``.
        """
        # Correlated to the user explicitly: nested twice, auto-correlation would not reach it.
        day = (
            sa.select(sa.func.max(_LAST.c.day))
            .where(_LAST.c.user_id == _U.id)
            .correlate(USER)
            .scalar_subquery()
        )
        latest = (
            sa.select(sa.func.max(_R.last_start))
            .where(_R.user_id == _U.id, _R.day == day)
            .correlate(USER)
            .scalar_subquery()
        )
        last = sa.func.coalesce(latest, sa.bindparam("never", NEVER, type_=_R.last_start.type))
        inner = (
            sa.select(*USER_COLUMNS, last.label("last_active"))
            .where(_U.account_id == self.account_id, _U.status == UserStatus.LICENSED)
            .subquery("licensed")
        )
        return inner


def _idle(filt: InactiveFilter) -> tuple[sa.Subquery, list[sa.ColumnElement[bool]]]:
    filt.check()
    inner = filt.rows()
    cutoff = sa.bindparam("cutoff", filt.now - timedelta(days=filt.days), type_=_R.last_start.type)
    return inner, [inner.c.last_active < cutoff]


async def inactive_page(
    session: AsyncSession, filt: InactiveFilter, first: int, after: str | None
) -> Page[UserRow]:
    """Licensed users with no activity that started in the last ``days`` days, least recently
    active first (never active first of all), then by id."""
    inner, where = _idle(filt)
    keyset = Keyset("inactive", (inner.c.last_active, inner.c.id), (datetime, int))
    columns = [inner.c[c.name] for c in USER_COLUMNS]
    return await keyset_page(session, keyset, columns, user_row, where, first, after)


async def inactive_count(session: AsyncSession, filt: InactiveFilter) -> int:
    inner, where = _idle(filt)
    return int(
        (await session.execute(sa.select(sa.func.count()).select_from(inner).where(*where))).scalar_one()
    )


# ---------------------------------------------------------------------------- release and swap


def _require_licensed(users: Sequence[User], field_name: str) -> None:
    not_licensed = [u for u in users if u.status is not UserStatus.LICENSED]
    if not_licensed:
        names = ", ".join(f"{u.display_name} ({u.id})" for u in not_licensed)
        raise DomainError(ErrorCode.CONFLICT, f"not licensed, nothing to release: {names}", field_name)


async def _release_one(session: AsyncSession, actor: Actor, user: User, detail: str, now: datetime) -> None:
    assert user.id is not None
    undo = records.release(user.licensed_at, user.licensed_until)
    make_pending(user, PendingReason.RELEASED, now)
    # What they recorded while licensed stays theirs: retention keeps it (docs/behaviour.md, Retention).
    user.licensed_until = now
    audit(session, actor, QueueAction.RELEASED, user, detail, now, undo=undo)
    queue_arrival(session, user, await first_agent(session, user.id), now)


async def release(
    session: AsyncSession, actor: Actor, user_ids: Sequence[int], now: datetime
) -> ActionResult:
    """Move licensed users to the queue (reason RELEASED), all or nothing."""
    actor.require_admin()
    ids = check_ids(user_ids, "userIds")
    account = await lock_account(session, actor.account_id)
    users = await load_users(session, actor.account_id, ids, "userIds")
    _require_licensed(users, "userIds")
    changes: list[tuple[QueueAction, int, int | None]] = []
    for user in users:
        await _release_one(session, actor, user, "released the license", now)
        assert user.id is not None
        changes.append((QueueAction.RELEASED, user.id, actor.admin_id))
    # The released wait for an admin: the rule fills their licenses with others only.
    approved, by_rule = await auto_approve(session, account, now, exclude=ids)
    usage, events = await finish(session, account, changes + by_rule, now)
    return ActionResult(account=account, usage=usage, events=events, users=[*users, *approved])


async def swap(
    session: AsyncSession, actor: Actor, release_user_id: int, approve_user_id: int, now: datetime
) -> ActionResult:
    """Release one licensed user and license one pending user in one transaction: the count of
    licensed users never changes, so the swap never passes over the limit or loses the seat."""
    actor.require_admin()
    if release_user_id == approve_user_id:
        raise DomainError(ErrorCode.CONFLICT, "a user cannot be swapped with itself", "approveUserId")
    account = await lock_account(session, actor.account_id)
    (released,) = await load_users(session, actor.account_id, [release_user_id], "releaseUserId")
    (approved,) = await load_users(session, actor.account_id, [approve_user_id], "approveUserId")
    _require_licensed([released], "releaseUserId")
    require_pending([approved], "approveUserId")
    assert released.id is not None and approved.id is not None
    await _release_one(
        session, actor, released, f"released the license for {approved.display_name} ({approved.id})", now
    )
    entered, reason, until = approved.pending_since, approved.pending_reason, approved.licensed_until
    assert reason is not None
    make_licensed(approved, now)
    audit(
        session,
        actor,
        QueueAction.APPROVED,
        approved,
        f"approved (was {reason.value}) in a swap for {released.display_name} ({released.id})",
        now,
        entered,
        records.approval(reason, until),
    )
    changes: list[tuple[QueueAction, int, int | None]] = [
        (QueueAction.RELEASED, released.id, actor.admin_id),
        (QueueAction.APPROVED, approved.id, actor.admin_id),
    ]
    _, by_rule = await auto_approve(session, account, now, exclude=[released.id])
    usage, events = await finish(session, account, changes + by_rule, now)
    return ActionResult(account=account, usage=usage, events=events, users=[released, approved])
