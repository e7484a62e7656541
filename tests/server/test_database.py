"""The write discipline survives a task cancelled in the middle of a statement.

SQLAlchemy invalidates a connection whose task is cancelled mid-statement and closes it. On
SQLite a connection closed while a cursor still references a statement becomes a "zombie"
that keeps its transaction, and with it the database's write lock, until that cursor is
garbage-collected: every later write then fails with "database is locked". A cancelled
task keeps its exception (and so the cursor) alive, which is how ``plm serve --demo`` once
hung for 20 s on SIGTERM. These tests cancel a write while its statement runs, keep the
task alive, and require the next write to go straight through.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import sqlalchemy as sa

from server.domain.models import JobLease, utcnow
from server.infra.db import Database
from tests.support import sqlite_url

BUSY_MS = 300


async def _blocked_write(db: Database, started: threading.Event, release: threading.Event) -> None:
    async with db.write() as session:
        conn = await session.connection()
        raw = await conn.get_raw_connection()

        def gate() -> int:
            started.set()
            release.wait(10)
            return 1

        await raw.driver_connection.create_function("plm_test_gate", 0, gate)  # type: ignore[union-attr]
        now = utcnow()
        session.add(JobLease(name="held", holder="cancelled task", expires_at=now, updated_at=now))
        await session.flush()
        await session.execute(sa.text("SELECT plm_test_gate()"))


async def test_a_write_cancelled_mid_statement_does_not_keep_the_sqlite_write_lock(tmp_path: Path) -> None:
    db = Database(sqlite_url(tmp_path / "plm.db"), busy_timeout_ms=BUSY_MS)
    await db.migrate()
    try:
        started, release = threading.Event(), threading.Event()
        task = asyncio.create_task(_blocked_write(db, started, release))
        assert await asyncio.to_thread(started.wait, 10), "the statement never started"
        task.cancel()
        release.set()
        # Keep the task (and the exception it holds) alive, as a server's lifespan does.
        done, _ = await asyncio.wait({task})
        assert task.cancelled()

        t0 = time.monotonic()
        now = utcnow()
        async with db.write() as session:
            session.add(JobLease(name="next", holder="next writer", expires_at=now, updated_at=now))
        waited = time.monotonic() - t0
        async with db.read() as session:
            names = set((await session.execute(sa.select(JobLease.name))).scalars())  # type: ignore[call-overload]
        # The cancelled transaction was rolled back, not half-kept; the next one committed.
        assert names == {"next"}
        assert waited < BUSY_MS / 1000, f"the next write waited {waited:.3f}s on a lock nobody should hold"
        del done
    finally:
        await db.dispose()
