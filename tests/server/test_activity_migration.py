"""Migration 0014: one row per event becomes chunks and rollups, and back on downgrade.

The activity of a scene with every kind of row (a licensed user's days of activity, a merge's
re-keyed events and reports under the alias it left, a removed user's kept rows) goes down
to ``activity_event`` and up again: the rollups come back exactly, and so does every event.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from alembic import command
from sqlalchemy import Connection

from server.domain import actions
from server.domain.activity import ingestion
from server.domain.activity.batch import Batch, Event
from server.domain.activity.chunks import CHUNK, ROLLUP, decode
from server.domain.admission import AgentReport
from server.domain.undo.removed import REMOVED_CHUNK, REMOVED_ROLLUP
from server.infra.db import Database, alembic_config
from tests.server.undo_scene import T2, act, scene, send
from tests.support import START


def _migrate(revision: str) -> Any:
    def run(connection: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        if revision == "head":
            command.upgrade(cfg, "head")
        else:
            command.downgrade(cfg, revision)

    return run


async def _stored(db: Database) -> dict[str, Any]:
    """Every rollup row, and every event with its user, agent and origin (chunks regroup)."""
    async with db.read() as s:
        out: dict[str, Any] = {}
        for name, rollup, chunk in (("live", ROLLUP, CHUNK), ("removed", REMOVED_ROLLUP, REMOVED_CHUNK)):
            columns = [c for c in rollup.c if c.name != "shadow_id"]
            out[f"{name} rollups"] = sorted(tuple(r) for r in await s.execute(sa.select(*columns)))
            rows = await s.execute(
                sa.select(chunk.c.user_id, chunk.c.agent_id, chunk.c.origin_agent_id, chunk.c.events)
            )
            out[f"{name} events"] = Counter((u, a, o, e) for u, a, o, blob in rows for e in decode(blob))
        return out


async def test_activity_goes_down_to_one_row_per_event_and_up_again_unchanged(db: Database) -> None:
    given = await scene(db)
    licensed = given.licensed[1]
    # Days of a licensed user's activity in several apps, titles and urls included.
    batch = Batch(
        "days",
        AgentReport("LIC-1", "ACME", "lic-1", "lic-1"),
        [
            Event(
                START - timedelta(days=d, minutes=m), 30 + m, f"app{m % 3}.exe", f"T{m}", "https://x/é", kind
            )
            for d in range(5)
            for m, kind in enumerate(("productive", "neutral", "unproductive", "neutral"))
        ],
    )
    async with db.write() as s:
        await ingestion.ingest(s, given.account_id, batch, START)
    # A merge re-keys P1's events to L0's agent, and later reports under P1's key follow them.
    await act(db, actions.merge, given.actor, given.pending[1], given.agents[given.licensed[0]])
    await send(db, given.account_id, "PEND-1", 40, T2)
    # A removal keeps P0's rows hidden while it can be undone.
    await act(db, actions.remove, given.actor, [given.pending[0]], False)
    before = await _stored(db)
    assert sum(before["live events"].values()) == 2 + 20 + 1 + 1 and before["removed events"]
    assert any(a != o for _, a, o, _ in before["live events"]), "the merge left re-keyed events"
    assert licensed in {u for u, *_ in before["live events"]}

    async with db.write_engine.begin() as conn:
        await conn.run_sync(_migrate("0013"))
    async with db.write_engine.connect() as conn:
        per_event = (await conn.execute(sa.text("SELECT count(*) FROM activity_event"))).scalar_one()
        kept = (await conn.execute(sa.text("SELECT count(*) FROM removed_activity_event"))).scalar_one()
    assert (per_event, kept) == (sum(before["live events"].values()), sum(before["removed events"].values()))

    async with db.write_engine.begin() as conn:
        await conn.run_sync(_migrate("head"))
    assert await _stored(db) == before
