"""Webhook deliveries written to the outbox in the transaction of the events they report.

:func:`enqueue` is called where every change records its queue events
(:func:`server.domain.changes.finish`), so admissions, admin actions and whatever comes
later all reach webhooks the same way, and a rolled-back change delivers nothing. Each
enabled endpoint of the account whose actions include the event's gets one outbox row
(``kind`` "webhook") holding the Standard Webhooks body (:mod:`.payload`) and a
``webhook-id`` (``msg_…``) that stays the same across retries.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.domain.events import QueueEvent
from server.domain.models import Admin, OutboxMessage, OutboxStatus, QueueAction, User
from server.domain.webhooks import payload
from server.domain.webhooks.tables import Webhook

KIND = "webhook"


def new_message_id() -> str:
    """A Standard Webhooks message id: unique, and kept by every retry of the delivery."""
    return "msg_" + secrets.token_urlsafe(18)


def actions_of(webhook: Webhook) -> list[QueueAction] | None:
    """The actions a webhook gets; ``None``: every one, including ones added later."""
    if webhook.actions is None:
        return None
    return [QueueAction(a) for a in json.loads(webhook.actions) if a in QueueAction._value2member_map_]


def wants(webhook: Webhook, action: QueueAction) -> bool:
    chosen = actions_of(webhook)
    return chosen is None or action in chosen


def delivery_row(
    webhook: Webhook, body: dict[str, Any], now: datetime, action: QueueAction | None, user_id: int | None
) -> OutboxMessage:
    assert webhook.id is not None
    return OutboxMessage(
        kind=KIND,
        account_id=webhook.account_id,
        webhook_id=webhook.id,
        event_action=action,
        event_user_id=user_id,
        message_id=new_message_id(),
        sender="",
        recipient=str(webhook.id),
        subject=str(body["type"]),
        content=payload.dumps(body),
        status=OutboxStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )


async def enabled_webhooks(session: AsyncSession, account_id: int) -> list[Webhook]:
    return list(
        (
            await session.execute(
                sa.select(Webhook)
                .where(col(Webhook.account_id) == account_id, col(Webhook.enabled).is_(True))
                .order_by(col(Webhook.id))
            )
        ).scalars()
    )


async def enqueue(session: AsyncSession, events: Sequence[QueueEvent]) -> int:
    """Write one delivery per (event, endpoint that wants it); returns how many."""
    if not events:
        return 0
    written = 0
    for account_id in dict.fromkeys(e.account_id for e in events):
        hooks = await enabled_webhooks(session, account_id)
        mine = [e for e in events if e.account_id == account_id]
        wanted = [(e, [h for h in hooks if wants(h, e.action)]) for e in mine]
        wanted = [(e, hs) for e, hs in wanted if hs]
        if not wanted:
            continue
        bodies = await _bodies(session, [e for e, _ in wanted])
        rows = [
            delivery_row(h, body, e.at, e.action, e.user_id)
            for (e, hs), body in zip(wanted, bodies, strict=True)
            for h in hs
        ]
        session.add_all(rows)
        written += len(rows)
    return written


async def _bodies(session: AsyncSession, events: Sequence[QueueEvent]) -> list[dict[str, Any]]:
    """The body of each event, with the names read in this transaction (after the change)."""
    user_ids = {e.user_id for e in events} | {e.target_user_id for e in events if e.target_user_id}
    users: dict[int | None, tuple[str, str]] = {
        row[0]: (row[1], row[2].value)
        for row in (
            await session.execute(
                sa.select(col(User.id), col(User.display_name), col(User.status)).where(
                    col(User.id).in_(user_ids)
                )
            )
        ).all()
    }
    actor_ids = {e.actor_id for e in events if e.actor_id is not None}
    emails: dict[int | None, str] = {}
    if actor_ids:
        emails = {
            row[0]: str(row[1])
            for row in (
                await session.execute(
                    sa.select(col(Admin.id), col(Admin.email)).where(col(Admin.id).in_(actor_ids))
                )
            ).all()
        }
    return [
        payload.event_body(
            e,
            # Assigned, merged or removed: the user is gone (as the live event shows it).
            users.get(e.user_id)
            if e.action not in (QueueAction.ASSIGNED, QueueAction.MERGED, QueueAction.REMOVED)
            else None,
            emails.get(e.actor_id) if e.actor_id is not None else None,
            users[e.target_user_id][0] if e.target_user_id in users else None,
        )
        for e in events
    ]
