"""aiosqlite with one trip to the connection's thread per statement.

aiosqlite runs every call on the connection's own thread, and SQLAlchemy's adapter makes up
to four of them per statement: create a cursor, execute, fetch the rows, close the cursor.
Each trip is a queue put, a thread wake-up and a loop wake-up, all under the GIL; a group
commit of two dozen statements spent more time handing work between threads than running
SQLite. Here a statement runs, its rows are fetched and its cursor is closed in one trip,
and the cursor SQLAlchemy holds answers from what that trip brought back.

The rows are fetched eagerly, as SQLAlchemy's adapter already does for a regular cursor;
nothing here streams. Everything else (transactions, functions, closing) is aiosqlite's.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Generator
from typing import Any

import aiosqlite
from sqlalchemy import Connection, Engine, event
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
from sqlalchemy.engine import make_url

_Outcome = tuple[Any, int, int | None, list[Any]]


class OneTripCursor:
    """The cursor SQLAlchemy's aiosqlite adapter drives, one thread trip per execute."""

    __slots__ = ("_connection", "_rows", "arraysize", "description", "lastrowid", "rowcount")

    def __init__(self, connection: OneTripConnection) -> None:
        self._connection = connection
        self._rows: list[Any] = []
        self.arraysize = 1
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None

    async def __aenter__(self) -> OneTripCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._rows = []

    def _keep(self, outcome: _Outcome) -> OneTripCursor:
        self.description, self.rowcount, self.lastrowid, self._rows = outcome
        return self

    async def execute(self, sql: str, parameters: Any = None) -> OneTripCursor:
        params = () if parameters is None else parameters
        return self._keep(await self._connection.run(_statement, "execute", sql, params))

    async def executemany(self, sql: str, seq_of_parameters: Any) -> OneTripCursor:
        return self._keep(await self._connection.run(_statement, "executemany", sql, seq_of_parameters))

    async def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        n = self.arraysize if size is None else size
        rows, self._rows = self._rows[:n], self._rows[n:]
        return rows

    async def fetchall(self) -> list[Any]:
        rows, self._rows = self._rows, []
        return rows

    async def close(self) -> None:
        self._rows = []


def _statement(connection: sqlite3.Connection, method: str, sql: str, parameters: Any) -> _Outcome:
    """On the connection's thread: ``cursor.execute`` or ``cursor.executemany``, then all of
    the statement's rows and what SQLAlchemy reads off the cursor; the cursor is closed."""
    cursor = connection.cursor()
    try:
        getattr(cursor, method)(sql, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


class OneTripConnection(aiosqlite.Connection):
    """An aiosqlite connection whose cursors make one thread trip per statement."""

    def cursor(self) -> OneTripCursor:  # type: ignore[override]  # no trip to make a cursor
        return OneTripCursor(self)

    async def run(self, fn: Callable[..., _Outcome], *args: Any) -> _Outcome:
        """``fn(sqlite3_connection, *args)`` on the connection's thread."""
        outcome: _Outcome = await self._execute(lambda: fn(self._conn, *args))  # type: ignore[no-untyped-call]  # aiosqlite: unannotated
        return outcome


class _RunAtOnce:
    """Stands for aiosqlite's queue of calls to its thread: runs each call as it is put."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:
            if future is not None and not future.done():
                future.set_exception(exc)
        else:
            if future is not None and not future.done():
                future.set_result(result)


class InlineConnection(OneTripConnection):
    """A connection that runs SQLite on the calling thread, blocking its event loop.

    For the ingest group commit's own loop: a statement costs no trip to another thread and
    back, each of which waits for the GIL while the main thread is busy. (The main loop's
    reads run inline too, through the synchronous driver: :mod:`server.infra.sqlite_reads`.)
    """

    def __init__(self, connector: Callable[[], sqlite3.Connection], iter_chunk_size: int) -> None:
        super().__init__(connector, iter_chunk_size)
        self._tx = _RunAtOnce()  # type: ignore[assignment]

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    def __await__(self) -> Generator[Any, None, aiosqlite.Connection]:
        return self._connect().__await__()  # no thread to start


def one_trip_creator(url: str, *, inline: bool = False, **connect_kwargs: Any) -> Callable[[], Any]:
    """An ``async_creator`` for :func:`sqlalchemy.ext.asyncio.create_async_engine`: the file and
    options the URL names, as SQLAlchemy's aiosqlite dialect reads them, plus ``connect_kwargs``
    (a connection ``factory``); ``inline``: an :class:`InlineConnection`."""
    args, options = SQLiteDialect_aiosqlite().create_connect_args(make_url(url))
    (database,) = args
    options = {**options, **connect_kwargs}

    def open_file() -> sqlite3.Connection:
        connection: sqlite3.Connection = sqlite3.connect(database, **options)
        return connection

    async def connect() -> OneTripConnection:
        if inline:
            connection: OneTripConnection = InlineConnection(open_file, iter_chunk_size=64)
        else:
            connection = OneTripConnection(open_file, iter_chunk_size=64)
            connection._thread.daemon = True  # as SQLAlchemy does: never hold the process at exit
        await connection
        return connection

    return connect


class RollbackOnClose(sqlite3.Connection):
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


def install_pragmas(engine: Engine, busy_timeout_ms: int) -> None:
    """Each new connection of ``engine``: WAL, full sync, foreign keys, its cache and busy
    timeout. Each transaction then begins as :func:`begin_as_configured` begins it."""

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event decide how each transaction starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # First: switching to WAL may wait for a lock too, and must wait this long, not
        # sqlite3's default of five seconds.
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA cache_size=-32000")
        cursor.close()


def begin_as_configured(engine: Engine) -> None:
    """Each transaction of ``engine`` begins as the connection's options say: a write takes
    the write lock up front (``BEGIN IMMEDIATE``), a read begins a deferred one."""

    @event.listens_for(engine, "begin")
    def on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get("plm_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")
