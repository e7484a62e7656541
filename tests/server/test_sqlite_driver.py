"""The SQLite driver: one trip to the connection's thread per statement, answers unchanged."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from server.infra.db import Database, ThreadWriter
from server.infra.sqlite_driver import InlineConnection, OneTripConnection
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
