"""What the edges (HTTP, GraphQL, jobs, CLI) share in one process: settings, database, clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from server.db import Database
from server.models import utcnow
from server.settings import Settings

Clock = Callable[[], datetime]


@dataclass
class Services:
    settings: Settings
    db: Database
    clock: Clock = utcnow
    # Ingest key hash -> account id; keys never change owner.
    ingest_keys: dict[str, int] = field(default_factory=dict)


def of(app: Any) -> Services:
    services: Services = app.state.services
    return services
