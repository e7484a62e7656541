"""Scheduled jobs: APScheduler in the app's lifespan, each tick run by one process only.

The runner is generic: a :class:`Job` runs with whatever context object the app gives its
:class:`JobRunner` (the app's :class:`~server.web.runtime.Services`; see
:mod:`server.web.schedule` for the jobs it runs). The runner needs only the context's
database and clock (:class:`JobContext`).

Several server processes may run the same app on one database; a job must run in one of
them only. Each job has a lease row (:class:`JobLease`): a tick runs only in the process
that holds or takes it. Every process ticks each job every :attr:`Job.tick_seconds`; the
holder renews the lease on every tick, and while a run lasts, and the lease lasts
:data:`LEASE_INTERVALS` ticks. So while the holder lives the others' ticks skip, and when
it dies another process takes over within that time, a couple of minutes at most, whatever
the job's interval. Whether the job is due is the lease row's ``last_run_at``, shared by
all processes: an hourly job runs once an hour across them, whichever holds the lease
then. The lease is taken with a conditional ``UPDATE`` (held by me, or expired) and, for a
job never run before, an ``INSERT … ON CONFLICT DO NOTHING``; both are atomic on SQLite and
PostgreSQL. Jobs should be safe to overlap anyway; the lease keeps them from doing the work
twice.

Ticks use the context's clock, so tests drive them directly: ``await runner.tick(name)``
runs a job once through the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar, cast

import sqlalchemy as sa
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlmodel import col

from server.domain.models import JobLease
from server.infra.clock import Clock
from server.infra.db import Database, is_unavailable
from server.infra.tasks import finish_or_cancel

log = logging.getLogger(__name__)

LEASE_INTERVALS = 2
# How long shutdown lets a running tick finish (an SMTP conversation, mostly) before
# cancelling it; a cancelled tick rolls back and its work is redone later.
STOP_GRACE_SECONDS = 10.0


class JobContext(Protocol):
    """What the runner needs of the object its jobs run with."""

    @property
    def db(self) -> Database: ...

    @property
    def clock(self) -> Clock: ...


C = TypeVar("C", bound=JobContext)


@dataclass(frozen=True, slots=True)
class Job(Generic[C]):
    name: str
    #: How often the job runs, across all processes.
    interval_seconds: float
    #: One run, given the runner's context.
    run: Callable[[C], Awaitable[object]]
    first_delay_seconds: float | None = None
    #: How often each process checks whether it should run it (default: every interval).
    poll_seconds: float | None = None
    #: False: every process runs each tick, without a lease (work it claims row by row,
    #: such as webhook deliveries taken with ``FOR UPDATE SKIP LOCKED``).
    leased: bool = True

    @property
    def tick_seconds(self) -> float:
        return self.poll_seconds or self.interval_seconds

    @property
    def lease_seconds(self) -> float:
        return self.tick_seconds * LEASE_INTERVALS

    def due_after(self, last_run_at: datetime) -> datetime:
        """When the job is due again; a job ticking at its interval is due at every tick.

        Half a tick early counts as due, so a tick that fires a moment early (timers drift)
        does not postpone the run by a whole tick.
        """
        if self.poll_seconds is None:
            return last_run_at
        return last_run_at + timedelta(seconds=self.interval_seconds - self.tick_seconds / 2)


# ---------------------------------------------------------------------------- lease


@dataclass(frozen=True, slots=True)
class Held:
    """A lease this process holds, and when the job last ran (in any process)."""

    last_run_at: datetime | None


async def acquire_lease(db: Database, name: str, holder: str, now: datetime, seconds: float) -> Held | None:
    """Take or renew the lease on job ``name`` until ``now + seconds``; ``None`` if another holds it."""
    expires = now + timedelta(seconds=seconds)
    async with db.write() as session:
        renewed = (
            await session.execute(
                sa.update(JobLease)
                .where(
                    col(JobLease.name) == name,
                    sa.or_(col(JobLease.holder) == holder, col(JobLease.expires_at) <= now),
                )
                .values(holder=holder, expires_at=expires, updated_at=now)
                .returning(col(JobLease.last_run_at))
            )
        ).first()
        if renewed is not None:
            return Held(renewed[0])
        insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        created = cast(
            CursorResult[Any],
            await session.execute(
                insert(JobLease)
                .values(name=name, holder=holder, expires_at=expires, updated_at=now)
                .on_conflict_do_nothing()
            ),
        )
        return Held(None) if created.rowcount == 1 else None


async def finish_run(db: Database, name: str, holder: str, started: datetime) -> None:
    """Record that the job ran (from ``started``), for every process's next due check."""
    async with db.write() as session:
        await session.execute(
            sa.update(JobLease)
            .where(col(JobLease.name) == name, col(JobLease.holder) == holder)
            .values(last_run_at=started)
        )


async def release_lease(db: Database, name: str, holder: str, now: datetime) -> None:
    """Let another process take the job at its next tick (on a clean shutdown)."""
    async with db.write() as session:
        await session.execute(
            sa.update(JobLease)
            .where(col(JobLease.name) == name, col(JobLease.holder) == holder)
            .values(expires_at=now, updated_at=now)
        )


# ---------------------------------------------------------------------------- runner


class JobRunner(Generic[C]):
    """The jobs of one app instance: its scheduler and its identity as a lease holder."""

    def __init__(
        self,
        context: C,
        jobs: Sequence[Job[C]],
        holder: str | None = None,
        *,
        on_result: Callable[[str, str], None] | None = None,
    ) -> None:
        self.context = context
        # Told each tick's outcome: (job, "ran" | "skipped" | "failed"), for metrics.
        self._on_result = on_result
        self.jobs = {job.name: job for job in jobs}
        self.holder = holder or f"{socket.gethostname()[:64]}:{os.getpid()}:{secrets.token_hex(4)}"
        self.scheduler: AsyncIOScheduler | None = None
        self._running: set[asyncio.Task[Any]] = set()

    async def tick(self, name: str) -> bool:
        """Run job ``name`` once if this instance holds its lease and the job is due; True if it ran."""
        try:
            ran = await self._tick(name)
        except Exception:
            self._report(name, "failed")
            raise
        self._report(name, "ran" if ran else "skipped")
        return ran

    def _report(self, name: str, result: str) -> None:
        if self._on_result is not None:
            self._on_result(name, result)

    async def _tick(self, name: str) -> bool:
        job = self.jobs[name]
        if not job.leased:
            await job.run(self.context)
            return True
        started = self.context.clock()
        held = await acquire_lease(self.context.db, name, self.holder, started, job.lease_seconds)
        if held is None:
            log.debug("job %s: tick skipped, another process holds the lease", name)
            return False
        if held.last_run_at is not None and started < job.due_after(held.last_run_at):
            log.debug("job %s: not due until %s", name, job.due_after(held.last_run_at))
            return False
        log.debug("job %s: tick runs in %s", name, self.holder)
        renewing = asyncio.create_task(self._keep_lease(job), name=f"lease-{name}")
        try:
            await job.run(self.context)
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
        await finish_run(self.context.db, name, self.holder, started)
        return True

    async def _keep_lease(self, job: Job[C]) -> None:
        """Renew the lease while a run lasts longer than a tick, so no one else starts it."""
        while True:
            await asyncio.sleep(job.tick_seconds)
            try:
                if (
                    await acquire_lease(
                        self.context.db, job.name, self.holder, self.context.clock(), job.lease_seconds
                    )
                    is None
                ):
                    log.warning("job %s: lost its lease during a long run", job.name)
            except Exception as exc:  # the run itself will meet the same trouble
                log.warning("job %s: could not renew its lease: %s", job.name, exc)

    async def _scheduled(self, name: str) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._running.add(task)
        try:
            await self.tick(name)
        except Exception as exc:
            # Logged here rather than by APScheduler so the message names the job plainly;
            # the next tick tries again. An unavailable database is a line, not a traceback
            # every few seconds.
            if is_unavailable(exc):
                log.warning("scheduled job %s: the database is unavailable (%s)", name, exc)
            else:
                log.exception("scheduled job %s failed", name)
        finally:
            self._running.discard(task)

    def start(self) -> None:
        """Start the scheduler in the running event loop (the app's lifespan)."""
        scheduler = AsyncIOScheduler(timezone=UTC)
        # APScheduler logs two INFO lines per run; every 5 s that drowns the server's own
        # log. Failures still show (logged by _scheduled), and an explicit level is kept.
        executor_log = logging.getLogger("apscheduler.executors.default")
        if executor_log.level == logging.NOTSET:
            executor_log.setLevel(logging.WARNING)
        now = datetime.now(UTC)
        for job in self.jobs.values():
            first = job.tick_seconds if job.first_delay_seconds is None else job.first_delay_seconds
            scheduler.add_job(
                self._scheduled,
                "interval",
                seconds=job.tick_seconds,
                args=[job.name],
                id=job.name,
                next_run_time=now + timedelta(seconds=first),
                # A late tick (a busy loop, a suspended host) runs once, not once per missed slot.
                coalesce=True,
                max_instances=1,
                misfire_grace_time=max(int(job.tick_seconds), 1),
            )
        scheduler.start()
        self.scheduler = scheduler

    @property
    def running(self) -> bool:
        return self.scheduler is not None and bool(self.scheduler.running)

    async def stop(self) -> None:
        """Stop scheduling, let running ticks finish briefly, and hand the leases back."""
        if self.scheduler is None:
            return
        # Pause first: APScheduler's asyncio executor cancels running jobs on shutdown,
        # and a tick cut between the SMTP server's 250 and our commit would resend mail.
        self.scheduler.pause()
        await finish_or_cancel(set(self._running), STOP_GRACE_SECONDS, "a scheduled job tick")
        self.scheduler.shutdown(wait=False)
        self.scheduler = None
        now = self.context.clock()
        for name in (n for n, job in self.jobs.items() if job.leased):
            try:
                await release_lease(self.context.db, name, self.holder, now)
            except Exception:
                # Shutdown goes on; the lease simply expires on its own.
                log.warning("could not release the lease on job %s", name, exc_info=True)
