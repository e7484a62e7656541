"""Daily reminders (docs/behaviour.md, Notifications): what waits too long, and what is about to go.

For every ADMIN with ``notify_on_pending``, at most one email a day listing the account's
pending users past the queue target (``overdue``) and those whose retained activity starts
to expire within :data:`EXPIRING_DAYS` ("decide before their activity is deleted"). None
when there is nothing to say. The message goes through the outbox like a digest; its
Message-ID names the admin and the UTC day, so even two writers cannot send two that day,
and no reminder is written within :data:`REMINDER_HOURS` of the admin's previous one.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.domain import retention
from server.domain.activity.retained import retained
from server.domain.models import (
    Account,
    Admin,
    OutboxMessage,
    OutboxStatus,
    Role,
    User,
    UserStatus,
)
from server.domain.notifications.digests import insert_ignoring_conflict, pending_tab_url
from server.domain.notifications.render import Reminder, ReminderEntry, reminder_id, render_reminder
from server.domain.ports import DigestSettings, Transactions

EXPIRING_DAYS = 3
REMINDER_HOURS = 24
LIST_LIMIT = 20


@dataclass(frozen=True, slots=True)
class Due:
    """What one account's reminder lists (the same for each of its admins)."""

    overdue: list[ReminderEntry]
    overdue_total: int
    expiring: list[ReminderEntry]
    expiring_total: int

    def __bool__(self) -> bool:
        return bool(self.overdue_total or self.expiring_total)


async def due(session: AsyncSession, account: Account, now: datetime) -> Due:
    """The account's overdue pending users (oldest first) and those whose data expires soon."""
    assert account.id is not None
    pending = sa.and_(col(User.account_id) == account.id, col(User.status) == UserStatus.PENDING)
    overdue: list[ReminderEntry] = []
    overdue_total = 0
    if account.queue_target_hours is not None:
        late = sa.and_(pending, col(User.pending_since) <= now - timedelta(hours=account.queue_target_hours))
        overdue_total = int((await session.execute(sa.select(sa.func.count()).where(late))).scalar_one())
        rows = await session.execute(
            sa.select(col(User.display_name), col(User.pending_since))
            .where(late)
            .order_by(col(User.pending_since), col(User.id))
            .limit(LIST_LIMIT)
        )
        overdue = [
            ReminderEntry(name, since + timedelta(hours=account.queue_target_hours))
            for name, since in rows
            if since is not None
        ]
    # The oldest retained event of each pending user (what retention applies to), when it goes.
    oldest = {u: r.oldest_start for u, r in (await retained(session, [pending])).items() if r.oldest_start}
    # Expires at oldest + retentionDays: within EXPIRING_DAYS when oldest < this.
    soon = retention.cutoff(now + timedelta(days=EXPIRING_DAYS), account.retention_days)
    expiring_ids = sorted((start, user_id) for user_id, start in oldest.items() if start < soon)
    expiring_total = len(expiring_ids)
    names = {
        user_id: name
        for user_id, name in await session.execute(
            sa.select(col(User.id), col(User.display_name)).where(
                col(User.id).in_([u for _, u in expiring_ids[:LIST_LIMIT]])
            )
        )
    }
    expiring = [
        ReminderEntry(names[user_id], start + timedelta(days=account.retention_days))
        for start, user_id in expiring_ids[:LIST_LIMIT]
    ]
    return Due(overdue, overdue_total, expiring, expiring_total)


async def build_reminders(db: Transactions, settings: DigestSettings, now: datetime) -> int:
    """Write the reminders due now, one per notifying admin at most a day; returns how many."""
    since = now - timedelta(hours=REMINDER_HOURS)
    async with db.read() as session:
        recent = (
            sa.select(col(OutboxMessage.admin_id))
            .where(
                col(OutboxMessage.message_id).like("<plm-reminder.%"), col(OutboxMessage.created_at) > since
            )
            .scalar_subquery()
        )
        admins = (
            await session.execute(
                sa.select(col(Admin.id), col(Admin.account_id))
                .where(
                    col(Admin.role) == Role.ADMIN,
                    col(Admin.notify_on_pending).is_(True),
                    col(Admin.id).not_in(recent),
                )
                .order_by(col(Admin.account_id), col(Admin.id))
            )
        ).all()
    written = 0
    by_account: dict[int, list[int]] = {}
    for admin_id, account_id in admins:
        assert admin_id is not None
        by_account.setdefault(account_id, []).append(admin_id)
    for account_id, admin_ids in by_account.items():
        async with db.read() as session:
            account = await session.get(Account, account_id)
            assert account is not None
            found = await due(session, account, now)
        if not found:
            continue
        async with db.write() as session:
            for admin_id in admin_ids:
                written += await _write(session, settings, account, admin_id, found, now)
    return written


async def _write(
    session: AsyncSession,
    settings: DigestSettings,
    account: Account,
    admin_id: int,
    found: Due,
    now: datetime,
) -> int:
    admin = await session.get(Admin, admin_id)
    if admin is None or admin.role is not Role.ADMIN or not admin.notify_on_pending:
        return 0
    assert account.id is not None
    reminder = Reminder(
        account_id=account.id,
        account_name=account.name,
        admin_id=admin_id,
        admin_name=admin.name,
        admin_email=admin.email,
        overdue=found.overdue,
        overdue_total=found.overdue_total,
        expiring=found.expiring,
        expiring_total=found.expiring_total,
        target_hours=account.queue_target_hours,
        link=pending_tab_url(settings),
    )
    msg = render_reminder(reminder, settings, now)
    result = await session.execute(
        insert_ignoring_conflict(
            session,
            OutboxMessage,
            {
                "account_id": account.id,
                "admin_id": admin_id,
                "message_id": reminder_id(settings, account.id, admin_id, now),
                "sender": email.utils.parseaddr(settings.smtp_from)[1] or settings.smtp_from,
                "recipient": admin.email,
                "subject": str(msg["Subject"]),
                "content": msg.as_string(),
                "status": OutboxStatus.PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            },
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
