"""Stored activity is looked up and rewritten by user-day through its indexes: a row-value IN
list would read every chunk and rollup row on SQLite (server.domain.lookups)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from server.domain import retention
from server.domain.activity import chunks, ingestion
from server.domain.activity.batch import Batch, Event
from server.domain.admission import AgentReport
from server.infra.db import Database
from tests.server.plans import scans, statements
from tests.support import START, make_tenant

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])  # SQLite's query plans


def day_of(n: int) -> list[Event]:
    return [
        Event(START - timedelta(days=n, minutes=i), 60, f"app{i % 2}", None, None, "neutral")
        for i in range(3)
    ]


async def stored(db: Database, users: int, days: int) -> tuple[int, list[tuple[int, object]]]:
    tenant = await make_tenant(db, licenses=0)
    batches = [
        Batch(f"b{d}", AgentReport(f"PC-{u}", "ACME", f"user{u}", f"User {u}"), day_of(d))
        for u in range(users)
        for d in range(days)
    ]
    async with db.write() as s:
        results = await ingestion.ingest_many(s, [(tenant.account_id, b) for b in batches], START)
    user_ids = sorted({r.user_id for r in results if r.user_id is not None})
    pairs = [(u, (START - timedelta(days=d)).date()) for u in user_ids for d in range(days)]
    return tenant.account_id, pairs


async def test_events_of_and_rewrite_search_by_user_day(db: Database) -> None:
    _, pairs = await stored(db, users=3, days=4)
    wanted = pairs[:5]
    with statements(db) as seen:
        async with db.write() as s:
            events = await chunks.events_of(s, wanted)
            gone = await chunks.rewrite(s, wanted, lambda e: e.event.app == "app0")
    assert len(events) == 5 * 3
    assert gone == 5  # one of three events per user-day is app1
    assert not scans(db.url.split("///", 1)[1], seen)
    async with db.read() as s:
        assert len(await chunks.events_of(s, wanted)) == 5 * 2
        assert len(await chunks.events_of(s, pairs)) == 12 * 3 - 5


async def test_retention_deletes_expired_rollups_by_their_key(db: Database) -> None:
    account_id, pairs = await stored(db, users=2, days=40)
    with statements(db) as seen:
        async with db.write() as s:
            purged = await retention.purge_account(s, account_id, START)
    assert purged.events > 0
    deletes = [(sql, p) for sql, p in seen if sql.lstrip().upper().startswith("DELETE")]
    assert deletes
    assert not scans(db.url.split("///", 1)[1], deletes)
    async with db.read() as s:
        kept = await chunks.events_of(s, pairs)
    assert kept and all(e.event.start >= retention.cutoff(START, 30) for e in kept)
