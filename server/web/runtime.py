"""The per-process runtime: what the edges (HTTP, GraphQL, jobs) share in one process.

Settings, the database, the clock (a test's FakeClock reaches ingestion and jobs through
it), the ingest-key cache, the group committer, the readiness check and the webhook dispatcher.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cachetools import LRUCache
from starlette.applications import Starlette

from server.domain.models import utcnow
from server.infra.clock import Clock
from server.infra.db import Database
from server.infra.group_commit import IngestCommitter
from server.infra.readiness import Readiness
from server.infra.settings import Settings
from server.infra.webhooks import WebhookDispatcher

__all__ = ["Clock", "Services", "of"]


@dataclass
class Services:
    settings: Settings
    db: Database
    clock: Clock = utcnow
    # Ingest key hash -> account id; keys never change owner.
    ingest_keys: LRUCache[str, int] = field(default_factory=lambda: LRUCache(maxsize=10_000))
    committer: IngestCommitter = field(init=False)
    readiness: Readiness = field(init=False)
    webhooks: WebhookDispatcher = field(init=False)

    def __post_init__(self) -> None:
        # The clock is read through the Services so a test's FakeClock applies to ingestion.
        self.committer = IngestCommitter(self.db, lambda: self.clock())
        self.readiness = Readiness(self.db, lambda: self.clock())
        # Started with the scheduled jobs (server.web.schedule.JobRunner).
        self.webhooks = WebhookDispatcher(self.db, self.settings, lambda: self.clock())


def of(app: Starlette) -> Services:
    """The app's services (``create_app`` keeps them on ``app.state``)."""
    services: Services = app.state.services
    return services
