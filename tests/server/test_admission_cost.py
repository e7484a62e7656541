"""What an ingest group with new agents costs the database: a fixed number of statements
whatever its size, and look-ups that search indexes (docs/architecture.md, admission)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col

from server.domain import actions
from server.domain.activity import ingestion
from server.domain.activity.batch import Batch
from server.domain.admission import AgentReport
from server.domain.events import QueueEvent
from server.domain.models import Suggestion, UserStatus
from server.infra.db import Database
from tests.server.domain import admin, agents_of, arrive, users
from tests.server.plans import scans, statements
from tests.support import START, make_tenant


def report(i: int) -> AgentReport:
    return AgentReport(f"PC-{i}", "ACME", f"user{i}", f"Person {i}")


async def group_with_new_agents(db: Database, size: int) -> list[tuple[str, Any]]:
    """One group of ``size`` batches: ``size - 2`` new users, with free licenses for half of
    them (the others enter the queue), one of them the local account of a known user's
    laptop (a likely match both ways); a known user's second device; a known agent."""
    tenant = await make_tenant(db, licenses=2 + (size - 2) // 2)
    await arrive(db, tenant.account_id, "LT-1", "jdoe", name="Jo Doe")
    known = await arrive(db, tenant.account_id, "PC-KNOWN", "ann")
    batches = [
        Batch("first", AgentReport("LT-1", "LT-1", "jdoe", "Jo Doe"), []),  # matches LT-1\ACME\jdoe
        Batch("first", AgentReport("PC-2ND", "ACME", "ann", "ann"), []),  # ann's second device
        Batch("b2", AgentReport("PC-KNOWN", "ACME", "ann", "ann"), []),  # a known agent
        *(Batch("first", report(i), []) for i in range(size - 3)),
    ]
    sub = db.broadcaster.subscribe(tenant.account_id)
    later = START + timedelta(hours=1)
    with statements(db) as seen:
        async with db.write() as s:
            results = await ingestion.ingest_many(s, [(tenant.account_id, b) for b in batches], later)
    assert results[1].user_id == results[2].user_id == known.user_id
    pending = [r for r in results if r.status == "PENDING"]
    assert len(pending) == (size - 2) - (size - 2) // 2
    async with db.read() as s:
        matched = await s.execute(
            sa.select(col(Suggestion.pending_user_id)).where(col(Suggestion.account_id) == tenant.account_id)
        )
        assert results[0].user_id in set(matched.scalars())
    # Everyone reported now is seen now, those just admitted (inserted so) and those known.
    seen_at = await users(db, tenant.account_id)
    assert all(seen_at[r.user_id or 0].last_seen_at == later for r in results)
    assert {a.last_seen_at for r in results for a in await agents_of(db, r.user_id or 0)} == {later}
    # The queue events carry the usage after the whole group, as counted afterwards.
    events: list[QueueEvent] = []
    while not sub._queue.empty():
        events.append(sub._queue.get_nowait())  # type: ignore[arg-type]
    sub.close()
    assert sorted(e.user_id for e in events) == sorted(r.user_id or 0 for r in pending)
    licensed = sum(1 for u in seen_at.values() if u.status is UserStatus.LICENSED)
    assert {(e.usage.licenses_used, e.usage.pending_count) for e in events} == {(licensed, len(pending))}
    return seen


async def test_an_admission_group_costs_the_same_statements_whatever_its_size(db: Database) -> None:
    small = await group_with_new_agents(db, 4)
    large = await group_with_new_agents(db, 24)
    assert len(large) == len(small), [s.split("\n")[0] for s, _ in large]
    # Each is what one new agent costs: read the batch ids, keys and aliases, lock the
    # account, read the do-not-track keys, logins and usage, insert users and agents, audit
    # and queue the pending ones, bump the queue's version, file match keys, find and store
    # likely matches (then those of the users they match), store the events, mark the known
    # agent and user seen, remember the batch ids; BEGIN and COMMIT where the driver runs
    # them as statements.
    assert len(large) <= 24, [s.split("\n")[0] for s, _ in large]


@pytest.mark.parametrize("backend", ["sqlite"])  # SQLite's query plans
async def test_an_ingest_groups_look_ups_search_indexes_and_never_scan_a_table(
    db: Database,
) -> None:
    tenant = await make_tenant(db, licenses=1)
    kept = await arrive(db, tenant.account_id, "PC-A", "ann")
    merged = await arrive(db, tenant.account_id, "PC-B", "bob")
    async with db.write() as s:
        await actions.merge(s, admin(tenant.account_id), merged.user_id or 0, kept.agent_id or 0, START)
    for i in range(3):
        await arrive(db, tenant.account_id, f"PC-{i}", f"user{i}")
    batches = [
        Batch("1", AgentReport("PC-A", "ACME", "ann", "ann"), []),  # known
        Batch("1", AgentReport("PC-B", "ACME", "bob", "bob"), []),  # an alias
        Batch("1", AgentReport("PC-A", "ACME", "ann", "ann"), []),  # a replay
        Batch("1", AgentReport("PC-NEW", "ACME", "cy", "Cy"), []),  # new
    ]
    with statements(db) as seen:
        async with db.write() as s:
            await ingestion.ingest_many(s, [(tenant.account_id, b) for b in batches], START)
    path = db.url.split("///", 1)[1]
    assert not scans(path, seen)
