"""The SQLite driver: one trip to the connection's thread per statement, answers unchanged."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from server.infra.db import Database, ThreadWriter, is_unavailable
from server.infra.sqlite_driver import InlineConnection, OneTripConnection
from server.infra.sqlite_reads import ReadConnection
from tests.support import sqlite_url


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(sqlite_url(tmp_path / "driver.db"))
    async with database.write() as session:
        await session.execute(sa.text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL)"))
    yield database
    await database.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every function sent to a connection's thread, by name."""
    sent: list[str] = []
    original = OneTripConnection._execute

    async def counted(self: OneTripConnection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(OneTripConnection, "_execute", counted)
    return sent


async def test_a_statement_is_one_trip_to_the_thread(db: Database, trips: list[str]) -> None:
    async with db.write() as session:
        await session.execute(sa.text("SELECT 1"))  # the transaction's BEGIN is behind us
        before = len(trips)
        rows = (await session.execute(sa.text("SELECT id, name FROM t ORDER BY id"))).all()
        await session.execute(sa.text("INSERT INTO t (name) VALUES ('a')"))
        await session.execute(sa.text("INSERT INTO t (name) VALUES (:n)"), [{"n": "b"}, {"n": "c"}])
        assert len(trips) - before == 3
    assert rows == []


async def test_rows_counts_and_ids_are_what_sqlite_says(db: Database) -> None:
    async with db.write() as session:
        inserted = await session.execute(sa.text("INSERT INTO t (name) VALUES ('ada')"))
        assert inserted.lastrowid == 1  # type: ignore[attr-defined]
        many = await session.execute(sa.text("INSERT INTO t (name) VALUES (:n)"), [{"n": "b"}, {"n": "c"}])
        assert many.rowcount == 2  # type: ignore[attr-defined]
        returned = await session.execute(sa.text("INSERT INTO t (name) VALUES ('d') RETURNING id, name"))
        assert returned.all() == [(4, "d")]
        updated = await session.execute(sa.text("UPDATE t SET name = name || '!' WHERE id > 1"))
        assert updated.rowcount == 3  # type: ignore[attr-defined]
    async with db.read() as session:
        result = await session.execute(sa.text("SELECT id, name FROM t ORDER BY id"))
        assert list(result.keys()) == ["id", "name"]
        assert result.all() == [(1, "ada"), (2, "b!"), (3, "c!"), (4, "d!")]
        assert (await session.execute(sa.text("SELECT name FROM t WHERE id = 99"))).first() is None


async def test_an_error_leaves_nothing_and_the_connection_usable(db: Database) -> None:
    with pytest.raises(sa.exc.IntegrityError):
        async with db.write() as session:
            await session.execute(sa.text("INSERT INTO t (name) VALUES ('x')"))
            await session.execute(sa.text("INSERT INTO t (name) VALUES ('x')"))
    with pytest.raises(sa.exc.OperationalError):
        async with db.read() as session:
            await session.execute(sa.text("SELECT nope FROM t"))
    async with db.write() as session:
        await session.execute(sa.text("INSERT INTO t (name) VALUES ('x')"))
    async with db.read() as session:
        assert (await session.execute(sa.text("SELECT count(*) FROM t"))).scalar_one() == 1


async def test_an_inline_writer_runs_sqlite_on_its_own_thread_and_rolls_back_on_error(
    db: Database,
) -> None:
    """The group commit's writer: statements on the calling thread, no connection thread
    started; a failed transaction leaves nothing; disposing closes its connection."""
    threads = {t.ident for t in threading.enumerate()}
    writer = ThreadWriter(db, asyncio.get_running_loop())
    try:
        async with writer.write() as session:
            await session.execute(sa.text("INSERT INTO t (name) VALUES ('a')"))
            raw = await (await session.connection()).get_raw_connection()
            assert isinstance(raw.driver_connection, InlineConnection)
        with pytest.raises(sa.exc.IntegrityError):
            async with writer.write() as session:
                await session.execute(sa.text("INSERT INTO t (name) VALUES ('b')"))
                await session.execute(sa.text("INSERT INTO t (name) VALUES ('a')"))
        assert {t.ident for t in threading.enumerate()} == threads
    finally:
        await writer.dispose()
    async with db.read() as session:
        assert (await session.execute(sa.text("SELECT name FROM t"))).scalars().all() == ["a"]


async def test_reads_run_on_the_loops_thread_and_never_give_up_its_turn(tmp_path: Path) -> None:
    """A read session, from its first connection to its close, never suspends: no statement
    waits for a connection thread, and closing it makes no task of its own (an uncached page
    then runs in one turn of the loop: server.infra.turns)."""
    database = Database(sqlite_url(tmp_path / "reads.db"))
    try:
        threads = {t.ident for t in threading.enumerate()}
        turns: list[str] = []
        asyncio.get_running_loop().call_soon(turns.append, "the loop had a turn")
        for _ in range(2):  # a new connection, then a pooled one
            async with database.read() as session:
                assert (await session.execute(sa.text("SELECT 41 + 1"))).scalar_one() == 42
                raw = await session.run_sync(lambda s: s.connection().connection.driver_connection)
                assert isinstance(raw, ReadConnection)
        assert turns == []
        assert {t.ident for t in threading.enumerate()} == threads
    finally:
        await database.dispose()


@pytest.mark.parametrize(("configured", "reads_wait"), [(10_000, 250), (100, 100)])
async def test_a_read_waits_for_a_lock_briefly_a_write_as_configured(
    tmp_path: Path, configured: int, reads_wait: int
) -> None:
    """A read blocks the loop while it waits for a lock (another process recovering the WAL,
    or holding the file exclusively), so its wait is short; a write waits as configured."""
    database = Database(sqlite_url(tmp_path / "busy.db"), busy_timeout_ms=configured)
    try:
        async with database.read() as session:
            assert (await session.execute(sa.text("PRAGMA busy_timeout"))).scalar_one() == reads_wait
        async with database.write() as session:
            assert (await session.execute(sa.text("PRAGMA busy_timeout"))).scalar_one() == configured
    finally:
        await database.dispose()


async def test_a_read_of_a_file_locked_by_another_process_answers_unavailable_at_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "locked.db"
    database = Database(sqlite_url(path))
    try:
        async with database.write() as session:
            await session.execute(sa.text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        await database.dispose()  # the pool's connections would keep their hold on the file
        other = sqlite3.connect(path, isolation_level=None)
        try:
            # Another process holding the file exclusively (WAL without shared memory).
            other.execute("PRAGMA locking_mode=EXCLUSIVE")
            other.execute("INSERT INTO t DEFAULT VALUES")
            started = time.monotonic()
            with pytest.raises(sa.exc.OperationalError) as raised:
                async with database.read() as session:
                    await session.execute(sa.text("SELECT count(*) FROM t"))
            assert is_unavailable(raised.value)
            # The read's own short wait, not the write's busy timeout nor sqlite3's 5 s.
            assert time.monotonic() - started < 2
        finally:
            other.close()
        async with database.read() as session:
            assert (await session.execute(sa.text("SELECT count(*) FROM t"))).scalar_one() == 1
    finally:
        await database.dispose()


async def test_a_read_past_the_statement_timeout_is_interrupted(tmp_path: Path) -> None:
    """A read holds the loop while it runs, so one that runs away is interrupted at the
    statement timeout (the database is unavailable for it: 503); the next read is served."""
    database = Database(sqlite_url(tmp_path / "slow.db"), statement_timeout=0.2)
    endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
    try:
        started = time.monotonic()
        with pytest.raises(sa.exc.OperationalError, match="interrupted") as raised:
            async with database.read() as session:
                await session.execute(sa.text(endless))
        assert is_unavailable(raised.value)
        assert time.monotonic() - started < 5
        async with database.read() as session:
            # One that ends in time is not cut short, though the handler looked in on it.
            assert (
                await session.execute(sa.text(endless.replace("FROM c)", "FROM c WHERE x < 300000)")))
            ).scalar_one() == 300_000
    finally:
        await database.dispose()
