"""The query planner's statistics on SQLite: a bounded ``ANALYZE``, on a schedule.

SQLite keeps no statistics until ``ANALYZE`` runs, and nothing runs it for us. Without them
its planner guesses that an equality on an index's first column selects about ten rows, so
for ``account_id = ? AND …`` it reads a whole account through an index that starts with
``account_id`` where a search index or an id would read a handful: a searched queue page
took 2 ms per statement instead of 0.1 at 10,000 users, and the page's agents 1.5 ms instead
of 0.05. Any statistics, even from a much smaller table, give the planner the proportions
it needs (one account holds many users; one user few agents), so they need no refreshing at
every change: the ``statistics`` job (:mod:`server.web.schedule`) runs this a minute after
start and every ten minutes. ``analysis_limit`` makes it read a sample of each index
(SQLite's recommended bound), so a run costs milliseconds whatever the database's size.
A connection reads the statistics when it opens, so the pools reopen their SQLite
connections as often (:data:`~server.infra.db.SQLITE_RECONNECT_SECONDS`).

The same job keeps the search index compact (:func:`compact_search`). SQLite's FTS5 index
is a set of b-trees: each transaction that adds agents or users adds one, and FTS5's
automatic merges only bound their number per level. A search reads every one of them: a
device or logon term common to most agents (``user0806`` matches ``use``, ``ser``...) took
0.44 ms at 10,000 agents added one by one, and 0.06 ms once the b-trees were merged into one
(4 ms of merging). So each run merges them, up to :data:`MERGE_PAGES` pages a table.

PostgreSQL's autovacuum keeps its own statistics, and its trigram indexes need no merging:
there this does nothing.
"""

from __future__ import annotations

import sqlalchemy as sa

from server.domain.reads.search import SEARCH_TABLES
from server.infra.db import SQLITE_RECONNECT_SECONDS, Database

# Rows sampled per index (SQLite suggests 100 to 1,000).
ANALYSIS_LIMIT = 1_000
INTERVAL_SECONDS = SQLITE_RECONNECT_SECONDS


# Pages (of ~1,000 bytes) of merged search index written per run and table: more than the
# whole index of 10,000 agents (~480 pages), a few milliseconds of the write lock.
MERGE_PAGES = 2_000


async def refresh(db: Database) -> bool:
    """``ANALYZE`` on SQLite, sampled, and :func:`compact_search`; whether it ran."""
    if not db.is_sqlite:
        return False
    async with db.write() as session:
        await session.execute(sa.text(f"PRAGMA analysis_limit = {ANALYSIS_LIMIT}"))
        await session.execute(sa.text("ANALYZE"))
    await compact_search(db)
    return True


async def compact_search(db: Database, pages: int = MERGE_PAGES) -> None:
    """Merge each FTS5 search table's b-trees, up to ``pages`` pages a table: FTS5's
    ``'merge'`` command with a negative count, which merges every b-tree (an incremental
    ``'optimize'``); nothing to do once they are one. SQLite only."""
    async with db.write() as session:
        for table in SEARCH_TABLES:
            await session.execute(
                sa.text(f"INSERT INTO {table}({table}, rank) VALUES ('merge', :pages)"), {"pages": -pages}
            )
