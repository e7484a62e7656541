"""The scheduler in the app's lifespan, and the lease that runs each tick in one instance only."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta

import sqlalchemy as sa

from server.domain.models import JobLease
from server.infra.db import Database
from server.infra.settings import Settings
from server.web import schedule as jobs
from server.web.app import create_app
from server.web.runtime import Services
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
        assert set(scheduled) == {"notifications", "reminders", "retention", "statistics", "webhooks"}
        # Webhook deliveries: every second, in every process (claimed row by row, no lease).
        assert scheduled["webhooks"].trigger.interval.total_seconds() == jobs.WEBHOOK_TICK_SECONDS == 1
        assert not runner.jobs["webhooks"].leased
        # Retention runs hourly across processes; each checks every minute whether it is due.
        assert scheduled["retention"].trigger.interval.total_seconds() == jobs.RETENTION_TICK_SECONDS
        assert runner.jobs["retention"].interval_seconds == 3600
        assert scheduled["notifications"].trigger.interval.total_seconds() == jobs.NOTIFY_TICK_SECONDS
        # Reminders are written every 15 minutes at most (each admin gets one a day at most).
        assert runner.jobs["reminders"].interval_seconds == jobs.REMINDER_INTERVAL_SECONDS
        # The planner's statistics: every ten minutes, checked every minute.
        assert runner.jobs["statistics"].interval_seconds == 600
        assert scheduled["statistics"].trigger.interval.total_seconds() == jobs.RETENTION_TICK_SECONDS
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


def counting(name: str, runs: Counter[str]) -> jobs.Job:
    """A job with the shape of ``name`` in :data:`jobs.JOBS` that counts its runs."""
    real = next(j for j in jobs.JOBS if j.name == name)

    async def run(svc: Services) -> None:
        runs[svc.clock().isoformat()] += 1

    return jobs.Job(name, real.interval_seconds, run, real.first_delay_seconds, real.poll_seconds)


async def test_hourly_retention_resumes_on_schedule_when_its_holder_dies(
    settings: Settings, db: Database, clock: FakeClock
) -> None:
    """The lease is a couple of ticks (minutes), not hours: purging never stops for long."""
    runs: Counter[str] = Counter()
    job = counting("retention", runs)
    assert job.lease_seconds <= 3 * 60
    dead = jobs.JobRunner(Services(settings, db, clock), [job], holder="dead")
    alive = jobs.JobRunner(Services(settings, db, clock), [job], holder="alive")
    t0 = clock()
    assert await dead.tick("retention")
    # Every process ticks each minute; the holder's purge is not due again for an hour.
    for _ in range(3):
        clock.advance(seconds=jobs.RETENTION_TICK_SECONDS)
        assert not await alive.tick("retention")
    # The holder died right after its run. The next purge still comes an hour after the last.
    while clock() < t0 + timedelta(seconds=jobs.RETENTION_INTERVAL_SECONDS - jobs.RETENTION_TICK_SECONDS):
        clock.advance(seconds=jobs.RETENTION_TICK_SECONDS)
        assert not await alive.tick("retention")
    clock.advance(seconds=jobs.RETENTION_TICK_SECONDS)
    assert await alive.tick("retention")
    assert len(runs) == 2
    # And once an hour after that, in whichever process holds the lease.
    clock.advance(seconds=jobs.RETENTION_TICK_SECONDS)
    assert not await alive.tick("retention")
    assert (await leases(db))["retention"].holder == "alive"


async def test_a_run_longer_than_its_lease_keeps_the_lease(
    settings: Settings, db: Database, clock: FakeClock
) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(_svc: Services) -> None:
        started.set()
        await release.wait()

    job = jobs.Job("slow", 0.05, slow)  # renewed every 50 ms while it runs
    a = jobs.JobRunner(Services(settings, db, clock), [job], holder="a")
    b = jobs.JobRunner(Services(settings, db, clock), [job], holder="b")
    running = asyncio.create_task(a.tick("slow"))
    await asyncio.wait_for(started.wait(), 10)
    clock.advance(seconds=60)  # far past the lease taken when the run began
    deadline = asyncio.get_running_loop().time() + 10
    while (await leases(db))["slow"].expires_at <= clock():
        assert asyncio.get_running_loop().time() < deadline, "the lease was not renewed"
        await asyncio.sleep(0.01)
    assert not await b.tick("slow")
    release.set()
    assert await running
