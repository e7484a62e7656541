"""Credentials: admin API tokens and account ingest keys, how they look and whom they name.

Tokens (``plm_…``) and ingest keys (``plmi_…``) are 256-bit random values shown once; only
their SHA-256 is stored. A fast hash is right for high-entropy secrets (nothing to
brute-force) and keeps the per-request lookup an indexed equality. A value that cannot be
a credential (the wrong prefix, too long) is refused before it costs a query:
:func:`shaped_like`, the one rule every lookup applies.

A revoked token's hash is replaced (:func:`server.domain.accounts.revoke_admin`), so every
lookup by hash, here or anywhere, stops finding it at once. An account's ingest key has
one predecessor at most, accepted until its grace period ends (:class:`IngestKeyOwner`).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.domain.changes import Actor
from server.domain.models import Account, Admin

TOKEN_PREFIX = "plm_"
INGEST_KEY_PREFIX = "plmi_"
# Far above a real one (prefix + 43 characters), far below what costs anything to hash.
MAX_SECRET_LENGTH = 200


# Built once: the hot path of every request binds a digest and runs it.
_ADMIN_BY_TOKEN = (
    sa.select(Admin, Account)
    .join(Account, col(Account.id) == col(Admin.account_id))
    .where(col(Admin.token_hash) == sa.bindparam("digest"))
)
_INGEST_KEY_OWNER = sa.select(
    col(Account.id), col(Account.ingest_key_hash), col(Account.previous_ingest_key_expires_at)
).where(
    sa.or_(
        col(Account.ingest_key_hash) == sa.bindparam("digest"),
        sa.and_(
            col(Account.previous_ingest_key_hash) == sa.bindparam("digest"),
            col(Account.previous_ingest_key_expires_at) > sa.bindparam("now"),
        ),
    )
)


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
    row = (await session.execute(_ADMIN_BY_TOKEN, {"digest": hash_secret(token)})).first()
    return None if row is None else (row[0], row[1])


@dataclass(frozen=True, slots=True)
class IngestKeyOwner:
    """The account an ingest key belongs to, and until when it is accepted (``None``: no end,
    the current key; a time: a rotated-out key in its grace period)."""

    account_id: int
    valid_until: datetime | None

    def valid_at(self, now: datetime) -> bool:
        return self.valid_until is None or now < self.valid_until


async def authenticate_ingest(session: AsyncSession, key: str, now: datetime) -> IngestKeyOwner | None:
    """Whose ingest key this is (the current key, or the previous one within its grace period)."""
    if not shaped_like(key, INGEST_KEY_PREFIX):
        return None
    digest = hash_secret(key)
    row = (await session.execute(_INGEST_KEY_OWNER, {"digest": digest, "now": now})).first()
    if row is None:
        return None
    account_id, current, expires = row
    assert account_id is not None
    return IngestKeyOwner(account_id, None if current == digest else expires)


def actor_for(admin: Admin) -> Actor:
    assert admin.id is not None
    return Actor(account_id=admin.account_id, admin_id=admin.id, role=admin.role)
