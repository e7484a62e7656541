"""Credentials in the domain: revoking and rotating admin tokens, rotating ingest keys with a grace."""

from __future__ import annotations

from datetime import timedelta

import pytest

from server.domain import accounts, auth
from server.domain.errors import DomainError, ErrorCode
from server.domain.models import Admin
from server.infra.db import Database
from tests.support import FakeClock, Tenant


async def who(db: Database, token: str) -> int | None:
    async with db.read() as session:
        found = await auth.authenticate(session, token)
    return None if found is None else found[0].id


async def owner(db: Database, key: str, clock: FakeClock) -> int | None:
    async with db.read() as session:
        found = await auth.authenticate_ingest(session, key, clock())
    return None if found is None else found.account_id


async def test_a_revoked_token_stops_and_a_rotation_brings_the_admin_back(
    db: Database, tenant: Tenant, clock: FakeClock
) -> None:
    async with db.write() as session:
        revoked = await accounts.revoke_admin(session, tenant.account_id, "ADMIN@acme.example", clock())
    assert revoked.revoked_at == clock.now
    assert await who(db, tenant.admin_token) is None
    assert await who(db, tenant.viewer_token) == tenant.viewer_id  # nobody else is touched
    async with db.read() as session:
        listed = await accounts.list_admins(session, tenant.account_id)
    assert [(a.email, a.revoked_at is not None) for a in listed] == [
        ("admin@acme.example", True),
        ("viewer@acme.example", False),
    ]
    # Only a hash is kept, and not the revoked token's.
    assert all(
        tenant.admin_token not in a.token_hash and a.token_hash != auth.hash_secret(tenant.admin_token)
        for a in listed
    )

    async with db.write() as session:
        rotated = await accounts.rotate_admin_token(session, tenant.account_id, "admin@acme.example")
    assert rotated is not None and rotated.id == tenant.admin_id
    assert await who(db, rotated.secret) == tenant.admin_id
    assert await who(db, tenant.admin_token) is None
    async with db.read() as session:
        admin = await session.get(Admin, tenant.admin_id)
    assert admin is not None and admin.revoked_at is None


async def test_revoking_or_listing_what_does_not_exist_is_not_found(
    db: Database, tenant: Tenant, clock: FakeClock
) -> None:
    with pytest.raises(DomainError) as missing_admin:
        async with db.write() as session:
            await accounts.revoke_admin(session, tenant.account_id, "nobody@acme.example", clock())
    with pytest.raises(DomainError) as missing_account:
        async with db.read() as session:
            await accounts.list_admins(session, tenant.account_id + 100)
    assert missing_admin.value.code == missing_account.value.code == ErrorCode.NOT_FOUND


async def test_a_rotated_ingest_key_keeps_working_for_its_grace_then_stops(
    db: Database, tenant: Tenant, clock: FakeClock
) -> None:
    async with db.write() as session:
        new = await accounts.rotate_ingest_key(session, tenant.account_id, 24, clock())
    assert await owner(db, new.secret, clock) == tenant.account_id
    async with db.read() as session:
        old = await auth.authenticate_ingest(session, tenant.ingest_key, clock())
    assert old is not None and old.account_id == tenant.account_id
    assert old.valid_until == clock.now + timedelta(hours=24)
    clock.advance(hours=23, minutes=59)
    assert await owner(db, tenant.ingest_key, clock) == tenant.account_id and old.valid_at(clock())
    clock.advance(minutes=1)
    assert await owner(db, tenant.ingest_key, clock) is None and not old.valid_at(clock())
    assert await owner(db, new.secret, clock) == tenant.account_id


async def test_rotating_again_or_without_grace_ends_the_old_key_at_once(
    db: Database, tenant: Tenant, clock: FakeClock
) -> None:
    async with db.write() as session:
        second = await accounts.rotate_ingest_key(session, tenant.account_id, 24, clock())
        third = await accounts.rotate_ingest_key(session, tenant.account_id, 24, clock())
    # One predecessor at most: the first key is gone, the second is in its grace.
    assert await owner(db, tenant.ingest_key, clock) is None
    assert await owner(db, second.secret, clock) == tenant.account_id
    async with db.write() as session:
        fourth = await accounts.rotate_ingest_key(session, tenant.account_id, 0, clock())
    assert await owner(db, third.secret, clock) is None
    assert await owner(db, fourth.secret, clock) == tenant.account_id
    with pytest.raises(DomainError) as bad:
        async with db.write() as session:
            await accounts.rotate_ingest_key(session, tenant.account_id, -1, clock())
    assert bad.value.code == ErrorCode.INVALID_INPUT
