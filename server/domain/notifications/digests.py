"""Per-admin digest windows over the queue's arrivals, written to the outbox (docs/behaviour.md, Notifications).

The domain writes one :class:`QueueArrival` per arrival in the arrival's own transaction
(:mod:`server.domain.changes`). From there :func:`build_digests` looks, for every ADMIN with
``notify_on_pending``, at the arrivals after the admin's :class:`NotifyCursor`. The first
of them opens a window of ``PLM_NOTIFY_DIGEST_SECONDS``; once it has closed, one
:class:`OutboxMessage` holding every arrival of the window is written **and the cursor
advanced in the same transaction**, so a window becomes exactly one message whatever
crashes or restarts. VIEWERs and opted-out admins have their cursor moved past every
arrival instead: they never get mail, and opting back in does not replay what happened
meanwhile. Sending the message is the outbox's business (:mod:`server.infra.outbox`).
"""

from __future__ import annotations

import email.utils
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.domain import changes, reclaim
from server.domain.models import (
    Account,
    Admin,
    NotifyCursor,
    OutboxMessage,
    OutboxStatus,
    QueueArrival,
    Role,
)
from server.domain.notifications.render import INACTIVE_DAYS, Digest, DigestEntry, render_digest
from server.domain.ports import DigestSettings, Transactions
from server.domain.webhooks import outcomes as webhook_outcomes

DIGEST_LIST_LIMIT = 20
# Bounds the work of one tick for an admin whose cursor lags far behind (a long outage of
# the job): the next tick carries on.
MAX_WINDOWS_PER_TICK = 100
PENDING_TAB_PATH = "/users?tab=pending"


def pending_tab_url(settings: DigestSettings) -> str:
    return settings.public_url.rstrip("/") + PENDING_TAB_PATH


def insert_ignoring_conflict(session: AsyncSession, model: type[Any], values: dict[str, Any]) -> Any:
    # Both databases support ON CONFLICT DO NOTHING; it spares a savepoint and keeps a
    # concurrent insert by another process from failing the transaction.
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(model).values(**values).on_conflict_do_nothing()


# ---------------------------------------------------------------------------- opt-in


async def set_notify_on_pending(
    session: AsyncSession, admin_id: int, enabled: bool, now: datetime
) -> Admin | None:
    """Turn an admin's pending-user emails on or off; ``None`` if there is no such admin.

    Turning them on starts the admin's digests at the next arrival: what entered the queue
    while they were off is not mailed afterwards.
    """
    admin = await session.get(Admin, admin_id)
    if admin is None:
        return None
    if enabled and not admin.notify_on_pending:
        await _move_cursor(session, admin_id, await _max_arrival_id(session, admin.account_id), now)
    admin.notify_on_pending = enabled
    await session.flush()
    return admin


async def _max_arrival_id(session: AsyncSession, account_id: int) -> int:
    found = (
        await session.execute(
            sa.select(sa.func.max(QueueArrival.id)).where(col(QueueArrival.account_id) == account_id)
        )
    ).scalar_one_or_none()
    return int(found or 0)


async def _move_cursor(session: AsyncSession, admin_id: int, arrival_id: int, now: datetime) -> None:
    """Set the admin's cursor to ``arrival_id``, creating it if needed."""
    await session.execute(
        insert_ignoring_conflict(
            session, NotifyCursor, {"admin_id": admin_id, "last_arrival_id": arrival_id, "updated_at": now}
        )
    )
    await session.execute(
        sa.update(NotifyCursor)
        .where(col(NotifyCursor.admin_id) == admin_id)
        .values(last_arrival_id=arrival_id, updated_at=now)
    )


# ---------------------------------------------------------------------------- digests


async def build_digests(db: Transactions, settings: DigestSettings, now: datetime) -> int:
    """Write one outbox message per closed window per notified admin; returns how many."""
    window = timedelta(seconds=settings.notify_digest_seconds)
    async with db.read() as session:
        latest = (
            sa.select(sa.func.max(QueueArrival.id))
            .where(col(QueueArrival.account_id) == col(Admin.account_id))
            .scalar_subquery()
        )
        # When the admin's oldest unsent arrival came: its window is closed once this is
        # ``window`` old. Read here so a tick with only open windows writes nothing.
        first_unsent_at = (
            sa.select(col(QueueArrival.at))
            .where(
                col(QueueArrival.account_id) == col(Admin.account_id),
                col(QueueArrival.id) > sa.func.coalesce(col(NotifyCursor.last_arrival_id), 0),
            )
            .order_by(col(QueueArrival.id))
            .limit(1)
            .scalar_subquery()
        )
        rows = (
            await session.execute(
                sa.select(
                    col(Admin.id),
                    col(Admin.role),
                    col(Admin.notify_on_pending),
                    col(NotifyCursor.last_arrival_id),
                    latest,
                    first_unsent_at,
                )
                .select_from(Admin)
                .outerjoin(NotifyCursor, col(NotifyCursor.admin_id) == col(Admin.id))
                .where(
                    latest.is_not(None),
                    sa.or_(
                        col(NotifyCursor.last_arrival_id).is_(None),
                        col(NotifyCursor.last_arrival_id) < latest,
                    ),
                )
            )
        ).all()

    # Admins without a cursor start after the arrivals that came before they existed;
    # everyone who gets no mail moves past every arrival so far.
    skipped = [(r[0], int(r[4])) for r in rows if r[1] is not Role.ADMIN or not r[2]]
    starting = [r[0] for r in rows if r[1] is Role.ADMIN and r[2] and r[3] is None]
    if skipped or starting:
        async with db.write() as session:
            for admin_id, latest_id in skipped:
                await _move_cursor(session, admin_id, latest_id, now)
            for admin_id in starting:
                await _start_cursor(session, admin_id, now)
    notified = starting + [
        r[0]
        for r in rows
        if r[1] is Role.ADMIN and r[2] and r[3] is not None and r[5] is not None and r[5] + window <= now
    ]

    written = 0
    for admin_id in notified:
        for _ in range(MAX_WINDOWS_PER_TICK):
            async with db.write() as session:
                if not await _write_next_digest(session, settings, admin_id, now):
                    break
            written += 1
    return written


async def _start_cursor(session: AsyncSession, admin_id: int, now: datetime) -> None:
    admin = await session.get(Admin, admin_id)
    assert admin is not None
    before = (
        await session.execute(
            sa.select(sa.func.max(QueueArrival.id)).where(
                col(QueueArrival.account_id) == admin.account_id,
                col(QueueArrival.at) < admin.created_at,
            )
        )
    ).scalar_one_or_none()
    await session.execute(
        insert_ignoring_conflict(
            session,
            NotifyCursor,
            {"admin_id": admin_id, "last_arrival_id": int(before or 0), "updated_at": now},
        )
    )


async def _last_digest_at(session: AsyncSession, admin: Admin) -> datetime:
    """When the admin's previous digest was written, or else when the admin was created."""
    last = (
        await session.execute(
            sa.select(sa.func.max(OutboxMessage.created_at)).where(
                col(OutboxMessage.admin_id) == admin.id, col(OutboxMessage.kind) == "mail"
            )
        )
    ).scalar_one_or_none()
    found: datetime = last or admin.created_at
    return found


async def _write_next_digest(
    session: AsyncSession, settings: DigestSettings, admin_id: int, now: datetime
) -> bool:
    """Turn the admin's oldest closed window into an outbox message; False if there is none."""
    cursor = (
        await session.execute(
            sa.select(NotifyCursor).where(col(NotifyCursor.admin_id) == admin_id).with_for_update()
        )
    ).scalar_one_or_none()
    admin = await session.get(Admin, admin_id)
    # Re-checked under the lock: the admin may have opted out or left since the scan.
    if cursor is None or admin is None or admin.role is not Role.ADMIN or not admin.notify_on_pending:
        return False
    account_id = admin.account_id
    after = sa.and_(col(QueueArrival.account_id) == account_id, col(QueueArrival.id) > cursor.last_arrival_id)
    first = (
        await session.execute(
            sa.select(col(QueueArrival.id), col(QueueArrival.at))
            .where(after)
            .order_by(col(QueueArrival.id))
            .limit(1)
        )
    ).first()
    if first is None:
        return False
    first_id, window_start = first
    assert first_id is not None
    window_end = window_start + timedelta(seconds=settings.notify_digest_seconds)
    if now < window_end:
        return False
    # The window is the run of arrivals, in id order, before the first one at or after its
    # end; everything up to the last of them is then covered by this one message.
    beyond = (
        await session.execute(
            sa.select(sa.func.min(QueueArrival.id)).where(after, col(QueueArrival.at) >= window_end)
        )
    ).scalar_one_or_none()
    in_window = after if beyond is None else sa.and_(after, col(QueueArrival.id) < beyond)
    total, last = (
        await session.execute(sa.select(sa.func.count(), sa.func.max(QueueArrival.id)).where(in_window))
    ).one()
    assert last is not None
    last_id = int(last)
    entries = [
        DigestEntry(a.display_name, a.device_name, a.logon, a.reason)
        for a in (
            await session.execute(
                sa.select(QueueArrival)
                .where(in_window)
                .order_by(col(QueueArrival.id))
                .limit(DIGEST_LIST_LIMIT)
            )
        ).scalars()
    ]
    account = await session.get(Account, account_id)
    assert account is not None and account.id is not None and admin.id is not None
    usage = await changes.account_usage(session, account)
    idle = await reclaim.inactive_count(session, reclaim.InactiveFilter(account.id, INACTIVE_DAYS, now))
    digest = Digest(
        account_id=account.id,
        account_name=account.name,
        admin_id=admin.id,
        admin_name=admin.name,
        admin_email=admin.email,
        first_arrival_id=first_id,
        last_arrival_id=last_id,
        window_start=window_start,
        window_end=window_end,
        total=int(total),
        entries=entries,
        licenses_used=usage.licenses_used,
        license_limit=usage.license_limit,
        pending_count=usage.pending_count,
        link=pending_tab_url(settings),
        inactive_licensed=idle,
        # Webhooks the server disabled since this admin's last digest (docs/behaviour.md, Webhooks).
        notices=await webhook_outcomes.notices(session, account_id, await _last_digest_at(session, admin)),
    )
    msg = render_digest(digest, settings, now)
    session.add(
        OutboxMessage(
            account_id=account.id,
            admin_id=admin.id,
            message_id=str(msg["Message-ID"]),
            # The envelope wants the bare address; the header keeps the display name.
            sender=email.utils.parseaddr(settings.smtp_from)[1] or settings.smtp_from,
            recipient=admin.email,
            subject=str(msg["Subject"]),
            content=msg.as_string(),
            status=OutboxStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )
    cursor.last_arrival_id = last_id
    cursor.updated_at = now
    await session.flush()
    return True
