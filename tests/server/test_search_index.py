"""The lists' ``search`` through the trigram index finds exactly what a plain substring filter
finds (today's ``lower(column) LIKE``), on SQLite (FTS5) and PostgreSQL (pg_trgm), after the
writes that change names, logons and devices: admission, merge, assign, removal and its undo.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from server.domain import actions, admission
from server.domain.admission import AgentReport
from server.domain.changes import Actor
from server.domain.models import Agent, Role, User, UserStatus
from server.domain.reads import lists
from server.domain.reads.lists import PendingOrder
from server.domain.reads.search import SEARCH_INDEXES
from server.domain.undo import apply
from server.infra.db import Database
from tests import pg
from tests.conftest import BACKENDS
from tests.support import START, make_tenant, sqlite_url

# Case pairs ASCII and not, LIKE's wildcards and escape, FTS5's quote, a space.
ALPHABET = 'aAbBéÉ%_\\" x'
_U, _AG = (sa.inspect(m).local_table.c for m in (User, Agent))


def _text(rng: random.Random) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(3, 8))).strip() or "zz"


def _contains(column: Any, term: str) -> Any:
    """Today's rule, written out: ``lower(column) LIKE '%term%'`` with the wildcards escaped."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return sa.func.lower(column).like(f"%{escaped}%", escape="\\")


@dataclass
class Searched:
    runner: asyncio.Runner
    db: Database
    account_id: int

    def run(self, coro: Any) -> Any:
        return self.runner.run(coro)


async def _populate(db: Database) -> int:
    """Thirty agents with hostile names, some merged, assigned, removed and brought back."""
    tenant = await make_tenant(db, licenses=5)
    actor = Actor(tenant.account_id, tenant.admin_id, Role.ADMIN)
    rng = random.Random(18)
    async with db.write() as s:
        reports = [AgentReport(_text(rng), "ACME", _text(rng), _text(rng)) for _ in range(30)]
        await admission.admit_many(s, tenant.account_id, reports, START)
    async with db.read() as s:
        pending = list(
            (
                await s.execute(sa.select(_U.id).where(_U.status == UserStatus.PENDING).order_by(_U.id))
            ).scalars()
        )
        agents = list((await s.execute(sa.select(_AG.id, _AG.user_id).order_by(_AG.id))).all())
    licensed_agent = next(a for a, u in agents if u not in pending)
    licensed_user = next(u for _a, u in agents if u not in pending)
    now = START + timedelta(minutes=1)
    async with db.write() as s:
        await actions.merge(s, actor, pending[0], licensed_agent, now)
    async with db.write() as s:
        await actions.assign(s, actor, pending[1], licensed_user, now)
    async with db.write() as s:
        await actions.remove(s, actor, pending[2:4], False, now)
    async with db.write() as s:
        await actions.remove(s, actor, [pending[4]], False, now)
    async with db.read() as s:
        (entry,) = await s.execute(sa.text("SELECT max(id) FROM audit_entry"))
    async with db.write() as s:
        await apply.undo_actions(s, actor, [entry[0]], now, timedelta(days=1))
    return tenant.account_id


@pytest.fixture(scope="module", params=BACKENDS)
def searched(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Searched]:
    if request.param == "sqlite":
        url = sqlite_url(Path(tmp_path_factory.mktemp("search")) / "plm.db")
        server = None
    else:
        server = pg.PostgresServer()
        url = server.create_database()
    runner = asyncio.Runner()
    db = Database(url)
    try:
        runner.run(db.migrate())
        yield Searched(runner, db, runner.run(_populate(db)))
    finally:
        runner.run(db.dispose())
        runner.close()
        if server is not None:
            server.stop()


async def _reference(db: Database, account_id: int, term: str) -> tuple[set[int], set[int]]:
    """The users and agents a plain substring filter finds, without any index."""
    async with db.read() as s:
        agent_hit = sa.or_(_contains(_AG.logon_name, term), _contains(_AG.device_name, term))
        users = sa.select(_U.id).where(
            _U.account_id == account_id,
            sa.or_(_contains(_U.display_name, term), _U.id.in_(sa.select(_AG.user_id).where(agent_hit))),
        )
        agents = sa.select(_AG.id).where(
            _AG.account_id == account_id,
            sa.or_(agent_hit, _AG.user_id.in_(sa.select(_U.id).where(_contains(_U.display_name, term)))),
        )
        return set((await s.execute(users)).scalars()), set((await s.execute(agents)).scalars())


async def _indexed(db: Database, account_id: int, search: str) -> dict[str, Any]:
    async with db.read() as s:
        user_filter = lists.UserFilter(account_id, search)
        pending_filter = lists.PendingFilter(account_id, search)
        agent_filter = lists.AgentFilter(account_id, search)
        return {
            "users": [u.id for u in (await lists.users_page(s, user_filter, 500, None)).items],
            "users_count": await lists.users_count(s, user_filter),
            "pending": {
                order: [u.id for u in (await lists.pending_page(s, pending_filter, 500, None, order)).items]
                for order in PendingOrder
            },
            "pending_count": await lists.pending_count(s, pending_filter),
            # Each list's first page's own count (cursors.Page.count), by ``first``.
            "page_counts": {
                (name, first): (await page(s, filt, first, None)).count
                for name, page, filt in (
                    ("users", lists.users_page, user_filter),
                    ("pending", lists.pending_page, pending_filter),
                    ("agents", lists.agents_page, agent_filter),
                )
                for first in (1, 2, 500)
            },
            "agents": [a.id for a in (await lists.agents_page(s, agent_filter, 500, None)).items],
            "agents_count": await lists.agents_count(s, agent_filter),
        }


async def _all_statuses(db: Database, account_id: int) -> dict[int, UserStatus]:
    async with db.read() as s:
        rows = await s.execute(sa.select(_U.id, _U.status).where(_U.account_id == account_id))
        return {i: st for i, st in rows.all()}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(search=st.text(ALPHABET, min_size=1, max_size=5))
def test_indexed_search_finds_what_a_substring_filter_finds(searched: Searched, search: str) -> None:
    found = searched.run(_indexed(searched.db, searched.account_id, search))
    term = search.strip().lower()
    if not term:  # blank: no search at all
        users, agents = searched.run(_reference(searched.db, searched.account_id, ""))
    else:
        users, agents = searched.run(_reference(searched.db, searched.account_id, term))
    statuses = searched.run(_all_statuses(searched.db, searched.account_id))
    pending = {u for u in users if statuses[u] is UserStatus.PENDING}
    assert set(found["users"]) == users and found["users_count"] == len(users)
    assert len(found["users"]) == len(users)
    for order, ids in found["pending"].items():
        assert set(ids) == pending and len(ids) == len(pending), order
    assert found["pending_count"] == len(pending)
    assert set(found["agents"]) == agents and found["agents_count"] == len(agents)
    # A first page holding every row found is the whole list: its rows are its count.
    totals = {"users": len(users), "pending": len(pending), "agents": len(agents)}
    for (name, first), counted in found["page_counts"].items():
        assert counted == (totals[name] if totals[name] <= first else None), (name, first)


def test_the_index_follows_every_write(searched: Searched) -> None:
    """Searching for every name, logon and device of every row finds what the rows hold (nothing stale)."""

    async def names() -> list[tuple[int, str]]:
        async with searched.db.read() as s:
            agents = await s.execute(sa.select(_AG.user_id, _AG.logon_name, _AG.device_name))
            users = await s.execute(sa.select(_U.id, _U.display_name))
            return [(u, t) for u, *texts in agents.all() for t in texts] + [tuple(r) for r in users.all()]  # type: ignore[misc]

    for user_id, text in searched.run(names()):
        found = searched.run(_indexed(searched.db, searched.account_id, text))
        users, _agents = searched.run(_reference(searched.db, searched.account_id, text.strip().lower()))
        assert set(found["users"]) == users, text
        if text.isascii():  # a non-ASCII capital is not lower-cased by SQLite's lower()
            assert user_id in users, text


def test_the_planner_can_read_the_index_for_a_long_term(searched: Searched) -> None:
    """SQLite starts from the FTS5 tables; PostgreSQL can read pg_trgm's indexes (its planner
    picks them only where the tables are large: bench/queue_page.py's 100,000-user search)."""

    sql = ""

    def explain(session: Session) -> str:
        nonlocal sql
        bound = lists.PendingFilter(searched.account_id, "abc").bound()
        conn = session.connection()
        stmt = sa.select(_U.id).where(*bound.where).params(bound.params)
        sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
        if conn.dialect.name == "sqlite":
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)
        else:  # thirty rows: without these a scan is cheaper than any index
            for scan in ("seqscan", "indexscan"):
                conn.exec_driver_sql(f"SET LOCAL enable_{scan} = off")
            rows = conn.exec_driver_sql("EXPLAIN " + sql)
        return "\n".join(" ".join(map(str, r)) for r in rows.all())

    async def plan() -> str:
        async with searched.db.read() as s:
            return await s.run_sync(explain)

    text = searched.run(plan())
    if "QUERY PLAN" in text or "SCAN" in text or "SEARCH" in text:
        assert "user_search VIRTUAL TABLE INDEX" in text and "agent_search VIRTUAL TABLE INDEX" in text, text
    else:
        assert all(ix in text for ix in SEARCH_INDEXES), text
    # A plain condition the planner can start from (at 100,000 users it goes from the index's
    # ids to the users by primary key), never ``IN (...) = 1``, which no index can answer.
    assert ") = 1" not in sql, sql
