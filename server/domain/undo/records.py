"""What each reversible action records for its undo (``AuditEntry.undo``), as JSON.

Written by the actions themselves (:mod:`server.domain.actions`, :mod:`server.domain.reclaim`),
one record per audit entry, in the action's transaction; read by :mod:`server.domain.undo.apply`.
A record holds only what the action overwrote or deleted and cannot be read back later:

* ``approval``: the reason the user waited with (its ``enteredAt`` is the entry's
  ``queue_entered_at``) and its ``licensed_until``;
* ``release``: when the user had been licensed, and its ``licensed_until``;
* ``assignment``: the pending user's row, the ids of the agents that moved, and the target
  user's first- and last-seen times before the assignment;
* ``merger``: the pending user's row and its agents' rows, the target agent's times before
  the merge, and which earlier aliases of each folded agent followed it to the target
  (aliases are named by key: on SQLite an alias id may be reused);
* ``removal``: the do-not-track keys the removal added for the user. The removed rows
  themselves are kept in the shadow tables of :mod:`server.domain.undo.removed`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import SQLModel

from server.domain.models import Agent, PendingReason, User, UTCDateTime

APPROVAL, RELEASE, ASSIGNMENT, MERGER, REMOVAL = "approval", "release", "assignment", "merger", "removal"


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def parse_time(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


def _columns(table: sa.Table) -> list[sa.Column[Any]]:
    # The insert sentinel is no data of the row.
    return [c for c in table.columns if not c.name.startswith("_")]


def row_of(row: SQLModel) -> dict[str, Any]:
    """A row's columns as JSON values (times in ISO 8601, enums by value)."""
    table: sa.Table = row.__table__  # type: ignore[attr-defined]
    out: dict[str, Any] = {}
    for column in _columns(table):
        value = getattr(row, column.name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, enum.Enum):
            value = value.value
        out[column.name] = value
    return out


def values_of(table: sa.Table, data: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`row_of`: values to insert the row again, with its id."""
    return {
        c.name: parse_time(data[c.name]) if isinstance(c.type, UTCDateTime) else data[c.name]
        for c in _columns(table)
    }


def approval(reason: PendingReason, licensed_until: datetime | None) -> dict[str, Any]:
    return {"kind": APPROVAL, "reason": reason.value, "licensed_until": _time(licensed_until)}


def release(licensed_at: datetime | None, licensed_until: datetime | None) -> dict[str, Any]:
    return {"kind": RELEASE, "licensed_at": _time(licensed_at), "licensed_until": _time(licensed_until)}


def _times(user_or_agent: User | Agent) -> dict[str, Any]:
    return {
        "first_seen_at": _time(user_or_agent.first_seen_at),
        "last_seen_at": _time(user_or_agent.last_seen_at),
    }


def assignment(pending: User, agent_ids: Sequence[int], target: User) -> dict[str, Any]:
    """Before the assignment: call it before the target's times change."""
    return {
        "kind": ASSIGNMENT,
        "user": row_of(pending),
        "agent_ids": list(agent_ids),
        "target_user_id": target.id,
        "target": _times(target),
    }


def merger(
    pending: User, folded: Iterable[Agent], target: Agent, owner: User, followed: Mapping[int, list[str]]
) -> dict[str, Any]:
    """Before the merge: call it before the target's and its owner's times change.

    ``followed``: per folded agent, the keys of its earlier aliases, which now lead to the target.
    """
    return {
        "kind": MERGER,
        "user": row_of(pending),
        "agents": [row_of(a) for a in folded],
        "target_agent_id": target.id,
        "target": _times(target),
        "owner_user_id": owner.id,
        "owner": _times(owner),
        "followed": {str(agent_id): keys for agent_id, keys in followed.items()},
    }


def removal(do_not_track_keys: Sequence[str]) -> dict[str, Any]:
    return {"kind": REMOVAL, "do_not_track": list(do_not_track_keys)}
