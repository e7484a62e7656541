"""What one delivery attempt's outcome does: to the delivery, and to its endpoint.

* **delivered** on any 2xx: the delivery is done and the endpoint is no longer failing.
* **retried** otherwise, after about 1 s, 5 s, 30 s, 2 min, 10 min, then every hour, each
  with ±20 % jitter (so a recovering receiver is not hit by every sender at once), until
  a try :data:`GIVE_UP_AFTER` after the event fails too; then the delivery fails for good.
* **gone**: a 410 fails the delivery and disables the endpoint at once.
* An endpoint failing for :data:`GIVE_UP_AFTER` (every attempt since its first failure
  failed) is disabled. Disabling records ``disabled_reason`` and fails whatever was still
  waiting for it; admins read the reason in their next digest (:func:`notices`).

Every write here is conditional on the delivery still waiting, so an admin's change that
got there first (a deletion, a disable) wins.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.domain.models import OutboxMessage, OutboxStatus
from server.domain.webhooks import urls
from server.domain.webhooks.manage import fail_waiting
from server.domain.webhooks.tables import Webhook

RETRY_SECONDS = (1, 5, 30, 120, 600)
HOURLY_SECONDS = 3600
JITTER = 0.2
GIVE_UP_AFTER = timedelta(days=3)
ERROR_LIMIT = 500


def retry_delay(attempts: int, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait after ``attempts`` failed attempts: 1, 5, 30, 120, 600, then 3600, ±20 %."""
    base = RETRY_SECONDS[attempts - 1] if 1 <= attempts <= len(RETRY_SECONDS) else HOURLY_SECONDS
    return base * (1 + JITTER * (2 * rand() - 1))


@dataclass(frozen=True, slots=True)
class Attempt:
    """A claimed delivery, as its outcome needs it."""

    id: int
    webhook_id: int
    attempts: int
    created_at: datetime
    is_test: bool


def _when(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC"


async def _mark(session: AsyncSession, attempt: Attempt, **values: object) -> bool:
    done = await session.execute(
        sa.update(OutboxMessage)
        .where(col(OutboxMessage.id) == attempt.id, col(OutboxMessage.status) == OutboxStatus.PENDING)
        .values(attempts=attempt.attempts + 1, **values)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


async def delivered(session: AsyncSession, attempts: Sequence[tuple[Attempt, int]], now: datetime) -> None:
    """Deliveries the receivers accepted (with their status codes): a few statements for many."""
    by_code: dict[int, list[int]] = {}
    for attempt, code in attempts:
        by_code.setdefault(code, []).append(attempt.id)
    for code, ids in by_code.items():
        await session.execute(
            sa.update(OutboxMessage)
            .where(col(OutboxMessage.id).in_(ids), col(OutboxMessage.status) == OutboxStatus.PENDING)
            .values(
                attempts=col(OutboxMessage.attempts) + 1,
                status=OutboxStatus.SENT,
                sent_at=now,
                response_code=code,
                last_error=None,
            )
        )
    await session.execute(
        sa.update(Webhook)
        .where(
            col(Webhook.id).in_({a.webhook_id for a, _ in attempts}),
            col(Webhook.failing_since).is_not(None),
        )
        .values(failing_since=None)
    )


async def skipped(session: AsyncSession, attempt: Attempt, reason: str) -> None:
    """Not attempted and never will be (the webhook is disabled)."""
    await session.execute(
        sa.update(OutboxMessage)
        .where(col(OutboxMessage.id) == attempt.id, col(OutboxMessage.status) == OutboxStatus.PENDING)
        .values(status=OutboxStatus.FAILED, last_error=reason)
    )


async def disable(session: AsyncSession, webhook_id: int, reason: str, now: datetime) -> None:
    """The server disables an endpoint: the reason is kept, waiting deliveries fail."""
    await session.execute(
        sa.update(Webhook)
        .where(col(Webhook.id) == webhook_id, col(Webhook.enabled).is_(True))
        .values(enabled=False, disabled_reason=reason[:512], disabled_at=now, updated_at=now)
    )
    await fail_waiting(session, webhook_id, f"not sent: {reason}"[:ERROR_LIMIT])


async def failed(
    session: AsyncSession,
    attempt: Attempt,
    now: datetime,
    error: str,
    code: int | None,
    *,
    gone: bool = False,
    delay: float | None = None,
) -> str | None:
    """Record a failed attempt; returns the reason the endpoint was disabled, if it was."""
    error = error[:ERROR_LIMIT]
    if gone:
        reason = f"the endpoint answered 410 Gone on {_when(now)}"
        await _mark(session, attempt, status=OutboxStatus.FAILED, last_error=error, response_code=code)
        await disable(session, attempt.webhook_id, reason, now)
        return reason
    webhook = await session.get(Webhook, attempt.webhook_id, with_for_update=True)
    if webhook is not None and webhook.enabled and not attempt.is_test:
        if webhook.failing_since is None:
            webhook.failing_since = now
        elif now - webhook.failing_since >= GIVE_UP_AFTER:
            reason = f"failing since {_when(webhook.failing_since)} (3 days); last error: {error}"
            await _mark(session, attempt, status=OutboxStatus.FAILED, last_error=error, response_code=code)
            await disable(session, attempt.webhook_id, reason, now)
            return reason
    wait = retry_delay(attempt.attempts + 1) if delay is None else delay
    # The last try is the first one 3 days after the event: by then an endpoint that failed
    # every time since has been failing for 3 days, and was disabled just above.
    if now - attempt.created_at >= GIVE_UP_AFTER or attempt.is_test:
        # A test is tried once: the admin is looking at its outcome now.
        final = error if attempt.is_test else f"gave up after 3 days: {error}"
        await _mark(session, attempt, status=OutboxStatus.FAILED, last_error=final, response_code=code)
    else:
        await _mark(
            session,
            attempt,
            next_attempt_at=now + timedelta(seconds=wait),
            last_error=error,
            response_code=code,
        )
    return None


async def notices(session: AsyncSession, account_id: int, since: datetime) -> list[str]:
    """One line per webhook of the account the server disabled after ``since``, still disabled."""
    rows = (
        await session.execute(
            sa.select(Webhook)
            .where(
                col(Webhook.account_id) == account_id,
                col(Webhook.enabled).is_(False),
                col(Webhook.disabled_reason).is_not(None),
                col(Webhook.disabled_at) > since,
            )
            .order_by(col(Webhook.id))
        )
    ).scalars()
    return [
        f"Webhook {w.id} ({urls.shown_to_viewer(w.url, w.format)}) was disabled: {w.disabled_reason}. "
        "Fix the receiver, then enable it again."
        for w in rows
    ]
