"""What every change to an account's queue shares: who acts, the account lock, usage, the
audit and arrival rows, and the events published after the commit.

Every function here runs inside one write transaction the caller opened with
:meth:`server.infra.db.Database.write`. A refusal raises :class:`DomainError` before anything
is written, or the caller's transaction rolls back, so a refused action changes nothing.
Each change writes one audit entry per affected user and records one :class:`QueueEvent`
per affected user, which the database publishes after the commit.

The license invariant (licensed users <= ``licenseLimit``) rests on :func:`lock_account`:
every path that can license someone first takes the account's lock, then counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col

from server.domain.errors import DomainError, ErrorCode, PermissionDenied
from server.domain.events import AccountUsage, QueueEvent, record
from server.domain.models import (
    Account,
    Agent,
    AuditEntry,
    PendingReason,
    QueueAction,
    QueueArrival,
    Role,
    User,
    UserStatus,
)
from server.domain.webhooks import enqueue as webhooks

MAX_BULK_IDS = 500
MAX_LICENSE_LIMIT = 10_000_000

# Statements every admission group runs, built once: building a statement and its cache key
# costs more than running it on SQLite.
_ACCOUNT: sa.Table = Account.__table__  # type: ignore[attr-defined]
_USER: sa.Table = User.__table__  # type: ignore[attr-defined]
# populate_existing: an account already loaded in the session is read again under the lock,
# so its versions are the row's (seat plans and remembered seat counts compare them).
_LOCK = (
    sa.select(Account)
    .where(col(Account.id) == sa.bindparam("account_id"))
    .with_for_update()
    .execution_options(populate_existing=True)
)
_COUNT = (
    sa.select(sa.func.count())
    .select_from(_USER)
    .where(_USER.c.account_id == sa.bindparam("account_id"), _USER.c.status == sa.bindparam("status"))
)
#: plan -> the UPDATE of the versions, returning them (core: the caller records what it needs
#: on a loaded Account itself, as :func:`finish` does)
_BUMP = {
    plan: sa.update(_ACCOUNT)
    .where(_ACCOUNT.c.id == sa.bindparam("account_id"))
    .values(
        queue_version=_ACCOUNT.c.queue_version + 1,
        **({"plan_version": _ACCOUNT.c.plan_version + 1} if plan else {}),
    )
    .returning(_ACCOUNT.c.queue_version, _ACCOUNT.c.plan_version)
    for plan in (False, True)
}


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: an admin of ``account_id``, or the system (``admin_id`` None)."""

    account_id: int
    admin_id: int | None
    role: Role

    @classmethod
    def system(cls, account_id: int) -> Actor:
        return cls(account_id=account_id, admin_id=None, role=Role.ADMIN)

    def require_admin(self) -> None:
        if self.role is not Role.ADMIN:
            raise PermissionDenied("this action needs the ADMIN role; VIEWERs may only read")


@dataclass
class ActionResult:
    """What an action changed, for the API to show and the live queue to publish."""

    account: Account
    usage: AccountUsage
    events: list[QueueEvent] = field(default_factory=list)
    users: list[User] = field(default_factory=list)
    agent: Agent | None = None
    removed_user_ids: list[int] = field(default_factory=list)


# ---------------------------------------------------------------------------- the account


async def lock_account(session: AsyncSession, account_id: int) -> Account:
    """Load the account, holding its lock until the transaction ends.

    PostgreSQL: ``SELECT … FOR UPDATE`` on the account row. SQLite: the transaction already
    holds the database's write lock (``BEGIN IMMEDIATE``) and ``FOR UPDATE`` renders nothing.
    """
    account = (await session.execute(_LOCK, {"account_id": account_id})).scalar_one_or_none()
    if account is None:
        raise DomainError(ErrorCode.NOT_FOUND, f"account {account_id} does not exist")
    return account


async def lock_accounts(session: AsyncSession, account_ids: Iterable[int]) -> None:
    """:func:`lock_account` for several accounts, always in id order so two callers never deadlock."""
    ids = sorted(set(account_ids))
    if ids:
        await session.execute(
            sa.select(col(Account.id))
            .where(col(Account.id).in_(ids))
            .order_by(col(Account.id))
            .with_for_update()
        )


async def count_users(session: AsyncSession, account_id: int, status: UserStatus) -> int:
    return int((await session.execute(_COUNT, {"account_id": account_id, "status": status})).scalar_one())


async def account_usage(
    session: AsyncSession, account: Account, counts: tuple[int, int] | None = None
) -> AccountUsage:
    """The account's usage now. ``counts``: the licensed and pending users, when the caller
    knows them (it counted under the account's lock and knows what it changed since)."""
    assert account.id is not None
    licensed, pending = counts or (
        await count_users(session, account.id, UserStatus.LICENSED),
        await count_users(session, account.id, UserStatus.PENDING),
    )
    return AccountUsage(
        account_id=account.id,
        license_limit=account.license_limit,
        licenses_used=licensed,
        pending_count=pending,
        manual_review=account.manual_review,
        plan_version=account.plan_version,
    )


async def bump_queue_version(
    session: AsyncSession, account_id: int, *, plan: bool = False
) -> tuple[int, int]:
    """Mark the account's queue as changed; returns the new ``(queue_version, plan_version)``.

    ``queue_version`` keys the cached queue pages: every write that changes what the queue
    shows bumps it. ``plan``: the write also changes what a seat plan depends on (who is
    pending or licensed, their reasons and order, the limit, the settings), so it bumps
    ``plan_version`` too (server.domain.plans); retained activity merely growing does not.
    """
    conn = await session.connection()
    row = (await conn.execute(_BUMP[plan], {"account_id": account_id})).one()
    return int(row[0]), int(row[1])


async def bump_account(session: AsyncSession, account: Account, *, plan: bool) -> tuple[int, int]:
    """:func:`bump_queue_version` for a loaded ``account``, whose new versions are recorded
    as loaded: the row already holds them, so no second UPDATE follows."""
    assert account.id is not None
    version, plan_version = await bump_queue_version(session, account.id, plan=plan)
    set_committed_value(account, "queue_version", version)
    set_committed_value(account, "plan_version", plan_version)
    return version, plan_version


# ---------------------------------------------------------------------------- the rows of a change


def audit_row(
    account_id: int,
    actor: Actor | None,
    action: QueueAction,
    user_id: int,
    display_name: str,
    detail: str,
    now: datetime,
    queue_entered_at: datetime | None = None,
    undo: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One audit entry's columns: every action and every admission builds them here.

    ``undo``: what undoing the entry needs (server.domain.undo.records); None: not reversible.
    """
    return {
        "account_id": account_id,
        "at": now,
        "actor_id": actor.admin_id if actor else None,
        "action": action,
        "user_id": user_id,
        "user_display_name": display_name,
        "detail": detail,
        "queue_entered_at": queue_entered_at,
        "undo": undo,
    }


def arrival_row(
    account_id: int,
    user_id: int,
    display_name: str,
    device_name: str,
    logon: str,
    reason: PendingReason,
    now: datetime,
) -> dict[str, Any]:
    """One queue arrival's columns (what the admins' digest lists): a user entering the queue."""
    return {
        "account_id": account_id,
        "user_id": user_id,
        "display_name": display_name,
        "device_name": device_name,
        "logon": logon,
        "reason": reason,
        "at": now,
    }


def audit(
    session: AsyncSession,
    actor: Actor | None,
    action: QueueAction,
    user: User,
    detail: str,
    now: datetime,
    queue_entered_at: datetime | None = None,
    undo: dict[str, Any] | None = None,
) -> AuditEntry:
    """Write the audit entry of one action on ``user``."""
    assert user.id is not None
    row = audit_row(
        user.account_id, actor, action, user.id, user.display_name, detail, now, queue_entered_at, undo
    )
    entry = AuditEntry(**row)
    session.add(entry)
    return entry


def queue_arrival(session: AsyncSession, user: User, agent: Agent | None, now: datetime) -> None:
    """Record that ``user`` (seen on ``agent``) entered the queue."""
    assert user.id is not None and user.pending_reason is not None
    device, logon = (agent.device_name, f"{agent.domain}\\{agent.logon_name}") if agent else ("", "")
    row = arrival_row(user.account_id, user.id, user.display_name, device, logon, user.pending_reason, now)
    session.add(QueueArrival(**row))


async def finish(
    session: AsyncSession,
    account: Account,
    changes: Sequence[tuple[QueueAction, int, int | None]],
    now: datetime,
    *,
    target_user_id: int | None = None,
    plan_changed: bool = True,
    counts: tuple[int, int] | None = None,
) -> tuple[AccountUsage, list[QueueEvent]]:
    """Flush, bump the versions, compute usage and record one event per change.

    ``target_user_id``: for an assign or a merge, the user the pending one became part of.
    ``plan_changed``: False for a write that changed nothing a seat plan depends on.
    ``counts``: the licensed and pending users after the change, when the caller knows
    them (admission: counted under the lock, plus what it admitted); else they are counted.
    """
    assert account.id is not None
    await session.flush()
    version, _ = await bump_account(session, account, plan=plan_changed)
    usage = await account_usage(session, account, counts)
    events = [
        QueueEvent(
            action=action,
            account_id=account.id,
            user_id=user_id,
            at=now,
            actor_id=actor_id,
            usage=usage,
            queue_version=version,
            target_user_id=target_user_id,
        )
        for action, user_id, actor_id in changes
    ]
    record(session, events)
    await webhooks.enqueue(session, events)  # their deliveries, in this transaction
    return usage, events


def check_ids(user_ids: Sequence[int], field_name: str) -> list[int]:
    ids = list(dict.fromkeys(user_ids))
    if not ids:
        raise DomainError(ErrorCode.INVALID_INPUT, "give at least one user id", field_name)
    if len(ids) > MAX_BULK_IDS:
        raise DomainError(
            ErrorCode.INVALID_INPUT,
            f"at most {MAX_BULK_IDS} ids at once; {len(ids)} were given",
            field_name,
        )
    return ids


async def load_users(
    session: AsyncSession, account_id: int, user_ids: Sequence[int], field_name: str
) -> list[User]:
    """The users with these ids in this account, in the order given; NOT_FOUND if any is missing."""
    rows = (
        await session.execute(
            sa.select(User).where(User.account_id == account_id, User.id.in_(user_ids))  # type: ignore[union-attr,arg-type]
        )
    ).scalars()
    found = {u.id: u for u in rows}
    missing = [i for i in user_ids if i not in found]
    if missing:
        raise DomainError(
            ErrorCode.NOT_FOUND,
            f"no user with id {', '.join(map(str, missing))}",
            field_name,
            missing=missing,
        )
    return [found[i] for i in user_ids]


def require_pending(users: Iterable[User], field_name: str) -> None:
    not_pending = [u for u in users if u.status is not UserStatus.PENDING]
    if not_pending:
        names = ", ".join(f"{u.display_name} ({u.id})" for u in not_pending)
        raise DomainError(
            ErrorCode.NOT_PENDING,
            f"not pending: {names}",
            field_name,
            not_pending=[u.id for u in not_pending],
        )


def make_pending(user: User, reason: PendingReason, now: datetime) -> None:
    user.status = UserStatus.PENDING
    user.pending_reason = reason
    user.pending_since = now
    user.licensed_at = None


def make_licensed(user: User, now: datetime) -> None:
    user.status = UserStatus.LICENSED
    user.licensed_at = now
    user.pending_reason = None
    user.pending_since = None
