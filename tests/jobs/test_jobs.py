"""The scheduler in the app's lifespan, and the lease that runs each tick in one instance only."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import sqlalchemy as sa

from server import jobs
from server.app import create_app
from server.db import Database
from server.models import JobLease
from server.services import Services
from server.settings import Settings
from tests.jobs.conftest import SmtpServer
from tests.jobs.helpers import arrive
from tests.support import FakeClock, make_tenant


@asynccontextmanager
async def running_app(settings: Settings, clock: FakeClock) -> AsyncIterator[jobs.JobRunner]:
    """One app instance with its own engine on the shared file, as another process would have."""
    db = Database(settings.database_url)
    app = create_app(settings, db=db, clock=clock)
    try:
        async with app.router.lifespan_context(app):
            yield app.state.jobs
    finally:
        await db.dispose()


async def leases(db: Database) -> dict[str, JobLease]:
    async with db.read() as session:
        return {lease.name: lease for lease in (await session.execute(sa.select(JobLease))).scalars()}


async def test_the_lifespan_starts_and_stops_the_scheduler(
    settings: Settings, db: Database, clock: FakeClock
) -> None:
    async with running_app(settings, clock) as runner:
        assert runner.running
        assert runner.scheduler is not None
        scheduled = {job.id: job for job in runner.scheduler.get_jobs()}
        assert set(scheduled) == {"notifications", "retention"}
        assert scheduled["retention"].trigger.interval.total_seconds() == 3600
        assert scheduled["notifications"].trigger.interval.total_seconds() == jobs.NOTIFY_TICK_SECONDS
        assert await runner.tick("retention")
        assert (await leases(db))["retention"].holder == runner.holder
    assert not runner.running and runner.scheduler is None
    # A clean stop hands the lease back at once.
    assert (await leases(db))["retention"].expires_at <= clock()


async def test_two_instances_on_one_database_run_each_tick_once(
    settings: Settings, db: Database, clock: FakeClock, smtp: SmtpServer
) -> None:
    tenant = await make_tenant(db, licenses=0)
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(running_app(settings, clock))
        b = await stack.enter_async_context(running_app(settings, clock))
        ran: Counter[str] = Counter()
        for i in range(14):
            if i % 3 == 0:
                await arrive(db, tenant.account_id, f"user{i}", clock)
            # Both instances tick at the same moment, as their schedulers would.
            results = await asyncio.gather(a.tick("notifications"), b.tick("notifications"))
            assert sorted(results) == [False, True]
            ran[a.holder if results[0] else b.holder] += 1
            clock.advance(seconds=jobs.NOTIFY_TICK_SECONDS)
        # The holder keeps the lease while it lives; the other instance never ran the job.
        assert list(ran.values()) == [14]
        retention_runs = await asyncio.gather(a.tick("retention"), b.tick("retention"))
        assert sorted(retention_runs) == [False, True]

    # Four arrivals 15 s apart; the 60 s window holds them all and closed before the last tick.
    (mail,) = smtp.mailbox.received
    assert mail.message["Subject"] == "4 users entered the Pending Licenses queue of Acme"


async def test_another_instance_takes_over_when_the_holder_stops_or_dies(
    settings: Settings, db: Database, clock: FakeClock
) -> None:
    async with running_app(settings, clock) as b:
        # A holder that dies without a word: its lease runs out after two intervals.
        dead = jobs.JobRunner(Services(settings, db, clock))
        assert await dead.tick("notifications")
        assert not await b.tick("notifications")
        clock.advance(seconds=jobs.NOTIFY_TICK_SECONDS * jobs.LEASE_INTERVALS - 0.001)
        assert not await b.tick("notifications")
        clock.advance(seconds=0.001)
        assert await b.tick("notifications")
        assert not await dead.tick("notifications")

        # A holder that stops cleanly hands over at the next tick.
        async with running_app(settings, clock) as c:
            clock.advance(seconds=jobs.NOTIFY_TICK_SECONDS * jobs.LEASE_INTERVALS)
            assert await c.tick("notifications")
            assert not await b.tick("notifications")
        assert await b.tick("notifications")


async def test_real_schedulers_of_two_instances_run_a_job_in_one_of_them(
    settings: Settings, db: Database, clock: FakeClock
) -> None:
    runs: Counter[str] = Counter()
    enough = asyncio.Event()

    def probe(name: str) -> jobs.Job:
        async def run(_svc: Services) -> None:
            runs[name] += 1
            if sum(runs.values()) >= 5:
                enough.set()

        return jobs.Job("probe", 0.02, run)

    runners = [
        jobs.JobRunner(Services(settings, Database(settings.database_url), clock), [probe(name)], holder=name)
        for name in ("a", "b")
    ]
    try:
        for runner in runners:
            runner.start()
        # The clock stands still, so the first holder's lease never lapses.
        await asyncio.wait_for(enough.wait(), timeout=30)
        # Counted before stopping: a clean stop hands the lease over on purpose, and the
        # other instance may then tick once before it is stopped too.
        seen = Counter(runs)
    finally:
        for runner in runners:
            await runner.stop()
            await runner.svc.db.dispose()
    assert len(seen) == 1 and sum(seen.values()) >= 5
    assert not any(r.running for r in runners)
