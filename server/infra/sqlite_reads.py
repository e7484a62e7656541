"""SQLite reads on the event loop's own thread, through SQLAlchemy's synchronous driver.

Reads on SQLite run on the loop's thread (why: :class:`server.infra.db.Database`). Through
SQLAlchemy's asyncio extension each of their statements still spawned a greenlet and went
through the asyncio adaptation (an adapted cursor, a coroutine that never suspends, the
switch back), and each session paid for it again to begin and to end: a session of two
``SELECT 1`` cost 181 µs where a synchronous session costs 102 and ``sqlite3`` itself 2
(``bench/page_cpu.py`` measures the page). Here a read session is an :class:`AsyncSession`
whose statements run on its synchronous :class:`Session` at once, bound to an engine of
SQLAlchemy's ``pysqlite`` driver: the dialect, types and statement cache are the aiosqlite
driver's own (it extends this one), so rows and errors are the same, and callers await it
as they await any session. ``AsyncSession.connection()`` is refused: an ``AsyncConnection``
needs an asyncio driver. Read paths run their statements through the session.

The pool is SQLAlchemy's ``QueuePool``, which blocks its thread while it waits for a free
connection: on the loop's thread that wait would never end (the connections are held by
other requests of the same loop). So a session first takes a place in :class:`ReadGate`,
an asyncio semaphore with as many places as the pool has connections, and waits there as an
asyncio pool would, up to the pool timeout. The pool then always has a connection to give.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import time
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import Result, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.util import EMPTY_DICT, immutabledict

from server.infra.pools import MeteredPool, PoolWaits
from server.infra.sqlite_driver import RollbackOnClose, install_pragmas

P = ParamSpec("P")
R = TypeVar("R")

# SQLite calls the progress handler every this many virtual-machine steps (several
# milliseconds of work): a statement that ends sooner never pays for it.
PROGRESS_STEPS = 1_000_000

# As AsyncSession runs every statement: the ORM loads all of a result's objects at once.
_PREBUFFER = immutabledict({"prebuffer_rows": True})


class _TimedCursor(sqlite3.Cursor):
    """Starts its connection's statement clock on each ``execute``."""

    def execute(self, sql: str, parameters: Any = (), /) -> _TimedCursor:
        connection: ReadConnection = self.connection  # type: ignore[assignment]  # its factory's
        connection.deadline = time.monotonic() + connection.statement_timeout
        super().execute(sql, parameters)
        return self


class ReadConnection(RollbackOnClose):
    """A read connection whose statements are interrupted past the statement timeout.

    A read holds the loop while it runs, so one that runs away must end: past its deadline
    SQLite's progress handler interrupts it (``sqlite3.OperationalError``: the database is
    unavailable for it, 503). The clock starts at each statement and runs on while its rows
    are fetched; an idle connection steps no statement, so a deadline left behind is never
    looked at.
    """

    statement_timeout = math.inf
    deadline = math.inf

    def cursor(self, factory: Any = _TimedCursor) -> Any:
        return super().cursor(factory)

    def past_deadline(self) -> bool:
        return time.monotonic() > self.deadline


class ReadGate:
    """The read pool's connections, as places a session takes before its first statement
    and gives back when it closes; waits for a place without blocking the loop."""

    def __init__(self, places: int, timeout: float, waits: PoolWaits) -> None:
        self.places = places
        self._free = asyncio.Semaphore(places)
        self._timeout = timeout
        self._waits = waits

    async def enter(self) -> None:
        if not self._free.locked():
            await self._free.acquire()  # at once
            return
        started = time.perf_counter()
        try:
            await asyncio.wait_for(self._free.acquire(), self._timeout)
        except TimeoutError:
            raise sa_exc.TimeoutError(
                f"no read connection free within {self._timeout:g} s ({self.places} in use)"
            ) from None
        finally:
            self._waits.seconds += time.perf_counter() - started

    def leave(self) -> None:
        self._free.release()


def read_engine(
    url: str,
    *,
    pool_size: int,
    max_overflow: int,
    busy_timeout_ms: int,
    statement_timeout: float,
    recycle: float,
    waits: PoolWaits,
) -> Engine:
    """A synchronous engine on the SQLite file ``url`` names, for :class:`InlineReadSession`."""
    args, options = SQLiteDialect_pysqlite().create_connect_args(make_url(url))
    (database,) = args
    # Made on the loop's thread and used there, but SQLAlchemy may close one elsewhere
    # (a connection garbage-collected by another thread).
    options = {**options, "check_same_thread": False, "factory": ReadConnection}

    def open_file() -> sqlite3.Connection:
        connection = sqlite3.connect(database, **options)
        assert isinstance(connection, ReadConnection)
        connection.statement_timeout = statement_timeout
        connection.set_progress_handler(connection.past_deadline, PROGRESS_STEPS)
        return connection

    engine = create_engine(
        make_url(url).set(drivername="sqlite+pysqlite"),
        creator=open_file,
        poolclass=MeteredPool,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_recycle=recycle,
        # The connection returned last is lent first. A connection drops its page cache
        # when it begins a read after another connection's commit; lent in turn, every one
        # of them starts cold after each group commit, lent last-in-first-out, the few in
        # use do (the mixed bench: 1.57 -> 1.53 ms of server CPU per page).
        pool_use_lifo=True,
    )
    assert isinstance(engine.pool, MeteredPool)
    engine.pool.waits = waits
    install_pragmas(engine, busy_timeout_ms)

    @event.listens_for(engine, "begin")
    def begin(conn: Connection) -> None:
        # A deferred BEGIN straight to the driver: as a statement of SQLAlchemy's own it
        # cost as much as the read after it (its events, execution context and result).
        conn.connection.dbapi_connection.execute("BEGIN")  # type: ignore[union-attr]

    return engine


class InlineReadSession(AsyncSession):
    """A read session whose statements run at once on the loop's thread (module docstring).

    Only the methods a read uses are its own; the others are AsyncSession's, which run the
    synchronous session in a greenlet: slower, but the same.
    """

    def __init__(self, *, engine: Engine, gate: ReadGate, **kw: Any) -> None:
        super().__init__(**kw)
        self.sync_session.bind = engine
        self._gate = gate
        self._entered = False

    async def _enter(self) -> None:
        await self._gate.enter()
        self._entered = True

    async def execute(
        self,
        statement: Any,
        params: Any = None,
        *,
        execution_options: Any = EMPTY_DICT,
        bind_arguments: Any = None,
        **kw: Any,
    ) -> Result[Any]:
        if not self._entered:
            await self._enter()
        options = immutabledict(execution_options).union(_PREBUFFER) if execution_options else _PREBUFFER
        return self.sync_session.execute(
            statement, params, execution_options=options, bind_arguments=bind_arguments, **kw
        )

    async def scalar(self, statement: Any, params: Any = None, **kw: Any) -> Any:
        return (await self.execute(statement, params, **kw)).scalar()

    async def get(self, entity: Any, ident: Any, **kw: Any) -> Any:
        if not self._entered:
            await self._enter()
        return self.sync_session.get(entity, ident, **kw)

    async def run_sync(self, fn: Callable[Concatenate[Session, P], R], *arg: P.args, **kw: P.kwargs) -> R:
        if not self._entered:
            await self._enter()
        return fn(self.sync_session, *arg, **kw)

    async def connection(self, *args: Any, **kw: Any) -> AsyncConnection:
        raise TypeError("a SQLite read session has no AsyncConnection: run statements through it")

    async def rollback(self) -> None:
        self.sync_session.rollback()

    async def close(self) -> None:
        try:
            self.sync_session.close()
        finally:
            if self._entered:
                self._entered = False
                self._gate.leave()


def sessions(engine: Engine, gate: ReadGate, **kw: Any) -> Callable[[], AsyncSession]:
    """A maker of :class:`InlineReadSession` on ``engine``, with ``kw`` for each Session."""

    def make() -> AsyncSession:
        return InlineReadSession(engine=engine, gate=gate, **kw)

    return make
