"""The per-process runtime: what the edges (HTTP, GraphQL, jobs) share in one process.

Settings, the database, the clock (a test's FakeClock reaches ingestion and jobs through
it), the ingest-key cache, the group committer, the readiness check, the rate limits,
the metrics and the webhook dispatcher.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cachetools import TTLCache
from starlette.applications import Starlette

from server.domain.auth import IngestKeyOwner
from server.domain.models import utcnow
from server.infra.clock import Clock
from server.infra.db import Database
from server.infra.group_commit import IngestCommitter
from server.infra.rate_limits import RateLimits
from server.infra.readiness import Readiness
from server.infra.settings import Settings
from server.infra.telemetry import Telemetry
from server.infra.webhooks import WebhookDispatcher

__all__ = ["Clock", "Services", "of"]

# How long this process trusts what it learnt about an ingest key before reading it again:
# a rotation made elsewhere (another process, the CLI) reaches it within this time. The
# grace period of a rotated-out key is checked on every batch against the injected clock.
INGEST_KEY_RECHECK_SECONDS = 1.0


@dataclass
class Services:
    settings: Settings
    db: Database
    clock: Clock = utcnow
    # Ingest key hash -> its owner and until when it is accepted; re-read every second.
    ingest_keys: TTLCache[str, IngestKeyOwner] = field(init=False)
    telemetry: Telemetry = field(default_factory=Telemetry)
    committer: IngestCommitter = field(init=False)
    readiness: Readiness = field(init=False)
    limits: RateLimits = field(init=False)
    webhooks: WebhookDispatcher = field(init=False)

    def __post_init__(self) -> None:
        # The clock is read through the Services so a test's FakeClock applies to ingestion.
        self.committer = IngestCommitter(
            self.db,
            lambda: self.clock(),
            on_group=self.telemetry.group_committed,
            commit_delay=self.settings.ingest_commit_delay_ms / 1000,
        )
        self.readiness = Readiness(self.db, lambda: self.clock())
        # On the app's clock, as the grace period it caches: a test's FakeClock drives both.
        self.ingest_keys = TTLCache(
            maxsize=10_000, ttl=INGEST_KEY_RECHECK_SECONDS, timer=lambda: self.clock().timestamp()
        )
        self.limits = RateLimits(self.settings)
        # Started with the scheduled jobs (server.web.schedule.JobRunner).
        self.webhooks = WebhookDispatcher(self.db, self.settings, lambda: self.clock())


def of(app: Starlette) -> Services:
    """The app's services (``create_app`` keeps them on ``app.state``)."""
    services: Services = app.state.services
    return services
