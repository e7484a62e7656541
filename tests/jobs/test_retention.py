"""Retention of pending users' activity (docs/behaviour.md, Retention), with an injected clock."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import col

from server.domain import retention
from server.domain.activity import ingestion
from server.domain.activity.batch import Batch, Event
from server.domain.admission import AgentReport
from server.domain.models import Account, IngestBatch, UserStatus
from server.infra.db import Database
from server.web import schedule as jobs
from server.web.runtime import Services
from tests.server.domain import events
from tests.support import START, FakeClock, make_tenant, sqlite_url


async def report(db: Database, account_id: int, logon: str, starts: list[datetime], now: datetime) -> int:
    """An agent reports one event per start; returns its user id."""
    batch = Batch(
        batch_id=f"{logon}-{now.isoformat()}",
        agent=AgentReport(f"PC-{logon}", "ACME", logon, logon.title()),
        events=[Event(s, 60, "excel.exe", None, None, "productive") for s in starts],
    )
    async with db.write() as session:
        result = await ingestion.ingest(session, account_id, batch, now)
    assert result.user_id is not None
    return result.user_id


async def starts_of(db: Database, user_id: int) -> list[datetime]:
    return sorted(s.event.start for s in await events(db, user_id=user_id))


async def queue_version(db: Database, account_id: int) -> int:
    async with db.read() as session:
        account = await session.get(Account, account_id)
        assert account is not None
        return account.queue_version


async def test_pending_users_old_events_go_recent_stay_licensed_users_untouched(
    svc: Services, clock: FakeClock
) -> None:
    # Given a licensed and a pending user, each with events 40 and 10 days old
    tenant = await make_tenant(svc.db, licenses=1, retention_days=30)
    now = clock()
    old, recent = now - timedelta(days=40), now - timedelta(days=10)
    licensed = await report(svc.db, tenant.account_id, "lic", [old, recent], now)
    pending = await report(svc.db, tenant.account_id, "pen", [old, old + timedelta(hours=1), recent], now)
    version = await queue_version(svc.db, tenant.account_id)

    # When the hourly job runs
    purged = await jobs.run_retention_tick(svc)

    # Then only the pending user's expired events went
    assert purged.events_by_account == {tenant.account_id: 2}
    assert await starts_of(svc.db, pending) == [recent]
    assert await starts_of(svc.db, licensed) == [old, recent]
    # and cached queue pages see the change
    assert await queue_version(svc.db, tenant.account_id) == version + 1

    # And a second run has nothing to do and leaves the version alone
    assert (await jobs.run_retention_tick(svc)).events == 0
    assert await queue_version(svc.db, tenant.account_id) == version + 1


async def test_the_window_rolls_with_the_clock_and_follows_each_accounts_retention(
    svc: Services, clock: FakeClock
) -> None:
    month = await make_tenant(svc.db, name="Month", licenses=0, retention_days=30)
    week = await make_tenant(svc.db, name="Week", licenses=0, retention_days=7)
    now = clock()
    ten_days = now - timedelta(days=10)
    m = await report(svc.db, month.account_id, "m", [ten_days], now)
    w = await report(svc.db, week.account_id, "w", [ten_days], now)

    first = await retention.purge(svc.db, clock())
    assert first.events_by_account == {week.account_id: 1}
    assert await starts_of(svc.db, m) == [ten_days] and await starts_of(svc.db, w) == []

    # Exactly 30 days after its start the event is not yet older than the window…
    clock.now = ten_days + timedelta(days=30)
    assert (await retention.purge(svc.db, clock())).events == 0
    # …a moment later it is.
    clock.advance(microseconds=1)
    assert (await retention.purge(svc.db, clock())).events_by_account == {month.account_id: 1}


async def test_approved_users_keep_their_activity(svc: Services, clock: FakeClock) -> None:
    from server.domain import actions
    from server.domain.changes import Actor
    from server.domain.models import Role

    tenant = await make_tenant(svc.db, licenses=0)
    now = clock()
    user = await report(svc.db, tenant.account_id, "pen", [now - timedelta(days=40)], now)
    async with svc.db.write() as session:
        await actions.update_settings(session, Actor.system(tenant.account_id), now, license_limit=1)
    async with svc.db.write() as session:
        actor = Actor(tenant.account_id, tenant.admin_id, Role.ADMIN)
        result = await actions.approve(session, actor, [user], now)
        assert result.users[0].status is UserStatus.LICENSED
    assert (await retention.purge(svc.db, clock())).events == 0
    assert len(await starts_of(svc.db, user)) == 1


@pytest.mark.parametrize("move", ["lowered limit", "release"])
async def test_history_recorded_while_licensed_is_kept_after_a_move_to_the_queue(
    svc: Services, clock: FakeClock, move: str
) -> None:
    from server.domain import actions, reclaim
    from server.domain.changes import Actor
    from server.domain.models import Role
    from server.domain.reads import loads

    tenant = await make_tenant(svc.db, licenses=1)
    actor = Actor(tenant.account_id, tenant.admin_id, Role.ADMIN)
    start = clock()
    # Licensed on arrival, with a year of history.
    licensed_time = [start - timedelta(days=d) for d in (365, 100, 1)]
    user = await report(svc.db, tenant.account_id, "lic", licensed_time, start)
    clock.advance(days=1)
    async with svc.db.write() as session:
        if move == "release":
            await reclaim.release(session, actor, [user], clock())
        else:
            await actions.update_settings(session, actor, clock(), license_limit=0)
    moved_at = clock()
    # Pending now: what it records from here on is under the window.
    pending_time = [moved_at + timedelta(hours=1), moved_at + timedelta(days=20)]
    await report(svc.db, tenant.account_id, "lic", pending_time, moved_at + timedelta(days=21))

    clock.now = moved_at + timedelta(days=31, hours=2)
    purged = await retention.purge(svc.db, clock())
    assert purged.events_by_account == {tenant.account_id: 1}, "only the pending-time event past 30 days"
    assert await starts_of(svc.db, user) == sorted([*licensed_time, pending_time[1]])
    # PendingInfo's retained figures cover only what the window applies to.
    async with svc.db.read() as session:
        (row,) = (await loads.users_by_id(session, tenant.account_id, [user])).values()
        retained = (await loads.retained_by_user(session, [user]))[user]
    info = loads.pending_info(row, retained, 30)
    assert info is not None and info.reason.value == ("RELEASED" if move == "release" else "OVER_LIMIT")
    assert (info.retained_event_count, info.oldest_retained_at) == (1, pending_time[1])


async def test_purge_works_in_chunks(
    svc: Services, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention, "CHUNK", 3)
    tenant = await make_tenant(svc.db, licenses=0)
    now = clock()
    old = [now - timedelta(days=40, minutes=i) for i in range(7)]
    user = await report(svc.db, tenant.account_id, "pen", old, now)
    assert (await retention.purge(svc.db, now)).events_by_account == {tenant.account_id: 7}
    assert await starts_of(svc.db, user) == []


async def test_old_ingest_batch_records_are_dropped(svc: Services, clock: FakeClock) -> None:
    tenant = await make_tenant(svc.db, licenses=5)
    await report(svc.db, tenant.account_id, "a", [], clock() - timedelta(days=8))
    await report(svc.db, tenant.account_id, "b", [], clock() - timedelta(days=6))
    purged = await retention.purge(svc.db, clock())
    assert purged.ingest_batches == 1
    async with svc.db.read() as session:
        left = (await session.execute(sa.select(col(IngestBatch.batch_id)))).scalars().all()
    assert [b.split("-")[0] for b in left] == ["b"]


def test_plm_purge_runs_the_job_once_and_prints_what_it_deleted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from server import cli

    url = sqlite_url(tmp_path / "cli.db")

    async def given() -> int:
        db = Database(url)
        await db.migrate()
        tenant = await make_tenant(db, licenses=0, now=START)
        now = datetime.now(START.tzinfo)
        await report(db, tenant.account_id, "pen", [now - timedelta(days=31), now - timedelta(days=1)], now)
        await db.dispose()
        return tenant.account_id

    account_id = asyncio.run(given())
    monkeypatch.setenv("PLM_DATABASE_URL", url)
    assert cli.main(["purge"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == {
        "eventsDeleted": 1,
        "accounts": [{"id": str(account_id), "eventsDeleted": 1}],
        "ingestBatchesDeleted": 0,
        "outboxMessagesDeleted": 0,
        "removedUsersDeleted": 0,
    }
