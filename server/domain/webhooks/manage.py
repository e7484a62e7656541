"""Managing an account's webhooks: create, update, delete, rotate the secret, send a test.

ADMINs only (:meth:`Actor.require_admin`); each function runs in the caller's write
transaction and raises :class:`DomainError` before writing anything it refuses. URLs come
in already vetted (:func:`server.domain.webhooks.urls.vet`, which resolves the host, so
the caller does it before the transaction opens).

Secrets are ``whsec_`` + base64 of 32 random bytes, as Standard Webhooks' libraries take
them; one is shown when it is made and never again. A rotation keeps the old secret signing
beside the new one for :data:`ROTATION_GRACE` so receivers can roll over.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.domain import changes
from server.domain.changes import Actor
from server.domain.errors import DomainError, ErrorCode
from server.domain.models import Account, Admin, OutboxMessage, OutboxStatus, QueueAction
from server.domain.webhooks import enqueue, payload
from server.domain.webhooks.tables import Webhook, WebhookFormat
from server.domain.webhooks.urls import VettedUrl

MAX_WEBHOOKS_PER_ACCOUNT = 10
ROTATION_GRACE = timedelta(hours=24)
SECRET_PREFIX = "whsec_"
DISABLED_BY_ADMIN = "the webhook was disabled"


@dataclass(frozen=True, slots=True)
class WithSecret:
    """A webhook and the secret just made for it (shown once)."""

    webhook: Webhook
    secret: str | None


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _actions_json(actions: Sequence[QueueAction] | None) -> str | None:
    """Stored form: ``None`` (every action, now and later) for none or an empty list."""
    if not actions:
        return None
    return json.dumps([a.value for a in dict.fromkeys(actions)])


async def load(session: AsyncSession, account_id: int, webhook_id: int, *, lock: bool = False) -> Webhook:
    """The account's webhook; ``NOT_FOUND`` for a missing one or another account's."""
    query = sa.select(Webhook).where(col(Webhook.id) == webhook_id, col(Webhook.account_id) == account_id)
    found = (await session.execute(query.with_for_update() if lock else query)).scalar_one_or_none()
    if found is None:
        raise DomainError(ErrorCode.NOT_FOUND, f"no webhook with id {webhook_id}", "id")
    return found


async def create(
    session: AsyncSession,
    actor: Actor,
    url: VettedUrl,
    format: WebhookFormat,
    actions: Sequence[QueueAction] | None,
    now: datetime,
) -> WithSecret:
    actor.require_admin()
    # Under the account's lock, so two concurrent creations cannot both be the tenth.
    await changes.lock_account(session, actor.account_id)
    count = (
        await session.execute(
            sa.select(sa.func.count()).select_from(Webhook).where(col(Webhook.account_id) == actor.account_id)
        )
    ).scalar_one()
    if count >= MAX_WEBHOOKS_PER_ACCOUNT:
        raise DomainError(
            ErrorCode.INVALID_INPUT,
            f"an account has at most {MAX_WEBHOOKS_PER_ACCOUNT} webhooks; delete one first",
        )
    secret = new_secret() if format is WebhookFormat.STANDARD else None
    webhook = Webhook(
        account_id=actor.account_id,
        url=url.url,
        format=format,
        actions=_actions_json(actions),
        enabled=True,
        secret=secret,
        created_at=now,
        updated_at=now,
    )
    session.add(webhook)
    await session.flush()
    return WithSecret(webhook, secret)


async def update(
    session: AsyncSession,
    actor: Actor,
    webhook_id: int,
    now: datetime,
    *,
    url: VettedUrl | None = None,
    actions: Sequence[QueueAction] | None = None,
    enabled: bool | None = None,
) -> Webhook:
    """Change what is given. ``actions`` empty: every action. Enabling clears the reason the
    server disabled it; disabling drops what was waiting (failed, "the webhook was disabled")."""
    actor.require_admin()
    webhook = await load(session, actor.account_id, webhook_id, lock=True)
    if url is not None:
        webhook.url = url.url
    if actions is not None:
        webhook.actions = _actions_json(actions)
    if enabled is True and not webhook.enabled:
        webhook.enabled = True
        webhook.disabled_reason = None
        webhook.disabled_at = None
        webhook.failing_since = None
    elif enabled is False and webhook.enabled:
        webhook.enabled = False
        webhook.disabled_reason = None
        webhook.disabled_at = now
        await fail_waiting(session, webhook_id, DISABLED_BY_ADMIN)
    webhook.updated_at = now
    await session.flush()
    return webhook


async def fail_waiting(session: AsyncSession, webhook_id: int, reason: str) -> None:
    """Every delivery still waiting for ``webhook_id`` fails with ``reason`` (tests too)."""
    await session.execute(
        sa.update(OutboxMessage)
        .where(col(OutboxMessage.webhook_id) == webhook_id, col(OutboxMessage.status) == OutboxStatus.PENDING)
        .values(status=OutboxStatus.FAILED, last_error=reason)
    )


async def delete(session: AsyncSession, actor: Actor, webhook_id: int) -> int:
    """Delete the webhook and its deliveries (waiting ones are never sent); returns its id."""
    actor.require_admin()
    webhook = await load(session, actor.account_id, webhook_id, lock=True)
    await session.execute(sa.delete(OutboxMessage).where(col(OutboxMessage.webhook_id) == webhook_id))
    await session.delete(webhook)
    await session.flush()
    return webhook_id


async def rotate_secret(session: AsyncSession, actor: Actor, webhook_id: int, now: datetime) -> WithSecret:
    """A new secret; the current one keeps signing beside it for :data:`ROTATION_GRACE`
    (an earlier previous secret stops at once)."""
    actor.require_admin()
    webhook = await load(session, actor.account_id, webhook_id, lock=True)
    if webhook.format is not WebhookFormat.STANDARD:
        raise DomainError(
            ErrorCode.INVALID_INPUT,
            "a SLACK webhook has no signing secret: its URL is the secret (update the URL to change it)",
            "id",
        )
    secret = new_secret()
    webhook.previous_secret = webhook.secret
    webhook.previous_secret_until = now + ROTATION_GRACE
    webhook.secret = secret
    webhook.updated_at = now
    await session.flush()
    return WithSecret(webhook, secret)


async def send_test(session: AsyncSession, actor: Actor, webhook_id: int, now: datetime) -> OutboxMessage:
    """Queue a ``pending_queue.test`` delivery (also to a disabled webhook: test, then enable)."""
    actor.require_admin()
    webhook = await load(session, actor.account_id, webhook_id)
    account = await session.get(Account, actor.account_id)
    assert account is not None
    usage = await changes.account_usage(session, account)
    email = None
    if actor.admin_id is not None:
        admin = await session.get(Admin, actor.admin_id)
        email = admin.email if admin is not None else None
    assert webhook.id is not None
    body = payload.body_of_test(webhook.id, usage, actor.admin_id, email, now)
    row = enqueue.delivery_row(webhook, body, now, None, None)
    session.add(row)
    await session.flush()
    return row
