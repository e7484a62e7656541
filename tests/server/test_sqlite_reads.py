"""SQLite read sessions on the loop's thread: the pool's places, waited for without blocking."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from server.domain.models import Account
from server.infra.db import Database, is_unavailable
from server.infra.sqlite_reads import InlineReadSession
from tests.support import make_tenant, sqlite_url

PLACES = 1 + 8  # pool_size=1, and the read pool's overflow


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(sqlite_url(tmp_path / "reads.db"), pool_size=1, pool_timeout=0.3)
    await database.migrate()
    yield database
    await database.dispose()


async def _read(session: AsyncSession) -> int:
    return int((await session.execute(sa.text("SELECT 41 + 1"))).scalar_one())


async def test_a_session_past_the_pools_places_waits_without_blocking_the_loop(db: Database) -> None:
    async with contextlib.AsyncExitStack() as held:
        sessions = [await held.enter_async_context(db.read()) for _ in range(PLACES)]
        assert all(isinstance(s, InlineReadSession) for s in sessions)
        assert [await _read(s) for s in sessions] == [42] * PLACES
        assert db.read_engine.pool.checkedout() == PLACES  # type: ignore[attr-defined]

        async def one_more() -> int:
            async with db.read() as session:
                return await _read(session)

        waiting = asyncio.create_task(one_more())
        ticks = 0
        while ticks < 5:  # the loop goes on while the task waits for a place
            await asyncio.sleep(0)
            ticks += 1
        assert not waiting.done()
        # A place comes free (and the connection back to the pool): the waiting read runs.
        await sessions[0].close()
        assert await waiting == 42
    assert db.read_engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_past_the_pool_timeout_the_read_is_unavailable_and_takes_no_place(db: Database) -> None:
    async with contextlib.AsyncExitStack() as held:
        for _ in range(PLACES):
            await _read(await held.enter_async_context(db.read()))
        before = db.pool_waits.seconds
        with pytest.raises(sa.exc.TimeoutError) as raised:
            async with db.read() as session:
                await _read(session)
        assert is_unavailable(raised.value)
        assert db.pool_waits.seconds - before >= 0.3  # the wait is in plm_db_pool_wait_seconds
    # Every place given back, none lost to the read that gave up.
    async with contextlib.AsyncExitStack() as held:
        sessions = [await held.enter_async_context(db.read()) for _ in range(PLACES)]
        assert [await _read(s) for s in sessions] == [42] * PLACES


async def test_a_session_takes_a_place_only_once_it_reads(db: Database) -> None:
    async with contextlib.AsyncExitStack() as held:
        for _ in range(PLACES * 2):  # sessions that never read hold no connection
            await held.enter_async_context(db.read())
        async with db.read() as session:
            assert await _read(session) == 42


async def test_the_session_api_reads_use_runs_at_once(db: Database) -> None:
    tenant = await make_tenant(db, licenses=3)
    async with db.read() as session:
        assert (await session.scalars(sa.select(Account))).one().name == "Acme"
        assert await session.scalar(sa.select(sa.func.count()).select_from(Account)) == 1
        account = await session.get(Account, tenant.account_id)
        assert account is not None and account.license_limit == 3
        assert await session.run_sync(lambda s: s.get(Account, tenant.account_id)) is account
        await session.rollback()  # a fresh snapshot; the session reads on
        assert await _read(session) == 42
        # An AsyncConnection needs an asyncio driver: refused, with the way to go instead.
        with pytest.raises(TypeError, match="run statements through it"):
            await session.connection()


async def test_the_connection_returned_last_is_lent_first(tmp_path: Path) -> None:
    """Few connections in use keep warm page caches (each drops its cache on its first read
    after a commit): the pool lends last-in-first-out, not in turn."""
    db = Database(sqlite_url(tmp_path / "lifo.db"), pool_size=4)

    async def driver_connection(session: AsyncSession) -> object:
        return await session.run_sync(lambda s: s.connection().connection.driver_connection)

    try:
        async with db.read() as first, db.read() as second:
            ones = [await driver_connection(first), await driver_connection(second)]
        # ``second`` closed first, then ``first``: ``first``'s connection is lent next, twice over.
        for _ in range(2):
            async with db.read() as session:
                assert await driver_connection(session) is ones[0]
    finally:
        await db.dispose()
