"""Provisioning: accounts with their ingest keys, admins with their tokens (shown once;
only hashes are stored: :mod:`server.domain.auth`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.domain.auth import INGEST_KEY_PREFIX, TOKEN_PREFIX, hash_secret, new_secret
from server.domain.changes import MAX_LICENSE_LIMIT
from server.domain.errors import DomainError, ErrorCode
from server.domain.models import Account, Admin, Role
from server.domain.notifications.digests import set_notify_on_pending


@dataclass(frozen=True, slots=True)
class Created:
    id: int
    secret: str


async def create_account(
    session: AsyncSession,
    *,
    name: str,
    license_limit: int,
    retention_days: int,
    manual_review: bool = False,
    now: datetime,
) -> Created:
    """A new account; returns its id and its ingest key (shown only now)."""
    if not name.strip() or len(name) > 256:
        raise DomainError(ErrorCode.INVALID_INPUT, "name must be 1 to 256 characters", "name")
    if not 0 <= license_limit <= MAX_LICENSE_LIMIT:
        raise DomainError(
            ErrorCode.INVALID_INPUT, f"licenses must be from 0 to {MAX_LICENSE_LIMIT}", "licenses"
        )
    if not 1 <= retention_days <= 3650:
        raise DomainError(ErrorCode.INVALID_INPUT, "retention days must be from 1 to 3650", "retentionDays")
    key = new_secret(INGEST_KEY_PREFIX)
    account = Account(
        name=name.strip(),
        ingest_key_hash=hash_secret(key),
        license_limit=license_limit,
        manual_review=manual_review,
        retention_days=retention_days,
        created_at=now,
    )
    session.add(account)
    await session.flush()
    assert account.id is not None
    return Created(account.id, key)


async def create_admin(
    session: AsyncSession,
    *,
    account_id: int,
    email: str,
    name: str,
    role: Role,
    now: datetime,
) -> Created:
    """A new admin of the account; returns its id and API token (shown only now)."""
    if await session.get(Account, account_id) is None:
        raise DomainError(ErrorCode.NOT_FOUND, f"no account with id {account_id}", "account")
    email = email.strip()
    if "@" not in email or len(email) > 320:
        raise DomainError(ErrorCode.INVALID_INPUT, f"not an email address: {email!r}", "email")
    if not name.strip() or len(name) > 256:
        raise DomainError(ErrorCode.INVALID_INPUT, "name must be 1 to 256 characters", "name")
    taken = (
        await session.execute(
            sa.select(col(Admin.id)).where(
                col(Admin.account_id) == account_id, sa.func.lower(col(Admin.email)) == email.lower()
            )
        )
    ).first()
    if taken is not None:
        raise DomainError(ErrorCode.CONFLICT, f"{email} is already an admin of this account", "email")
    token = new_secret(TOKEN_PREFIX)
    admin = Admin(
        account_id=account_id,
        email=email,
        name=name.strip(),
        role=role,
        token_hash=hash_secret(token),
        notify_on_pending=True,
        created_at=now,
    )
    session.add(admin)
    await session.flush()
    assert admin.id is not None
    return Created(admin.id, token)


async def update_notification_settings(
    session: AsyncSession, admin_id: int, notify_on_pending: bool, now: datetime
) -> Admin:
    """The admin's own email preference; turning it back on starts at the next arrival."""
    admin = await set_notify_on_pending(session, admin_id, notify_on_pending, now)
    if admin is None:
        raise DomainError(ErrorCode.NOT_FOUND, f"no admin with id {admin_id}")
    return admin


async def find_account_by_name(session: AsyncSession, name: str) -> Account | None:
    return (
        await session.execute(sa.select(Account).where(Account.name == name).order_by(Account.id).limit(1))  # type: ignore[arg-type]
    ).scalar_one_or_none()


async def _admin_by_email(session: AsyncSession, account_id: int, email: str) -> Admin | None:
    return (
        await session.execute(
            sa.select(Admin).where(
                col(Admin.account_id) == account_id, sa.func.lower(col(Admin.email)) == email.strip().lower()
            )
        )
    ).scalar_one_or_none()


def _no_admin(account_id: int, email: str) -> DomainError:
    return DomainError(ErrorCode.NOT_FOUND, f"account {account_id} has no admin {email!r}", "email")


async def list_admins(session: AsyncSession, account_id: int) -> list[Admin]:
    """The account's admins, oldest first (tokens are never shown again: only hashes are kept)."""
    if await session.get(Account, account_id) is None:
        raise DomainError(ErrorCode.NOT_FOUND, f"no account with id {account_id}", "account")
    rows = await session.execute(
        sa.select(Admin).where(col(Admin.account_id) == account_id).order_by(col(Admin.id))
    )
    return list(rows.scalars())


async def revoke_admin(session: AsyncSession, account_id: int, email: str, now: datetime) -> Admin:
    """The admin's token stops working at once (a rotation gives them a new one).

    The stored hash is replaced by the hash of a fresh secret that is never shown: no lookup
    by the old token's hash can find the admin any more, whichever code path makes it.
    """
    admin = await _admin_by_email(session, account_id, email)
    if admin is None:
        raise _no_admin(account_id, email)
    admin.token_hash = hash_secret(new_secret(TOKEN_PREFIX))
    if admin.revoked_at is None:
        admin.revoked_at = now
    await session.flush()
    return admin


async def rotate_admin_token(session: AsyncSession, account_id: int, email: str) -> Created | None:
    """A fresh token for the admin with this email (the old one stops working; a revoked
    admin is active again)."""
    admin = await _admin_by_email(session, account_id, email)
    if admin is None:
        return None
    token = new_secret(TOKEN_PREFIX)
    admin.token_hash = hash_secret(token)
    admin.revoked_at = None
    await session.flush()
    assert admin.id is not None
    return Created(admin.id, token)


MAX_GRACE_HOURS = 24 * 30


async def rotate_ingest_key(
    session: AsyncSession, account_id: int, grace_hours: float, now: datetime
) -> Created:
    """A new ingest key; the current one keeps working for ``grace_hours``, then stops.

    Only one predecessor is kept: rotating again ends the grace of the key before it at once.
    """
    if not 0 <= grace_hours <= MAX_GRACE_HOURS:
        raise DomainError(
            ErrorCode.INVALID_INPUT, f"grace hours must be from 0 to {MAX_GRACE_HOURS}", "graceHours"
        )
    account = await session.get(Account, account_id)
    if account is None:
        raise DomainError(ErrorCode.NOT_FOUND, f"no account with id {account_id}", "account")
    key = new_secret(INGEST_KEY_PREFIX)
    if grace_hours > 0:
        account.previous_ingest_key_hash = account.ingest_key_hash
        account.previous_ingest_key_expires_at = now + timedelta(hours=grace_hours)
    else:
        account.previous_ingest_key_hash = None
        account.previous_ingest_key_expires_at = None
    account.ingest_key_hash = hash_secret(key)
    await session.flush()
    return Created(account_id, key)
