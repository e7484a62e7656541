"""Credentials: admin API tokens and account ingest keys, how they look and whom they name.

Tokens (``plm_…``) and ingest keys (``plmi_…``) are 256-bit random values shown once; only
their SHA-256 is stored. A fast hash is right for high-entropy secrets (nothing to
brute-force) and keeps the per-request lookup an indexed equality. A value that cannot be
a credential (the wrong prefix, too long) is refused before it costs a query:
:func:`shaped_like`, the one rule every lookup applies.
"""

from __future__ import annotations

import hashlib
import secrets

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.domain.changes import Actor
from server.domain.models import Account, Admin

TOKEN_PREFIX = "plm_"
INGEST_KEY_PREFIX = "plmi_"
# Far above a real one (prefix + 43 characters), far below what costs anything to hash.
MAX_SECRET_LENGTH = 200


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def shaped_like(secret: str, prefix: str) -> bool:
    """Whether ``secret`` could be a credential with this prefix (else no lookup is made)."""
    return secret.startswith(prefix) and len(secret) <= MAX_SECRET_LENGTH


async def authenticate(session: AsyncSession, token: str) -> tuple[Admin, Account] | None:
    """The admin owning this API token and their account, in one round-trip.

    Joined with the account because every request needs the account's ``queue_version``
    and this is the hot path. ORM instances: the request's context keeps both.
    """
    if not shaped_like(token, TOKEN_PREFIX):
        return None
    row = (
        await session.execute(
            sa.select(Admin, Account)
            .join(Account, col(Account.id) == col(Admin.account_id))
            .where(col(Admin.token_hash) == hash_secret(token))
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def authenticate_ingest(session: AsyncSession, key: str) -> int | None:
    """The id of the account whose ingest key this is, or ``None``."""
    if not shaped_like(key, INGEST_KEY_PREFIX):
        return None
    found = (
        await session.execute(
            sa.select(col(Account.id)).where(col(Account.ingest_key_hash) == hash_secret(key))
        )
    ).scalar_one_or_none()
    return None if found is None else int(found)


def actor_for(admin: Admin) -> Actor:
    assert admin.id is not None
    return Actor(account_id=admin.account_id, admin_id=admin.id, role=admin.role)
