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

PostgreSQL's autovacuum keeps its own statistics: there this does nothing.
"""

from __future__ import annotations

import sqlalchemy as sa

from server.infra.db import SQLITE_RECONNECT_SECONDS, Database

# Rows sampled per index (SQLite suggests 100 to 1,000).
ANALYSIS_LIMIT = 1_000
INTERVAL_SECONDS = SQLITE_RECONNECT_SECONDS


async def refresh(db: Database) -> bool:
    """``ANALYZE`` on SQLite, sampled; whether it ran."""
    if not db.is_sqlite:
        return False
    async with db.write() as session:
        await session.execute(sa.text(f"PRAGMA analysis_limit = {ANALYSIS_LIMIT}"))
        await session.execute(sa.text("ANALYZE"))
    return True
