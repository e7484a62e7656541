"""The app's scheduled jobs, each a few lines over the domain and the outbox.

* ``notifications`` (every :data:`NOTIFY_TICK_SECONDS`): write the digests whose window has
  closed (:mod:`server.domain.notifications.digests`), then deliver due outbox messages
  (:mod:`server.infra.outbox`, mail through :mod:`server.infra.mail`).
* ``reminders`` (every 15 minutes, checked every minute): the daily reminders
  (:mod:`server.domain.notifications.reminders`), sent by the next ``notifications`` tick.
* ``retention`` (hourly, checked every minute, first a minute after start so short-lived
  processes still purge): :func:`server.domain.retention.purge`, also ``plm purge``.
* ``statistics`` (every ten minutes, first a minute after start): the query planner's
  statistics on SQLite, and the search index's b-trees merged (:mod:`server.infra.statistics`);
  nothing on PostgreSQL.
* ``webhooks`` (every second, in every process, no lease: deliveries are claimed row by
  row with ``SKIP LOCKED``): :meth:`server.infra.webhooks.WebhookDispatcher.tick`, which is
  also woken after each commit of queue events.

:class:`JobRunner` runs them through the leases of :mod:`server.infra.jobs`, one process at
a time. The jobs are safe to overlap anyway (digest cursors and outbox claims are
transactional); the lease keeps them from doing the work twice. Ticks read the injected
clock (:attr:`Services.clock`), so tests drive them directly:
``await schedule.run_digest_tick(svc)``, or ``await runner.tick("notifications")`` through
the lease.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from server.domain import retention
from server.domain.notifications import digests, reminders
from server.infra import outbox, statistics
from server.infra.clock import Clock
from server.infra.db import Database
from server.infra.jobs import LEASE_INTERVALS, Job
from server.infra.jobs import JobRunner as LeasedJobRunner
from server.infra.mail import SmtpSender
from server.infra.outbox import DeliveryReport
from server.infra.settings import Settings
from server.web.runtime import Services

__all__ = [
    "JOBS",
    "LEASE_INTERVALS",
    "NOTIFY_TICK_SECONDS",
    "RETENTION_FIRST_DELAY_SECONDS",
    "RETENTION_INTERVAL_SECONDS",
    "RETENTION_TICK_SECONDS",
    "WEBHOOK_TICK_SECONDS",
    "DigestTick",
    "Job",
    "JobRunner",
    "deliver_outbox",
    "run_digest_tick",
    "run_reminder_tick",
    "run_retention_tick",
    "run_statistics_tick",
    "run_webhook_tick",
    "senders",
]

log = logging.getLogger(__name__)

NOTIFY_TICK_SECONDS = 5.0
RETENTION_INTERVAL_SECONDS = 3600.0
RETENTION_TICK_SECONDS = 60.0
RETENTION_FIRST_DELAY_SECONDS = 60.0
REMINDER_INTERVAL_SECONDS = 900.0
STATISTICS_INTERVAL_SECONDS = statistics.INTERVAL_SECONDS
WEBHOOK_TICK_SECONDS = 1.0


def senders(settings: Settings) -> Mapping[outbox.Kind, outbox.Sender]:
    """Who delivers each kind of outbox message in this app."""
    return {outbox.Kind.MAIL: SmtpSender(settings)}


async def deliver_outbox(
    db: Database, settings: Settings, clock: Clock, *, limit: int = outbox.DELIVERY_BATCH
) -> DeliveryReport:
    """Deliver due outbox messages with this app's senders."""
    return await outbox.deliver(db, senders(settings), clock, limit=limit)


@dataclass(frozen=True, slots=True)
class DigestTick:
    written: int
    delivery: DeliveryReport


async def run_digest_tick(svc: Services) -> DigestTick:
    """Write the digests whose window has closed, then deliver due mail."""
    written = await digests.build_digests(svc.db, svc.settings, svc.clock())
    delivery = await deliver_outbox(svc.db, svc.settings, svc.clock)
    return DigestTick(written, delivery)


async def run_reminder_tick(svc: Services) -> int:
    """Write the daily reminders due now (overdue users, activity about to expire)."""
    return await reminders.build_reminders(svc.db, svc.settings, svc.clock())


async def run_retention_tick(svc: Services) -> retention.PurgeReport:
    report = await retention.purge(svc.db, svc.clock(), timedelta(hours=svc.settings.undo_hours))
    if report.events or report.ingest_batches or report.outbox_messages or report.removed_users:
        log.info("retention: %s", report.to_json())
    return report


async def run_statistics_tick(svc: Services) -> bool:
    return await statistics.refresh(svc.db)


async def run_webhook_tick(svc: Services) -> int:
    """Claim due webhook deliveries and start sending them (it does not wait for receivers)."""
    return await svc.webhooks.tick()


JOBS: tuple[Job[Services], ...] = (
    Job("notifications", NOTIFY_TICK_SECONDS, run_digest_tick),
    # Written here, sent by the notifications job's delivery; at most one a day per admin.
    Job(
        "reminders",
        REMINDER_INTERVAL_SECONDS,
        run_reminder_tick,
        RETENTION_FIRST_DELAY_SECONDS,
        poll_seconds=RETENTION_TICK_SECONDS,
    ),
    Job(
        "retention",
        RETENTION_INTERVAL_SECONDS,
        run_retention_tick,
        RETENTION_FIRST_DELAY_SECONDS,
        poll_seconds=RETENTION_TICK_SECONDS,
    ),
    Job(
        "statistics",
        STATISTICS_INTERVAL_SECONDS,
        run_statistics_tick,
        RETENTION_FIRST_DELAY_SECONDS,
        poll_seconds=RETENTION_TICK_SECONDS,
    ),
    Job("webhooks", WEBHOOK_TICK_SECONDS, run_webhook_tick, leased=False),
)


class JobRunner(LeasedJobRunner[Services]):
    """The jobs of one app instance (:data:`JOBS` unless told otherwise) over its Services."""

    def __init__(
        self,
        svc: Services,
        jobs: Sequence[Job[Services]] = JOBS,
        holder: str | None = None,
        on_result: Callable[[str, str], None] | None = None,
    ) -> None:
        super().__init__(svc, jobs, holder, on_result=on_result)

    @property
    def svc(self) -> Services:
        return self.context

    def start(self) -> None:
        """Start the jobs, and the webhook sends woken by commits between their ticks."""
        super().start()
        self.svc.webhooks.start()

    async def stop(self) -> None:
        """Stop the jobs, then the webhook sends they started (given a few seconds)."""
        await super().stop()
        await self.svc.webhooks.close()
