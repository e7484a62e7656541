"""Group commit while the database cannot write: a bounded queue, and batches given up on are dropped.

Another process holds SQLite's write lock, so the writer waits on its first group. Requests
beyond the queue's bound are refused at once (a 503 for the agent) instead of piling up in
memory, and a request that gives up (its deadline, or its client gone) takes its batch out
of the queue: it is not stored later, when the database is back, behind the agent's back.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from pydantic import ValidationError
from sqlmodel import col

from server.domain.activity.batch import parse_batch
from server.domain.events import AccountUsage, QueueEvent, record
from server.domain.models import IngestBatch, QueueAction
from server.infra.db import Database
from server.infra.group_commit import THREAD_NAME, IngestCommitter, Overloaded, ShuttingDown
from server.infra.settings import Settings
from server.infra.write_lock import WriteLock
from server.web import runtime
from server.web.app import create_app
from tests.support import START, FakeClock, batch_body, make_tenant, serve_app, sqlite_url


async def until(condition: Callable[[], bool]) -> None:
    """Let the event loop run until the committer reaches a state (it has no event for it)."""
    async with asyncio.timeout(10):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.001)


def submitter(committer: IngestCommitter, account_id: int) -> Callable[[int], asyncio.Task[object]]:
    """``submit(n)``: hands agent ``PC-{n}``'s batch ``b{n}`` to ``committer``, in a task."""

    def submit(n: int) -> asyncio.Task[object]:
        batch = parse_batch(batch_body(f"PC-{n}", f"u{n}", batch_id=f"b{n}"), START)
        return asyncio.create_task(committer.submit(account_id, batch))

    return submit


async def queue_behind_the_lock(
    committer: IngestCommitter, submit: Callable[[int], asyncio.Task[object]]
) -> tuple[asyncio.Task[object], list[asyncio.Task[object]]]:
    """While the write lock is held: b0's group taken (its writer waits for the lock), then
    b1 and b2 queued behind it."""
    first = submit(0)
    await until(lambda: committer.in_flight == 1)
    waiting = [submit(1), submit(2)]
    await until(lambda: committer.queued == 2)
    return first, waiting


async def test_the_queue_is_bounded_and_a_batch_given_up_on_is_never_stored(tmp_path: Path) -> None:
    path = tmp_path / "plm.db"
    db = Database(sqlite_url(path), busy_timeout_ms=30_000)
    await db.migrate()
    tenant = await make_tenant(db)
    committer = IngestCommitter(db, FakeClock(), max_queued_batches=3)
    submit = submitter(committer, tenant.account_id)

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


# The writer's own thread: the main loop's turns are not the group commit's.


def _stored(path: Path, batch_id: str) -> bool:
    """Whether ``batch_id`` is committed, as another connection sees it (without the loop)."""
    with contextlib.closing(sqlite3.connect(path)) as other:
        row = other.execute("SELECT 1 FROM ingest_batch WHERE batch_id = ?", (batch_id,)).fetchone()
    return row is not None


def _block_loop_until(condition: Callable[[], bool], seconds: float = 30.0) -> bool:
    """Hold the event loop's thread (no ``await``) until ``condition`` holds; ``False`` if it
    never did. Whatever the loop would run meanwhile waits, as behind a CPU-bound request."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def _writer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD_NAME]


async def test_a_group_commits_while_the_main_loop_is_busy(tmp_path: Path) -> None:
    path = tmp_path / "plm.db"
    db = Database(sqlite_url(path))
    await db.migrate()
    tenant = await make_tenant(db)
    committer = IngestCommitter(db, FakeClock())
    try:
        batch = parse_batch(batch_body("PC-1", "u1", batch_id="b1", events=5), START)
        submitted = asyncio.create_task(committer.submit(tenant.account_id, batch))
        await asyncio.sleep(0)  # the request hands its batch over
        # The main loop runs nothing else until the batch is on disk: the writer's thread did it.
        assert _block_loop_until(lambda: _stored(path, "b1"))
        result = await submitted
        assert (result.accepted, result.duplicate) == (5, False)
    finally:
        await committer.stop()
        await db.dispose()


async def test_queue_events_are_delivered_on_the_main_loop_in_commit_order(tmp_path: Path) -> None:
    """The writer's thread commits an admission (ENTERED), then a main-loop writer commits at
    once, before the loop had a turn to deliver the first: subscribers still hear the
    admission first, and on the main loop."""
    path = tmp_path / "plm.db"
    db = Database(sqlite_url(path))
    await db.migrate()
    tenant = await make_tenant(db, manual_review=True)  # a new agent waits in the queue: ENTERED
    committer = IngestCommitter(db, FakeClock())
    stream = db.broadcaster.subscribe(tenant.account_id)
    delivered_on: list[threading.Thread] = []
    db.commit_listeners.append(lambda _events: delivered_on.append(threading.current_thread()))
    usage = AccountUsage(tenant.account_id, 3, 0, 1, True)
    mine = QueueEvent(QueueAction.RELEASED, tenant.account_id, 0, START, None, usage, 0)
    try:
        batch = parse_batch(batch_body("PC-1", "u1", batch_id="b1"), START)
        submitted = asyncio.create_task(committer.submit(tenant.account_id, batch))
        await asyncio.sleep(0)
        assert _block_loop_until(lambda: _stored(path, "b1"))
        # No await since the writer committed: its delivery has not had a turn yet.
        async with db.write() as session:
            record(session, [mine])
        await submitted
        received: list[QueueEvent] = []
        while len(received) < 2:
            received += await stream.next_batch()
        assert [(e.action, e.user_id) for e in received][1:] == [(QueueAction.RELEASED, 0)]
        assert received[0].action == QueueAction.ENTERED
        assert delivered_on == [threading.main_thread(), threading.main_thread()]
    finally:
        stream.close()
        await committer.stop()
        await db.dispose()


async def test_stopping_fails_the_waiting_batches_and_ends_the_thread(tmp_path: Path) -> None:
    path = tmp_path / "plm.db"
    db = Database(sqlite_url(path))
    await db.migrate()
    tenant = await make_tenant(db)
    committer = IngestCommitter(db, FakeClock())
    before = len(_writer_threads())
    submit = submitter(committer, tenant.account_id)

    try:
        # A main-loop writer holds the write lock: the writer waits for it with b0's group.
        async with db.write():
            first, waiting = await queue_behind_the_lock(committer, submit)
            assert committer.running and len(_writer_threads()) == before + 1
            await committer.stop()
            for task in (first, *waiting):
                with pytest.raises(ShuttingDown):
                    await task
        assert not committer.running
        assert len(_writer_threads()) == before
        assert not any(_stored(path, f"b{n}") for n in range(3))
    finally:
        await committer.stop()
        await db.dispose()


# The commit delay: batches arriving together share a commit; a lone batch never waits.


async def test_batches_arriving_together_share_the_next_commit(tmp_path: Path) -> None:
    path = tmp_path / "plm.db"
    db = Database(sqlite_url(path))
    await db.migrate()
    tenant = await make_tenant(db)
    groups: list[int] = []
    # A delay no test could wait out: every wait below must end for another reason.
    committer = IngestCommitter(db, FakeClock(), commit_delay=600.0, on_group=groups.append)
    submit = submitter(committer, tenant.account_id)

    try:
        # b1 and b2 queue up while b0's group waits for the write lock: a group of two next.
        async with db.write():
            first, together = await queue_behind_the_lock(committer, submit)
        await asyncio.gather(first, *together)
        # The last group held two batches: the writer waits for two more before the next
        # group. b3 alone is not taken; b4 ends the wait, and they share a commit.
        await until(lambda: committer.lingering)
        third = submit(3)
        await until(lambda: committer.queued == 1)
        assert committer.lingering
        committer.commit_delay = 0.2  # the next wait, after b3 and b4's group, runs out
        fourth = submit(4)
        await asyncio.wait_for(asyncio.gather(third, fourth), 10)
        assert groups == [1, 2, 2]
        # Nothing comes during that wait: the next batch is a lone one, taken at once.
        await until(lambda: committer.lingering)
        await until(lambda: not committer.lingering)
        committer.commit_delay = 600.0
        await asyncio.wait_for(submit(5), 10)
        assert groups == [1, 2, 2, 1]
        assert all(_stored(path, f"b{n}") for n in range(6))
    finally:
        await committer.stop()
        await db.dispose()


async def test_a_lone_batch_is_taken_at_once(tmp_path: Path) -> None:
    db = Database(sqlite_url(tmp_path / "plm.db"))
    await db.migrate()
    tenant = await make_tenant(db)
    groups: list[int] = []
    # A delay no test could wait out: were a lone batch made to wait, this would time out.
    committer = IngestCommitter(db, FakeClock(), commit_delay=600.0, on_group=groups.append)
    try:
        for n in range(3):
            batch = parse_batch(batch_body(f"PC-{n}", f"u{n}", batch_id=f"b{n}"), START)
            await asyncio.wait_for(committer.submit(tenant.account_id, batch), 10)
        assert groups == [1, 1, 1]
        assert not committer.lingering
    finally:
        await committer.stop()
        await db.dispose()


def test_the_server_commit_delay_is_a_setting(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "plm.db")
    assert runtime.of(create_app(Settings(database_url=url))).committer.commit_delay == 0.005
    app = create_app(Settings(database_url=url, ingest_commit_delay_ms=0))
    assert runtime.of(app).committer.commit_delay == 0
    with pytest.raises(ValidationError):
        Settings(database_url=url, ingest_commit_delay_ms=-1)


async def test_apps_started_and_stopped_leave_no_writer_thread(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "plm.db")
    db = Database(url)
    await db.migrate()
    tenant = await make_tenant(db)
    await db.dispose()
    before = len(_writer_threads())
    for n in range(3):
        app = create_app(Settings(database_url=url))
        async with serve_app(app) as base, httpx.AsyncClient(base_url=base) as http:
            answer = await http.post(
                "/ingest",
                json=batch_body("PC-1", "u1", batch_id=f"b{n}"),
                headers={"Authorization": f"Bearer {tenant.ingest_key}"},
            )
            assert answer.status_code == 202, answer.text
            assert len(_writer_threads()) == before + 1
        assert len(_writer_threads()) == before


async def test_a_lock_handed_to_a_waiter_that_gave_up_goes_to_the_next() -> None:
    lock = WriteLock()
    await lock.acquire()
    first = asyncio.create_task(lock.acquire())
    second = asyncio.create_task(lock.acquire())
    await asyncio.sleep(0)  # both wait
    lock.release()  # handed to ``first`` through its loop...
    first.cancel()  # ...which gives up before its turn
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.wait_for(second, 10)
    assert lock.locked()
    lock.release()
    assert not lock.locked()


async def test_the_write_lock_serialises_writers_on_two_loops() -> None:
    """A writer on another thread's loop waits for the main loop's, and the other way round."""
    lock = WriteLock()
    await lock.acquire()
    other = asyncio.new_event_loop()
    order: list[str] = []

    async def elsewhere() -> None:
        await lock.acquire()
        order.append("other")
        lock.release()

    thread = threading.Thread(target=other.run_until_complete, args=(elsewhere(),))
    thread.start()
    try:
        assert _block_loop_until(lambda: bool(lock._waiters))
        order.append("main")
        lock.release()
        await asyncio.to_thread(thread.join, 10)
        await lock.acquire()
        order.append("main again")
        lock.release()
        assert order == ["main", "other", "main again"]
    finally:
        thread.join(10)
        other.close()
