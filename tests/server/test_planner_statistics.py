"""Query plans that do not hang on SQLite's statistics, and the job that keeps them.

Without ``ANALYZE``, SQLite's planner takes an equality on an index's first column for a
selective one: ``account_id = ? AND user_id IN (…)`` read the whole account through an
``account_id`` index (1.5 to 4 ms at 12,000 agents, against 0.05 ms by ids). The batch
loads by id are written so that no statistics are needed (``loads.checked_only``), and the
``statistics`` job gives the planner statistics for everything else.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from server.domain.reads import lists, loads
from server.domain.reads.rows import AGENT, AGENT_COLUMNS, USER, USER_COLUMNS
from server.infra import statistics
from server.infra.db import Database
from server.web import schedule as jobs
from tests.server.domain import arrive
from tests.support import make_tenant, sqlite_url

NOW = datetime(2026, 11, 26, 9, tzinfo=UTC)

# The loads as they were written before: the account's condition open to an index.
NAIVE_USERS = sa.select(*USER_COLUMNS).where(
    USER.c.account_id == sa.bindparam("account_id"), USER.c.id.in_(sa.bindparam("ids", expanding=True))
)
NAIVE_AGENTS = sa.select(*AGENT_COLUMNS).where(
    AGENT.c.account_id == sa.bindparam("account_id"), AGENT.c.user_id.in_(sa.bindparam("ids", expanding=True))
)


async def plan(db: Database, statement: sa.Select[Any]) -> str:
    """SQLite's plan for ``statement`` with an account and a page's 50 ids, as one line."""
    expanded = statement.compile(dialect=sqlite.dialect()).construct_expanded_state(
        {"account_id": 1, "ids": list(range(1, 51))}
    )
    async with db.read() as session:
        rows = await session.run_sync(
            lambda s: (
                s.connection()
                .exec_driver_sql("EXPLAIN QUERY PLAN " + expanded.statement, expanded.positional_parameters)
                .all()
            )
        )
    return " | ".join(str(row[-1]) for row in rows)


async def fresh(tmp_path: Path) -> Database:
    db = Database(sqlite_url(tmp_path / "plm.db"))
    await db.migrate()
    return db


async def test_loads_by_id_read_by_id_without_statistics(tmp_path: Path) -> None:
    db = await fresh(tmp_path)
    try:
        async with db.read() as session:
            assert (
                await session.execute(
                    sa.text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
                )
            ).scalar() == 0
        # What the planner does with the account's condition open to an index.
        assert "account" in await plan(db, NAIVE_USERS)
        assert "account" in await plan(db, NAIVE_AGENTS)
        # The loads: by id, whatever the statistics.
        assert await plan(db, loads._USERS_BY_ID) == "SEARCH user USING INTEGER PRIMARY KEY (rowid=?)"
        assert (await plan(db, loads._AGENTS_BY_USER)).startswith(
            "SEARCH agent USING INDEX ix_agent_user_id (user_id=?)"
        )
    finally:
        await db.dispose()


async def test_the_statistics_job_gives_sqlite_statistics(tmp_path: Path) -> None:
    db = await fresh(tmp_path)
    try:
        tenant = await make_tenant(db)
        async with db.write() as session:
            users = [
                {
                    "account_id": tenant.account_id,
                    "display_name": f"user {i}",
                    "status": "PENDING",
                    "first_seen_at": NOW,
                    "last_seen_at": NOW,
                    "pending_reason": "OVER_LIMIT",
                    "pending_since": NOW,
                }
                for i in range(300)
            ]
            await session.execute(sa.insert(USER), users)
            ids = (await session.execute(sa.select(USER.c.id))).scalars().all()
            await session.execute(
                sa.insert(AGENT),
                [
                    {
                        "account_id": tenant.account_id,
                        "user_id": uid,
                        "device_name": f"pc{uid}",
                        "domain": "corp",
                        "logon_name": f"u{uid}",
                        "key": f"pc{uid}\x1fcorp\x1fu{uid}",
                        "login_key": f"corp\x1fu{uid}",
                        "first_seen_at": NOW,
                        "last_seen_at": NOW,
                    }
                    for uid in ids
                ],
            )
        assert "account" in await plan(db, NAIVE_AGENTS)
        assert await statistics.refresh(db)
        async with db.read() as session:
            analyzed = set((await session.execute(sa.text("SELECT tbl FROM sqlite_stat1"))).scalars())
        assert {"user", "agent"} <= analyzed
    finally:
        await db.dispose()
    # A connection reads the statistics when it opens (the pools reopen theirs as often as
    # the job runs): with them, the planner finds the agents by their users even when asked
    # naively.
    reopened = Database(sqlite_url(tmp_path / "plm.db"))
    try:
        assert (await plan(reopened, NAIVE_AGENTS)).startswith("SEARCH agent USING INDEX ix_agent_user_id")
        for pool in (reopened.read_engine.pool, reopened.write_engine.pool):
            assert pool._recycle == statistics.INTERVAL_SECONDS == jobs.STATISTICS_INTERVAL_SECONDS
    finally:
        await reopened.dispose()


async def test_the_statistics_job_leaves_postgresql_to_autovacuum(db: Database) -> None:
    # On SQLite it runs (above); PostgreSQL keeps its own statistics.
    assert await statistics.refresh(db) is db.is_sqlite


async def segments(db: Database, table: str) -> int:
    """The b-trees of an FTS5 table's index (one row per b-tree and leaf in its ``_idx``)."""
    async with db.read() as session:
        found = await session.execute(sa.text(f"SELECT count(DISTINCT segid) FROM {table}_idx"))
        return int(found.scalar_one())


async def test_the_statistics_job_merges_the_search_index(tmp_path: Path) -> None:
    """Agents arriving one transaction at a time leave the trigram index in many b-trees, each
    read by every search; the job merges them into one, and every search answers the same."""
    db = await fresh(tmp_path)
    try:
        tenant = await make_tenant(db)
        for i in range(40):
            await arrive(db, tenant.account_id, f"PC-{i:03d}", f"user{i:03d}", name=f"Person {i:03d}")
        filters = [
            lists.AgentFilter(tenant.account_id, search=term) for term in ("user01", "pc-03", "son 02", "9")
        ]

        async def searches() -> list[list[int]]:
            async with db.read() as session:
                return [
                    [a.id for a in (await lists.agents_page(session, f, 100, None)).items] for f in filters
                ]

        before = await searches()
        assert await segments(db, "agent_search") > 4 and await segments(db, "user_search") > 4
        assert await statistics.refresh(db)
        assert await segments(db, "agent_search") == 1 == await segments(db, "user_search")
        assert await searches() == before and all(before)
        assert await statistics.refresh(db)  # nothing left to merge
        assert await segments(db, "agent_search") == 1
    finally:
        await db.dispose()
