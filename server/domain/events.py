"""Queue events: one per user whose place in an account's queue changed, as committed.

The domain records them on the session of the writing transaction (:func:`record`);
:meth:`server.infra.db.Database.write` takes them (:func:`take_recorded`) and hands them
to the broadcaster (:mod:`server.infra.broadcast`) before and after the commit. Nothing
is delivered for a transaction that rolled back.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server.domain.models import QueueAction


@dataclass(frozen=True, slots=True)
class AccountUsage:
    """The account's license usage after a change."""

    account_id: int
    license_limit: int
    licenses_used: int
    pending_count: int
    manual_review: bool
    # The account's plan version after the change (the API's queueVersion; server.domain.plans).
    # Defaulted: a payload from a process that predates it still parses.
    plan_version: int = 0


@dataclass(frozen=True, slots=True)
class QueueEvent:
    """One user's change to an account's queue, as committed.

    Immutable and hashable: the broker hands the same object to every subscriber, and the
    GraphQL layer keys the payload it resolves once per event by it.
    """

    action: QueueAction
    account_id: int
    user_id: int
    at: datetime
    actor_id: int | None
    usage: AccountUsage
    # The account's queue version after the change: a client that missed events compares.
    queue_version: int
    # ASSIGNED or MERGED: the user the pending user became part of (its row may be queued too).
    target_user_id: int | None = None

    def to_json(self) -> str:
        """A compact JSON form, e.g. for a PostgreSQL NOTIFY payload (well under its 8 kB)."""
        data: dict[str, Any] = asdict(self)
        data["action"] = self.action.value
        data["at"] = self.at.isoformat()
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> QueueEvent:
        """The inverse of :meth:`to_json`; raises ``ValueError``/``KeyError``/``TypeError`` on a bad payload."""
        data = json.loads(raw)
        return cls(
            action=QueueAction(data["action"]),
            account_id=int(data["account_id"]),
            user_id=int(data["user_id"]),
            at=datetime.fromisoformat(data["at"]),
            actor_id=None if data["actor_id"] is None else int(data["actor_id"]),
            usage=AccountUsage(**data["usage"]),
            queue_version=int(data["queue_version"]),
            # Absent from a payload of a process that predates it.
            target_user_id=None if data.get("target_user_id") is None else int(data["target_user_id"]),
        )


def record(session: AsyncSession, events: Sequence[QueueEvent]) -> None:
    """Queue ``events`` for publication when ``session``'s transaction commits."""
    session.info.setdefault("queue_events", []).extend(events)


def take_recorded(session: AsyncSession) -> list[QueueEvent]:
    events: list[QueueEvent] = session.info.pop("queue_events", [])
    return events
