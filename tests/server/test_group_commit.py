"""Group commit while the database cannot write: a bounded queue, and batches given up on are dropped.

Another process holds SQLite's write lock, so the writer waits on its first group. Requests
beyond the queue's bound are refused at once (a 503 for the agent) instead of piling up in
memory, and a request that gives up (its deadline, or its client gone) takes its batch out
of the queue: it is not stored later, when the database is back, behind the agent's back.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import col

from server.domain.activity.batch import parse_batch
from server.domain.models import IngestBatch
from server.infra.db import Database
from server.infra.group_commit import IngestCommitter, Overloaded
from tests.support import START, FakeClock, batch_body, make_tenant, sqlite_url


async def until(condition: Callable[[], bool]) -> None:
    """Let the event loop run until the committer reaches a state (it has no event for it)."""
    async with asyncio.timeout(10):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.001)


async def test_the_queue_is_bounded_and_a_batch_given_up_on_is_never_stored(tmp_path: Path) -> None:
    path = tmp_path / "plm.db"
    db = Database(sqlite_url(path), busy_timeout_ms=30_000)
    await db.migrate()
    tenant = await make_tenant(db)
    committer = IngestCommitter(db, FakeClock(), max_queued_batches=3)

    def submit(n: int) -> asyncio.Task[object]:
        batch = parse_batch(batch_body(f"PC-{n}", f"u{n}", batch_id=f"b{n}"), START)
        return asyncio.create_task(committer.submit(tenant.account_id, batch))

    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        first = submit(0)
        await until(lambda: committer.in_flight == 1)  # the writer took it and waits for the lock
        waiting = [submit(n) for n in (1, 2, 3)]
        await until(lambda: committer.queued == 3)
        with pytest.raises(Overloaded):
            await submit(4)
        waiting[1].cancel()  # b2's request gives up
        with pytest.raises(asyncio.CancelledError):
            await waiting[1]
    finally:
        other.execute("ROLLBACK")
        other.close()
    for task in (first, waiting[0], waiting[2]):
        await asyncio.wait_for(task, 30)
    async with db.read() as session:
        stored = set((await session.execute(sa.select(col(IngestBatch.batch_id)))).scalars())
    assert stored == {"b0", "b1", "b3"}
    await committer.stop()
    await db.dispose()
