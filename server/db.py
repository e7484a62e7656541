"""The async engine, sessions and the write discipline, for SQLite and PostgreSQL.

Writes go through :meth:`Database.write`: one transaction that, on SQLite, takes the
database's write lock up front (``BEGIN IMMEDIATE``) so two admissions can never both read
"one license free"; on PostgreSQL the domain locks the account row instead
(:func:`server.licensing.lock_account`). Queue events recorded during the transaction are
handed to the broadcaster before and after the commit.

SQLite runs in WAL mode with ``synchronous=FULL``: a write acknowledged to a client has
reached the disk and survives a crash or ``kill -9``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from server.events import Broadcaster, MemoryBroadcaster, take_recorded

MIGRATIONS = Path(__file__).parent / "migrations"


class _RollbackOnClose(sqlite3.Connection):
    """A SQLite connection that ends its transaction before it closes.

    SQLAlchemy invalidates and closes a connection whose task is cancelled mid-statement.
    ``sqlite3_close_v2`` on a connection whose statement a cursor still references leaves a
    "zombie" that keeps its transaction, and so the database's write lock, until that
    cursor is garbage-collected (a cancelled task's exception keeps it alive): every other
    writer would wait out its busy timeout. Rolling back first releases the lock at once.
    """

    def close(self) -> None:
        if self.in_transaction:
            # On failure, closing still ends the transaction once the zombie is freed.
            with contextlib.suppress(sqlite3.Error):
                self.rollback()
        super().close()


def _install_sqlite_pragmas(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event decide how each transaction starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA cache_size=-32000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get("plm_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


class Database:
    """One database: its engine, read and write sessions, and the broadcaster for its events."""

    def __init__(
        self,
        url: str,
        *,
        broadcaster: Broadcaster | None = None,
        busy_timeout_ms: int = 10_000,
        pool_size: int = 8,
        echo: bool = False,
    ) -> None:
        self.url = url
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        common: dict[str, Any] = {"echo": echo}
        read: dict[str, Any] = {"pool_size": pool_size, "max_overflow": 8}
        write: dict[str, Any] = {"pool_size": pool_size, "max_overflow": 8}
        if self.is_sqlite:
            common["connect_args"] = {"factory": _RollbackOnClose}
            # One writer at a time (the write lock below): a small pool is all writes need.
            write = {"pool_size": 1, "max_overflow": 2}
        else:
            common["pool_pre_ping"] = True
            # One snapshot per read session, as on SQLite: a request's page, totalCount and
            # nested loaders must agree even while writes commit between its statements.
            read["isolation_level"] = "REPEATABLE READ"
        # Reads and writes have separate pools, so a request holding a read connection can
        # always get a write connection: they can never starve each other.
        self.engine = create_async_engine(url, **common, **read)
        self.write_engine = create_async_engine(url, **common, **write).execution_options(plm_write=True)
        if self.is_sqlite:
            _install_sqlite_pragmas(self.engine, busy_timeout_ms)
            _install_sqlite_pragmas(self.write_engine, busy_timeout_ms)
        self._reads = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self._writes = async_sessionmaker(self.write_engine, expire_on_commit=False, autoflush=False)
        # SQLite has one writer: waiting on an asyncio lock in-process is far cheaper than
        # contending through the busy handler. Other processes still meet BEGIN IMMEDIATE.
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self.broadcaster: Broadcaster = broadcaster or MemoryBroadcaster()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A write transaction; commits on success, rolls back on any exception."""
        if self._write_lock is None:
            async with self._write_transaction() as session:
                yield session
            return
        async with self._write_lock, self._write_transaction() as session:
            yield session

    @asynccontextmanager
    async def _write_transaction(self) -> AsyncIterator[AsyncSession]:
        async with self._writes() as session:
            async with session.begin():
                yield session
                events = take_recorded(session)
                if events:
                    await self.broadcaster.stage(session, events)
            if events:
                # Still inside the SQLite write lock, so delivery follows commit order.
                self.broadcaster.committed(events)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read-only session; its transaction sees one snapshot until it ends."""
        async with self._reads() as session:
            yield session

    async def ping(self) -> bool:
        async with self.engine.connect() as conn:
            return bool((await conn.execute(text("SELECT 1"))).scalar_one() == 1)

    async def migrate(self) -> None:
        """Upgrade the schema to the newest Alembic revision."""
        async with self.write_engine.begin() as conn:
            await conn.run_sync(_upgrade_to_head)

    async def dispose(self) -> None:
        await self.engine.dispose()
        await self.write_engine.dispose()


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def _upgrade_to_head(connection: Connection) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")
