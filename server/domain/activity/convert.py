"""Between one row per event and chunks with rollups (migration 0014, both ways).

Synchronous, over the migration's connection: events are read in order of agent and origin,
so each ``(agent, origin)``'s rollup rows are complete before they are written.
"""

from __future__ import annotations

from itertools import groupby

import sqlalchemy as sa
from sqlalchemy import Connection

from server.domain.activity.batch import Event
from server.domain.activity.chunks import Writes, decode
from server.domain.models import UTCDateTime

_SLICE = 1_000  # events per chunk at most, as a stored batch would have
_AGENTS = 500  # agents (or chunks) read at a time


def event_table(name: str, metadata: sa.MetaData, *, shadow: bool = False) -> sa.Table:
    """The columns of the per-event table this replaces (and of its removed-rows shadow)."""
    return sa.Table(
        name,
        metadata,
        sa.Column("shadow_id" if shadow else "id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("agent_id", sa.Integer, nullable=False),
        sa.Column("start", UTCDateTime(), nullable=False),
        sa.Column("duration_seconds", sa.Integer, nullable=False),
        sa.Column("app", sa.String(256), nullable=False),
        sa.Column("title", sa.String(2048)),
        sa.Column("url", sa.String(2048)),
        sa.Column("productivity", sa.String(16), nullable=False),
        sa.Column("origin_agent_id", sa.Integer),
    )


def to_chunks(conn: Connection, events: sa.Table, chunk: sa.Table, rollup: sa.Table) -> int:
    """Copy every row of ``events`` into ``chunk`` and ``rollup``; returns how many events.

    A few hundred agents at a time, each read whole (no server-side cursor stays open on a
    table the migration then drops)."""
    origin = sa.func.coalesce(events.c.origin_agent_id, events.c.agent_id)
    agents = sorted(conn.execute(sa.select(events.c.agent_id).distinct()).scalars())
    total = 0
    for i in range(0, len(agents), _AGENTS):
        rows = conn.execute(
            sa.select(
                events.c.agent_id,
                origin,
                events.c.user_id,
                events.c.start,
                events.c.duration_seconds,
                events.c.app,
                events.c.title,
                events.c.url,
                events.c.productivity,
            )
            .where(events.c.agent_id.in_(agents[i : i + _AGENTS]))
            .order_by(events.c.agent_id, origin, events.c.start)
        ).all()
        writes = Writes()
        for (agent_id, origin_id, user_id), group in groupby(rows, key=lambda r: (r[0], r[1], r[2])):
            batch = [Event(*r[3:]) for r in group]
            for j in range(0, len(batch), _SLICE):
                writes.add(user_id, agent_id, origin_id, batch[j : j + _SLICE])
            total += len(batch)
        _write(conn, writes, chunk, rollup)
    return total


def _write(conn: Connection, writes: Writes, chunk: sa.Table, rollup: sa.Table) -> None:
    chunk_rows, rollup_rows = writes.rows()
    if chunk_rows:
        conn.execute(sa.insert(chunk), chunk_rows)
    if rollup_rows:
        conn.execute(sa.insert(rollup), rollup_rows)


def to_events(conn: Connection, chunk: sa.Table, events: sa.Table) -> int:
    """Copy every event of ``chunk`` back into ``events``, one row each; returns how many."""
    ids = sorted(conn.execute(sa.select(chunk.c.id if "id" in chunk.c else chunk.c.shadow_id)).scalars())
    key = chunk.c.id if "id" in chunk.c else chunk.c.shadow_id
    total = 0
    for i in range(0, len(ids), _AGENTS):
        part = conn.execute(
            sa.select(chunk.c.user_id, chunk.c.agent_id, chunk.c.origin_agent_id, chunk.c.events).where(
                key.in_(ids[i : i + _AGENTS])
            )
        ).all()
        out = [
            {
                "user_id": user_id,
                "agent_id": agent_id,
                "start": e.start,
                "duration_seconds": e.duration_seconds,
                "app": e.app,
                "title": e.title,
                "url": e.url,
                "productivity": e.productivity,
                "origin_agent_id": None if origin_id == agent_id else origin_id,
            }
            for user_id, agent_id, origin_id, blob in part
            for e in decode(blob)
        ]
        if out:
            conn.execute(sa.insert(events), out)
            total += len(out)
    return total
