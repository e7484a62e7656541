"""Pending-queue notifications (SPEC §6): per-admin digest windows, the outbox, SMTP delivery.

The domain writes one :class:`QueueArrival` per arrival in the arrival's own transaction
(:mod:`server.licensing`). From there:

* :func:`build_digests` looks, for every ADMIN with ``notify_on_pending``, at the arrivals
  after the admin's :class:`NotifyCursor`. The first of them opens a window of
  ``PLM_NOTIFY_DIGEST_SECONDS``; once it has closed, one :class:`OutboxMessage` holding
  every arrival of the window is written **and the cursor advanced in the same
  transaction**, so a window becomes exactly one message whatever crashes or restarts.
  VIEWERs and opted-out admins have their cursor moved past every arrival instead: they
  never get mail, and opting back in does not replay what happened meanwhile.
* :func:`deliver_outbox` claims due messages, hands them to the SMTP server and marks a
  message sent only after the server's 250. Connection trouble and 4xx replies are
  retried with exponential backoff; a 5xx reply marks the message failed. Delivery is at
  least once: a crash between the 250 and our commit resends the same bytes, with the same
  ``Message-ID``, so the repeat is recognisable.

Nothing here imports Starlette or GraphQL: the scheduled jobs (:mod:`server.jobs`) call in.
"""

from __future__ import annotations

import email.policy
import email.utils
import html
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlparse

import aiosmtplib
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.domain import licensing
from server.domain.models import (
    Account,
    Admin,
    NotifyCursor,
    OutboxMessage,
    OutboxStatus,
    PendingReason,
    QueueArrival,
    Role,
)
from server.infra.db import Database
from server.infra.settings import Settings

log = logging.getLogger(__name__)

DIGEST_LIST_LIMIT = 20
# A sender pushes a claimed message's next attempt this far ahead before talking to the
# SMTP server; if it dies mid-delivery the message is due again after this long.
CLAIM_SECONDS = 300
BACKOFF_FIRST_SECONDS = 15
BACKOFF_CAP_SECONDS = 600
SMTP_TIMEOUT_SECONDS = 30
DELIVERY_BATCH = 50
# Bounds the work of one tick for an admin whose cursor lags far behind (a long outage of
# the job): the next tick carries on.
MAX_WINDOWS_PER_TICK = 100
PENDING_TAB_PATH = "/users?tab=pending"

_REASONS = {
    PendingReason.OVER_LIMIT: "no license free",
    PendingReason.MANUAL_REVIEW: "manual review",
}

Clock = Callable[[], datetime]

# CRLF line ends, and 7-bit clean bodies (quoted-printable for non-ASCII names), so the
# message goes through any SMTP server, with or without 8BITMIME.
_POLICY = email.policy.SMTP.clone(cte_type="7bit")


def backoff_seconds(attempts: int) -> int:
    """Delay before the next try after ``attempts`` failed ones: 15 s, 30 s, 60 s … 10 min."""
    return int(min(BACKOFF_FIRST_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_CAP_SECONDS))


def pending_tab_url(settings: Settings) -> str:
    return settings.public_url.rstrip("/") + PENDING_TAB_PATH


def _insert_ignoring_conflict(session: AsyncSession, model: type[Any], values: dict[str, Any]) -> Any:
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
        _insert_ignoring_conflict(
            session, NotifyCursor, {"admin_id": admin_id, "last_arrival_id": arrival_id, "updated_at": now}
        )
    )
    await session.execute(
        sa.update(NotifyCursor)
        .where(col(NotifyCursor.admin_id) == admin_id)
        .values(last_arrival_id=arrival_id, updated_at=now)
    )


# ---------------------------------------------------------------------------- digests


@dataclass(frozen=True, slots=True)
class DigestEntry:
    display_name: str
    device_name: str
    logon: str
    reason: PendingReason


@dataclass(frozen=True, slots=True)
class Digest:
    """Everything one digest email says."""

    account_id: int
    account_name: str
    admin_id: int
    admin_name: str
    admin_email: str
    first_arrival_id: int
    last_arrival_id: int
    window_start: datetime
    window_end: datetime
    total: int
    entries: list[DigestEntry]
    licenses_used: int
    license_limit: int
    pending_count: int
    link: str

    @property
    def licenses_available(self) -> int:
        return max(self.license_limit - self.licenses_used, 0)


def _one_line(text: str) -> str:
    # Names reach mail headers and plain text; a line break there could forge headers.
    return "".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in text).strip()


def message_id(settings: Settings, account_id: int, admin_id: int, first_id: int, last_id: int) -> str:
    """Derived from (account, admin, window), so a redelivery carries the same id."""
    host = urlparse(settings.public_url).hostname or "localhost"
    return f"<plm-digest.{account_id}.{admin_id}.{first_id}-{last_id}@{host}>"


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def render_digest(digest: Digest, settings: Settings, now: datetime) -> EmailMessage:
    """The digest as a multipart/alternative email (plain text and HTML)."""
    account = _one_line(digest.account_name)
    entered = _plural(digest.total, "user entered", "users entered")
    subject = f"{entered} the Pending Licenses queue of {account}"
    window = (
        f"between {digest.window_start:%Y-%m-%d %H:%M:%S} and {digest.window_end:%H:%M:%S} UTC"
    )
    more = digest.total - len(digest.entries)
    usage = (
        f"Licenses: {digest.licenses_used} of {digest.license_limit} used, "
        f"{digest.licenses_available} available. "
        f"{_plural(digest.pending_count, 'user is', 'users are')} waiting in the queue."
    )
    why = (
        f"You receive this because you are an admin of {account} with pending-user "
        "notifications on; you can turn them off in your notification settings."
    )

    lines = [f"Hello {_one_line(digest.admin_name)},", ""]
    lines += [f"{entered} the Pending Licenses queue {window}:", ""]
    for e in digest.entries:
        lines.append(
            f"  - {_one_line(e.display_name)} ({_one_line(e.logon)} on {_one_line(e.device_name)})"
            f": {_REASONS[e.reason]}"
        )
    if more > 0:
        lines.append(f"  … and {more} more.")
    lines += ["", usage, "", f"Review them: {digest.link}", "", "-- ", why]
    text = "\n".join(lines) + "\n"

    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(e.display_name)}</td><td>{esc(e.device_name)}</td>"
        f"<td>{esc(e.logon)}</td><td>{esc(_REASONS[e.reason])}</td></tr>"
        for e in digest.entries
    )
    more_html = f"<p>… and {more} more.</p>" if more > 0 else ""
    body_html = (
        "<!doctype html><html><body>"
        f"<p>Hello {esc(_one_line(digest.admin_name))},</p>"
        f"<p><strong>{esc(entered)}</strong> the Pending Licenses queue {esc(window)}:</p>"
        "<table><thead><tr><th align=left>Name</th><th align=left>Device</th>"
        "<th align=left>Logon</th><th align=left>Reason</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>{more_html}"
        f"<p>{esc(usage)}</p>"
        f'<p><a href="{esc(digest.link, quote=True)}">Review them on the Pending Licenses tab</a></p>'
        f"<hr><p><small>{esc(why)}</small></p>"
        "</body></html>\n"
    )

    msg = EmailMessage(policy=_POLICY)
    msg["Subject"] = subject
    msg["From"] = settings.smtp_from
    msg["To"] = email.utils.formataddr((_one_line(digest.admin_name), digest.admin_email))
    msg["Date"] = email.utils.format_datetime(now.astimezone(UTC))
    msg["Message-ID"] = message_id(
        settings, digest.account_id, digest.admin_id, digest.first_arrival_id, digest.last_arrival_id
    )
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(text)
    msg.add_alternative(body_html, subtype="html")
    return msg


async def build_digests(db: Database, settings: Settings, now: datetime) -> int:
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
        _insert_ignoring_conflict(
            session,
            NotifyCursor,
            {"admin_id": admin_id, "last_arrival_id": int(before or 0), "updated_at": now},
        )
    )


async def _write_next_digest(session: AsyncSession, settings: Settings, admin_id: int, now: datetime) -> bool:
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
    after = sa.and_(
        col(QueueArrival.account_id) == account_id, col(QueueArrival.id) > cursor.last_arrival_id
    )
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
                sa.select(QueueArrival).where(in_window).order_by(col(QueueArrival.id)).limit(DIGEST_LIST_LIMIT)
            )
        ).scalars()
    ]
    account = await session.get(Account, account_id)
    assert account is not None and account.id is not None and admin.id is not None
    usage = await licensing.account_usage(session, account)
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


# ---------------------------------------------------------------------------- delivery


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    logged: int = 0
    # Claimed by this sender, then re-claimed by another before this one reached it.
    lost: int = 0


@dataclass(frozen=True, slots=True)
class _Claimed:
    id: int
    message_id: str
    sender: str
    recipient: str
    content: str
    attempts: int
    # The claim's deadline, as written: the token that says the row is still ours.
    claimed_until: datetime


async def _claim(db: Database, now: datetime, limit: int) -> list[_Claimed]:
    """Take up to ``limit`` due messages for this sender by pushing their next attempt ahead.

    ``FOR UPDATE SKIP LOCKED`` lets several senders on PostgreSQL take disjoint rows; on
    SQLite it renders nothing and the write transaction (BEGIN IMMEDIATE) serialises them.
    """
    async with db.write() as session:
        rows = list(
            (
                await session.execute(
                    sa.select(OutboxMessage)
                    .where(
                        col(OutboxMessage.status) == OutboxStatus.PENDING,
                        col(OutboxMessage.next_attempt_at) <= now,
                    )
                    .order_by(col(OutboxMessage.next_attempt_at), col(OutboxMessage.id))
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).scalars()
        )
        claimed = []
        for row in rows:
            assert row.id is not None
            row.next_attempt_at = now + timedelta(seconds=CLAIM_SECONDS)
            claimed.append(
                _Claimed(
                    row.id, row.message_id, row.sender, row.recipient, row.content, row.attempts,
                    row.next_attempt_at,
                )
            )
    return claimed


async def _renew_claim(db: Database, message: _Claimed, now: datetime) -> bool:
    """Push the claim ``CLAIM_SECONDS`` past ``now`` if the row is still claimed by us."""
    async with db.write() as session:
        renewed = await session.execute(
            sa.update(OutboxMessage)
            .where(
                col(OutboxMessage.id) == message.id,
                col(OutboxMessage.status) == OutboxStatus.PENDING,
                col(OutboxMessage.next_attempt_at) == message.claimed_until,
            )
            .values(next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS))
        )
    return bool(renewed.rowcount == 1)  # type: ignore[attr-defined]


async def _mark(db: Database, message: _Claimed, **values: Any) -> None:
    async with db.write() as session:
        await session.execute(
            sa.update(OutboxMessage)
            .where(col(OutboxMessage.id) == message.id, col(OutboxMessage.status) == OutboxStatus.PENDING)
            .values(**values)
        )


async def _mark_sent(db: Database, message: _Claimed, now: datetime) -> None:
    await _mark(
        db,
        message,
        status=OutboxStatus.SENT,
        attempts=message.attempts + 1,
        sent_at=now,
        last_error=None,
    )


async def _mark_retry(db: Database, message: _Claimed, now: datetime, error: str) -> None:
    attempts = message.attempts + 1
    delay = backoff_seconds(attempts)
    log.warning(
        "mail %s to %s not delivered (attempt %d): %s; retrying in %d s",
        message.message_id, message.recipient, attempts, error, delay,
    )
    await _mark(
        db,
        message,
        attempts=attempts,
        next_attempt_at=now + timedelta(seconds=delay),
        last_error=error[:2048],
    )


async def _mark_failed(db: Database, message: _Claimed, now: datetime, error: str) -> None:
    log.error("mail %s to %s refused for good: %s", message.message_id, message.recipient, error)
    await _mark(
        db, message, status=OutboxStatus.FAILED, attempts=message.attempts + 1, last_error=error[:2048]
    )


def smtp_client(settings: Settings) -> aiosmtplib.SMTP:
    """An SMTP client for ``PLM_SMTP_*``; ``auto`` TLS upgrades with STARTTLS when offered."""
    assert settings.smtp_host is not None
    start_tls: bool | None = {"auto": None, "none": False, "starttls": True, "tls": False}[settings.smtp_tls]
    return aiosmtplib.SMTP(
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_user,
        password=settings.smtp_password,
        use_tls=settings.smtp_tls == "tls",
        start_tls=start_tls,
        timeout=SMTP_TIMEOUT_SECONDS,
    )


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def _refusal_code(exc: aiosmtplib.SMTPException) -> int | None:
    """The SMTP reply code that refused a message, if the server gave one."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        # One recipient per message; with several, any temporary refusal is worth a retry.
        return min(codes) if codes else None
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return exc.code
    return None


async def deliver_outbox(
    db: Database, settings: Settings, clock: Clock, *, limit: int = DELIVERY_BATCH
) -> DeliveryReport:
    """Send due outbox messages over one SMTP connection; see the module docstring for the rules."""
    report = DeliveryReport()
    claimed = await _claim(db, clock(), limit)
    if not claimed:
        return report
    if settings.smtp_host is None:
        for message in claimed:
            _log_unsent(message)
            await _mark(db, message, status=OutboxStatus.LOGGED, attempts=message.attempts + 1)
            report.logged += 1
        return report

    client = smtp_client(settings)
    try:
        await client.connect()
    except (aiosmtplib.SMTPException, OSError) as exc:
        # Connecting, TLS and login say nothing about the messages themselves (a refused
        # login is a configuration an operator fixes): every message waits and retries.
        for message in claimed:
            await _mark_retry(db, message, clock(), f"connecting to {settings.smtp_host}: {_describe(exc)}")
            report.retried += 1
        return report

    try:
        await _send_all(db, client, claimed, clock, report)
    finally:
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, OSError):
            client.close()
    return report


async def _send_all(
    db: Database,
    client: aiosmtplib.SMTP,
    claimed: Sequence[_Claimed],
    clock: Clock,
    report: DeliveryReport,
) -> None:
    for i, message in enumerate(claimed):
        # A slow batch (an SMTP server timing out message after message) can outlast its
        # claim, and another sender may then have taken the row: renew the claim just before
        # each send, and skip a row that is no longer ours rather than send it twice.
        if not await _renew_claim(db, message, clock()):
            report.lost += 1
            continue
        try:
            await client.sendmail(message.sender, [message.recipient], message.content)
        except aiosmtplib.SMTPException as exc:
            code = _refusal_code(exc)
            if code is not None and 500 <= code < 600:
                await _mark_failed(db, message, clock(), _describe(exc))
                report.failed += 1
            elif code is not None:
                await _mark_retry(db, message, clock(), _describe(exc))
                report.retried += 1
                # A 4xx may come with a dropped connection (421); the rest wait for the next tick.
                if not client.is_connected:
                    await _retry_rest(db, claimed[i + 1 :], clock, report, "connection closed by the server")
                    return
            else:
                await _retry_rest(db, claimed[i:], clock, report, _describe(exc))
                return
        except OSError as exc:
            await _retry_rest(db, claimed[i:], clock, report, _describe(exc))
            return
        else:
            await _mark_sent(db, message, clock())
            report.sent += 1


async def _retry_rest(
    db: Database, rest: Sequence[_Claimed], clock: Clock, report: DeliveryReport, error: str
) -> None:
    for message in rest:
        await _mark_retry(db, message, clock(), error)
        report.retried += 1


def _log_unsent(message: _Claimed) -> None:
    parsed = email.message_from_string(message.content, policy=email.policy.default)
    body = parsed.get_body(preferencelist=("plain",)) if isinstance(parsed, EmailMessage) else None
    text = body.get_content() if body is not None else message.content
    log.info(
        "no SMTP server configured (PLM_SMTP_HOST): mail %s to %s logged instead of sent; "
        "it stays in the outbox.\nSubject: %s\n%s",
        message.message_id, message.recipient, parsed["Subject"], text,
    )
