"""The account's webhooks and their deliveries, as the API lists them (newest delivery first)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.domain.models import OutboxMessage, OutboxStatus, QueueAction
from server.domain.reads.cursors import Keyset, Page, keyset_page
from server.domain.webhooks.tables import Webhook

_DELIVERIES = Keyset("webhook_deliveries", (col(OutboxMessage.id),), (int,), descending=True)


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    id: int
    action: QueueAction | None
    user_id: int | None
    status: OutboxStatus
    attempts: int
    response_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    next_attempt_at: datetime | None


_COLUMNS = (
    col(OutboxMessage.id),
    col(OutboxMessage.event_action),
    col(OutboxMessage.event_user_id),
    col(OutboxMessage.status),
    col(OutboxMessage.attempts),
    col(OutboxMessage.response_code),
    col(OutboxMessage.last_error),
    col(OutboxMessage.created_at),
    col(OutboxMessage.sent_at),
    col(OutboxMessage.next_attempt_at),
)


def _row(r: Sequence[Any]) -> DeliveryRow:
    status = r[3]
    return DeliveryRow(
        id=r[0],
        action=r[1],
        user_id=r[2],
        status=status,
        attempts=r[4],
        response_code=r[5],
        last_error=r[6],
        created_at=r[7],
        delivered_at=r[8],
        next_attempt_at=r[9] if status is OutboxStatus.PENDING else None,
    )


async def webhooks(session: AsyncSession, account_id: int) -> list[Webhook]:
    return list(
        (
            await session.execute(
                sa.select(Webhook).where(col(Webhook.account_id) == account_id).order_by(col(Webhook.id))
            )
        ).scalars()
    )


async def deliveries_page(
    session: AsyncSession, webhook_id: int, first: int, after: str | None
) -> Page[DeliveryRow]:
    return await keyset_page(
        session,
        _DELIVERIES,
        _COLUMNS,
        _row,
        [col(OutboxMessage.webhook_id) == webhook_id],
        first,
        after,
    )


async def deliveries_count(session: AsyncSession, webhook_id: int) -> int:
    return int(
        (
            await session.execute(
                sa.select(sa.func.count())
                .select_from(OutboxMessage)
                .where(col(OutboxMessage.webhook_id) == webhook_id)
            )
        ).scalar_one()
    )


async def delivery(session: AsyncSession, delivery_id: int) -> DeliveryRow | None:
    found = (await session.execute(sa.select(*_COLUMNS).where(col(OutboxMessage.id) == delivery_id))).first()
    return None if found is None else _row(found)
