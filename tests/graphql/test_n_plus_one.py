"""A queue page costs a fixed number of SQL statements, whatever its size (DataLoaders)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import event

from server.infra.db import Database
from tests.graphql.helpers import PENDING_PAGE, Gql
from tests.graphql.test_queries import report
from tests.server.domain import arrive
from tests.support import START, Tenant


@contextmanager
def counting(db: Database) -> Iterator[list[str]]:
    statements: list[str] = []

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", on_execute)
    try:
        yield statements
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", on_execute)


async def test_statement_count_does_not_grow_with_the_page(gql: Gql, db: Database, tenant: Tenant) -> None:
    for i in range(3):
        await arrive(db, tenant.account_id, f"LIC{i}", f"lic{i}")
    for i in range(55):
        await arrive(db, tenant.account_id, f"PC{i}", f"p{i}", now=START + timedelta(seconds=i))
        # A second device of the same domain login: a second agent of the same user.
        await arrive(db, tenant.account_id, f"PC{i}-B", f"p{i}", now=START + timedelta(seconds=i))
    await report(db, tenant, "PC0", "p0", (1, 60))

    counts = {}
    for first in (5, 50):
        with counting(db) as statements:
            page = (await gql(tenant.admin_token, PENDING_PAGE, first=first)).ok()["pendingUsers"]
        assert len(page["edges"]) == first
        assert all(len(e["node"]["agents"]) == 2 for e in page["edges"])
        counts[first] = len(statements)
    assert counts[50] == counts[5], counts
    # auth, page, count, agents, agents' users, retained activity (+ BEGIN/ROLLBACK noise, if any)
    assert counts[50] <= 8, counts
