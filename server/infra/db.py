"""The async engine, sessions and the write discipline, for SQLite and PostgreSQL.

Writes go through :meth:`Database.write`: one transaction that, on SQLite, takes the
database's write lock up front (``BEGIN IMMEDIATE``) so two admissions can never both read
"one license free"; on PostgreSQL the domain locks the account row instead
(:func:`server.domain.changes.lock_account`). Queue events recorded during the transaction are
handed to the broadcaster before and after the commit.

SQLite runs in WAL mode with ``synchronous=FULL``: a write acknowledged to a client has
reached the disk and survives a crash or ``kill -9``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool, QueuePool

from server.domain import seat_counts
from server.domain.events import QueueEvent, take_recorded
from server.domain.models import ReadinessProbe
from server.infra import sqlite_reads
from server.infra.broadcast import Broadcaster, MemoryBroadcaster
from server.infra.pools import MeteredAsyncPool, MeteredPool, PoolWaits
from server.infra.settings import Settings
from server.infra.sqlite_driver import RollbackOnClose, begin_as_configured, install_pragmas, one_trip_creator
from server.infra.write_lock import WriteLock

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"

# Waits that must end while a client still listens: a paused or unreachable database
# answers 503 within seconds instead of holding every request (and its memory) until
# it returns. A connection attempt; a wait for a pooled connection; one statement.
CONNECT_TIMEOUT_SECONDS = 5.0
POOL_TIMEOUT_SECONDS = 5.0
STATEMENT_TIMEOUT_SECONDS = 30.0
# How long a SQLite read waits for a lock before it answers 503 (see Database.__init__).
READ_BUSY_TIMEOUT_MS = 250
# SQLite reads the planner's statistics when a connection opens, and the statistics job
# refreshes them this often (server.infra.statistics): connections are reopened as often.
SQLITE_RECONNECT_SECONDS = 600.0

# What the database (or the way to it) raises when it is down, restarting, paused past a
# timeout, out of space or read-only: the same request succeeds once it is back.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError,  # SQLite: locked past the busy timeout, disk full, I/O error, read-only
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,  # no pooled connection within the pool timeout
    sqlite3.OperationalError,
    OSError,  # refused, reset, unreachable; TimeoutError (asyncpg's command timeout) is one too
    asyncpg.InterfaceError,  # "connection was closed in the middle of operation", ...
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.OperatorInterventionError,  # class 57: shutting down, starting up, statement timeout
    asyncpg.InsufficientResourcesError,  # class 53: disk full, out of memory, too many connections
    asyncpg.ReadOnlySQLTransactionError,  # a read-only database (25006)
)


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database is unavailable, not that the request is wrong.

    Follows what wrapped it (SQLAlchemy's ``orig``, a GraphQL error's ``original_error``,
    ``raise … from``), since each layer re-wraps the driver's exception.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _UNAVAILABLE):
            return True
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        wrapped = getattr(current, "original_error", None)  # a GraphQL error
        if isinstance(wrapped, BaseException):
            current = wrapped
        elif isinstance(current, sa_exc.DBAPIError) and isinstance(current.orig, BaseException):
            current = current.orig
        else:
            current = current.__cause__
    return False


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
        connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
        pool_timeout: float = POOL_TIMEOUT_SECONDS,
        statement_timeout: float = STATEMENT_TIMEOUT_SECONDS,
    ) -> None:
        self.url = url
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        self._connect_timeout = connect_timeout
        common: dict[str, Any] = {"echo": echo, "pool_timeout": pool_timeout}
        read: dict[str, Any] = {"pool_size": pool_size, "max_overflow": 8}
        write: dict[str, Any] = {"pool_size": pool_size, "max_overflow": 8}
        if self.is_sqlite:
            # SQLite's own wait is the busy timeout (a lock held by another process).
            # One thread trip per statement (sqlite_driver), on connections that roll back
            # an open transaction when closed.
            common["async_creator"] = one_trip_creator(url, factory=RollbackOnClose)
            common["pool_recycle"] = SQLITE_RECONNECT_SECONDS
            # One writer at a time (the write lock below): a small pool is all writes need.
            write = {"pool_size": 1, "max_overflow": 2}
            # Reads run on the event loop's own thread, through the synchronous driver
            # (server.infra.sqlite_reads): a WAL reader never waits for a writer, SQLite
            # releases the GIL while it works (the ingest writer's thread runs meanwhile),
            # and a statement costs no trip to a connection thread and back, each a wait for
            # the GIL while the loop is busy. An uncached queue page: 6.1 -> 3.8 ms of
            # server CPU (bench/queue_page.py). The loop is blocked while a statement runs,
            # as it is while Python completes a page.
        else:
            common["pool_pre_ping"] = True
            common["connect_args"] = {
                "timeout": connect_timeout,
                # Client side: ends the wait even when the server cannot answer (paused);
                # server side: ends the statement there too.
                "command_timeout": statement_timeout,
                "server_settings": {"statement_timeout": str(int(statement_timeout * 1000))},
            }
            # One snapshot per read session, as on SQLite: a request's page, totalCount and
            # nested loaders must agree even while writes commit between its statements.
            read["isolation_level"] = "REPEATABLE READ"
        # Reads and writes have separate pools, so a request holding a read connection can
        # always get a write connection: they can never starve each other.
        if make_url(url).database not in (None, "", ":memory:"):
            common["poolclass"] = MeteredAsyncPool
        self._common = common
        self._busy_timeout_ms = busy_timeout_ms
        self.pool_waits = PoolWaits()
        self.write_engine = self._create_engine(**write).execution_options(plm_write=True)
        read_sessions: dict[str, Any] = {
            "expire_on_commit": False,
            "autoflush": False,
            "info": {seat_counts.READ_ONLY: True},
        }
        self._async_read_engine: AsyncEngine | None = None
        self._reads: Callable[[], AsyncSession]
        if self.is_sqlite:
            # A WAL reader waits only in rare moments (another process recovering the WAL
            # after a crash, or holding the file in exclusive mode): on the loop's thread
            # that wait blocks every request, so it is short, and past it the read answers
            # 503. So does a statement past the statement timeout (it is interrupted).
            self.read_engine = sqlite_reads.read_engine(
                url,
                pool_size=pool_size,
                max_overflow=read["max_overflow"],
                busy_timeout_ms=min(busy_timeout_ms, READ_BUSY_TIMEOUT_MS),
                statement_timeout=statement_timeout,
                recycle=SQLITE_RECONNECT_SECONDS,
                waits=self.pool_waits,
            )
            gate = sqlite_reads.ReadGate(pool_size + read["max_overflow"], pool_timeout, self.pool_waits)
            self._reads = sqlite_reads.sessions(self.read_engine, gate, **read_sessions)
        else:
            self._async_read_engine = self._create_engine(**read)
            self.read_engine = self._async_read_engine.sync_engine
            self._reads = async_sessionmaker(self._async_read_engine, **read_sessions)
        for pool in (self.read_engine.pool, self.write_engine.pool):
            if isinstance(pool, MeteredPool):
                pool.waits = self.pool_waits
        # Write engines of other threads' loops (ThreadWriter), counted in pool_in_use.
        self._thread_engines: list[AsyncEngine] = []
        # Told of every committed transaction's queue events, in this process (metrics).
        self.commit_listeners: list[Callable[[Sequence[QueueEvent]], None]] = []
        self._writes = async_sessionmaker(self.write_engine, expire_on_commit=False, autoflush=False)
        # SQLite has one writer: waiting on a lock in-process is far cheaper than contending
        # through the busy handler. Other processes still meet BEGIN IMMEDIATE.
        self._write_lock = WriteLock() if self.is_sqlite else None
        # Events committed by another thread's writer, in commit order, for the main loop
        # to deliver (_deliver_pending) before anything committed after them.
        self._undelivered: deque[Sequence[QueueEvent]] = deque()
        self.broadcaster: Broadcaster = broadcaster or MemoryBroadcaster()

    def _create_engine(self, **options: Any) -> AsyncEngine:
        engine = create_async_engine(self.url, **{**self._common, **options})
        if self.is_sqlite:
            install_pragmas(engine.sync_engine, self._busy_timeout_ms)
            begin_as_configured(engine.sync_engine)
        return engine

    @classmethod
    def from_settings(cls, settings: Settings, broadcaster: Broadcaster | None = None) -> Database:
        return cls(
            settings.database_url,
            broadcaster=broadcaster,
            busy_timeout_ms=settings.sqlite_busy_timeout_ms,
            connect_timeout=settings.db_connect_timeout_seconds,
            pool_timeout=settings.db_pool_timeout_seconds,
            statement_timeout=settings.db_statement_timeout_seconds,
        )

    def write(self) -> contextlib.AbstractAsyncContextManager[AsyncSession]:
        """A write transaction; commits on success, rolls back on any exception."""
        return self._transaction(self._writes, self._deliver_here)

    @asynccontextmanager
    async def _transaction(
        self,
        sessions: async_sessionmaker[AsyncSession],
        deliver: Callable[[Sequence[QueueEvent]], None],
    ) -> AsyncIterator[AsyncSession]:
        lock = self._write_lock
        if lock is not None:
            await lock.acquire()
        try:
            async with sessions() as session:
                async with session.begin():
                    yield session
                    events = take_recorded(session)
                    if events:
                        await self.broadcaster.stage(session, events)
                if events:
                    # Still inside the SQLite write lock, so delivery follows commit order.
                    deliver(events)
        finally:
            if lock is not None:
                lock.release()

    def _deliver_here(self, events: Sequence[QueueEvent]) -> None:
        # Another thread's commits that came first go first, even if the callback that
        # delivers them has not had its turn yet.
        self._deliver_pending()
        self._deliver(events)

    def _deliver_pending(self) -> None:
        while self._undelivered:
            self._deliver(self._undelivered.popleft())

    def _deliver(self, events: Sequence[QueueEvent]) -> None:
        self.broadcaster.committed(events)
        for listener in self.commit_listeners:
            listener(events)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read-only session; its transaction sees one snapshot until it ends."""
        if not self.is_sqlite:
            async with self._reads() as session:
                yield session
            return
        session = self._reads()
        try:
            yield session
        finally:
            # Closing an inline connection's session never waits, so no cancellation can
            # cut it short: it needs no task of its own (AsyncSession's exit makes one, and
            # the request then waits a whole turn of a busy loop to go on).
            await session.close()

    def read_session(self) -> AsyncSession:
        """A read session its caller closes (``await session.close()``) when done."""
        return self._reads()

    async def check_writable(self, now: datetime) -> None:
        """Begin a write transaction and commit a one-row write, or raise why not.

        Reads can go on while writes fail (a full disk, read-only files, a read-only or
        recovering PostgreSQL); only a commit proves a write can still land.
        """
        async with self.write() as session:
            insert = postgresql.insert if not self.is_sqlite else sqlite.insert
            stmt = insert(ReadinessProbe).values(id=1, checked_at=now)
            await session.execute(stmt.on_conflict_do_update(index_elements=["id"], set_={"checked_at": now}))

    def pool_in_use(self) -> int:
        """Connections checked out of both pools now."""
        pools = (self.read_engine.pool, self.write_engine.pool, *(e.pool for e in self._thread_engines))
        return sum(pool.checkedout() for pool in pools if isinstance(pool, QueuePool))

    async def ping(self) -> bool:
        async with self.read() as session:
            return bool((await session.execute(text("SELECT 1"))).scalar_one() == 1)

    async def migrate(self) -> None:
        """Upgrade the schema to the newest Alembic revision.

        On PostgreSQL through a connection of its own without the statement timeout: a
        migration of a large table may rightly take longer than any request should.
        """
        if self.is_sqlite:
            async with self.write_engine.begin() as conn:
                await conn.run_sync(_upgrade_to_head)
            return
        engine = create_async_engine(
            self.url, poolclass=NullPool, connect_args={"timeout": self._connect_timeout}
        )
        try:
            async with engine.begin() as conn:
                await conn.run_sync(_upgrade_to_head)
        finally:
            await engine.dispose()

    async def dispose(self) -> None:
        if self._async_read_engine is not None:
            await self._async_read_engine.dispose()
        else:
            self.read_engine.dispose()
        await self.write_engine.dispose()


class ThreadWriter:
    """:meth:`Database.write` for the event loop of another thread (the ingest group commit).

    An asyncio driver's connections and SQLAlchemy's pool belong to the loop that made them,
    so the writer has a write engine of its own, made on its loop. It takes the same write
    lock as the main loop's writers, and hands each committed transaction's queue events to
    the main loop (``home``) before it releases the lock: a main-loop writer that commits
    next delivers them before its own (:meth:`Database._deliver_here`), and so does the
    callback scheduled here, whichever runs first. Delivery follows commit order.

    On SQLite its statements block its loop (no other thread runs them), so the loop must be
    the writer's alone; a wait for another process's write lock blocks it for up to the busy
    timeout.
    """

    def __init__(self, db: Database, home: asyncio.AbstractEventLoop) -> None:
        self._db = db
        self._home = home
        # One transaction at a time; a second connection covers a retry while the first
        # is still being returned.
        options: dict[str, Any] = {"pool_size": 1, "max_overflow": 1}
        if db.is_sqlite:
            # SQLite runs on this thread itself (sqlite_driver.InlineConnection): the loop
            # does nothing else, and a statement costs no trip to a connection thread and
            # back, each a wait for the GIL while the main thread is busy (a group commit
            # under a busy API: 67 -> 35 ms at its median).
            options["async_creator"] = one_trip_creator(db.url, inline=True, factory=RollbackOnClose)
        self.engine = db._create_engine(**options).execution_options(plm_write=True)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        db._thread_engines.append(self.engine)

    def write(self) -> contextlib.AbstractAsyncContextManager[AsyncSession]:
        """A write transaction on this thread's loop, as :meth:`Database.write`."""
        return self._db._transaction(self._sessions, self._hand_home)

    def _hand_home(self, events: Sequence[QueueEvent]) -> None:
        self._db._undelivered.append(events)
        # A closed main loop has no subscribers left to deliver to; the commit stands.
        with contextlib.suppress(RuntimeError):
            self._home.call_soon_threadsafe(self._db._deliver_pending)

    async def dispose(self) -> None:
        with contextlib.suppress(ValueError):
            self._db._thread_engines.remove(self.engine)
        await self.engine.dispose()


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def _upgrade_to_head(connection: Connection) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")
