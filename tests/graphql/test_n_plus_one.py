"""A queue page costs a fixed number of SQL statements, whatever its size (DataLoaders)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event

from server.domain import actions, reclaim
from server.domain.changes import Actor
from server.graphql.types.users import UserConnection, UserType
from server.infra.db import Database
from tests.graphql.helpers import PENDING_PAGE, Gql
from tests.graphql.test_queries import report, two_device_queue
from tests.graphql.test_user_activity import report as report_events
from tests.server.domain import arrive
from tests.support import START, Tenant, make_tenant


@contextmanager
def counting(db: Database, *, writes: bool = False) -> Iterator[list[str]]:
    """The statements run meanwhile on the database's read engine (its write engine: ``writes``)."""
    statements: list[str] = []
    engine = db.write_engine.sync_engine if writes else db.read_engine

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)


async def test_statement_count_does_not_grow_with_the_page(gql: Gql, db: Database, tenant: Tenant) -> None:
    # Each pending user with a second device of the same domain login: a second agent.
    await two_device_queue(db, tenant, licensed=3, pending=55)

    await gql(tenant.admin_token, PENDING_PAGE, first=1)  # the queue's count, remembered from here
    counts = {}
    for first in (5, 50):
        with counting(db) as statements:
            page = (await gql(tenant.admin_token, PENDING_PAGE, first=first)).ok()["pendingUsers"]
        assert len(page["edges"]) == first
        assert all(len(e["node"]["agents"]) == 2 for e in page["edges"])
        counts[first] = len(statements)
    assert counts[50] == counts[5], counts
    # auth, page, the account's version (its pending count remembered at it), agents, agents'
    # users, retained activity (+ BEGIN/ROLLBACK noise, if any)
    assert counts[50] <= 8, counts


COUNTED = """
query Counted($first: Int!, $after: String, $search: String) {
  pendingUsers(first: $first, after: $after, search: $search) { totalCount pageInfo { endCursor } edges { node { id } } }
  users(first: $first, search: $search) { totalCount edges { node { id } } }
  agents(first: $first, search: $search) { totalCount edges { node { id } } }
}
"""


def _counts(statements: list[str]) -> int:
    """Statements that count rows (a list's ``count(*)``, the account's seat counts)."""
    return sum(s.lstrip().upper().startswith("SELECT") and "COUNT(" in s.upper() for s in statements)


async def test_a_page_that_is_the_whole_list_is_counted_without_a_statement(
    gql: Gql, db: Database, tenant: Tenant
) -> None:
    for i in range(3):
        await arrive(db, tenant.account_id, f"LIC{i}", f"lic{i}")
    for i in range(6):
        await arrive(db, tenant.account_id, f"PC{i}", f"p{i}", now=START + timedelta(seconds=i))

    async def read(**variables: Any) -> tuple[dict[str, Any], int]:
        with counting(db) as statements:
            data = (await gql(tenant.admin_token, COUNTED, **variables)).ok()
        return data, _counts(statements)

    # Whole lists (the first page, nothing after it): no count statement, the rows' number.
    for search in (None, "pc", "p1"):
        whole, counts = await read(first=50, search=search)
        assert counts == 0, search
        for field in ("pendingUsers", "users", "agents"):
            assert whole[field]["totalCount"] == len(whole[field]["edges"]), (search, field)
        # A shorter first page, and the last page after a cursor, count by query: the same totals.
        part, counts = await read(first=1, search=search)
        assert counts == sum(whole[f]["totalCount"] > 1 for f in ("pendingUsers", "users", "agents"))
        assert {f: part[f]["totalCount"] for f in whole} == {f: whole[f]["totalCount"] for f in whole}
        after = part["pendingUsers"]["pageInfo"]["endCursor"]
        if after is not None:
            last, counts = await read(first=50, after=after, search=search)
            # The pending list after a cursor: by query, but the whole queue's count is the
            # account's, remembered since the last read counted it; the others are whole lists.
            assert counts == (search is not None)
            assert last["pendingUsers"]["totalCount"] == whole["pendingUsers"]["totalCount"]


QUEUE_COUNT = "query { pendingUsers(first: 2) { totalCount } }"


async def test_the_queues_count_is_remembered_until_the_queue_changes(
    gql: Gql, db: Database, tenant: Tenant
) -> None:
    """The whole queue's totalCount is the account's pending users: counted once per queue
    version (plan_version, read in the page's own snapshot), whatever the reads between."""
    for i in range(3):
        await arrive(db, tenant.account_id, f"LIC{i}", f"lic{i}")
    pending = [
        (await arrive(db, tenant.account_id, f"PC{i}", f"p{i}", now=START + timedelta(seconds=i))).user_id
        for i in range(6)
    ]

    async def total() -> tuple[int, int]:
        with counting(db) as statements:
            data = (await gql(tenant.admin_token, QUEUE_COUNT)).ok()
        return data["pendingUsers"]["totalCount"], _counts(statements)

    assert await total() == (6, 1)
    assert await total() == (6, 0)
    await arrive(db, tenant.account_id, "PC9", "p9", now=START + timedelta(minutes=1))
    assert await total() == (7, 1)
    assert await total() == (7, 0)
    async with db.write() as session:
        await actions.remove(
            session, Actor.system(tenant.account_id), [u for u in pending[:2] if u], False, START
        )
    assert await total() == (5, 1)
    # Retained activity growing is no change of the queue's members: still remembered.
    await report(db, tenant, "PC3", "p3", (1, 60))
    assert await total() == (5, 0)


ACTIVITY_PAGE = """
query Page($first: Int!) {
  pendingUsers(first: $first) {
    edges { node {
      id lastActivityAt
      activity(days: 30) {
        days activeSeconds productiveSeconds unproductiveSeconds
        topApps { app activeSeconds }
        daily { date activeSeconds productiveSeconds unproductiveSeconds }
      }
      week: activity(days: 7) { activeSeconds }
      agents { id }
      pending { retainedActiveSeconds }
    } }
  }
}
"""


async def test_activity_and_last_activity_cost_a_fixed_number_of_statements(
    gql: Gql, db: Database, tenant: Tenant
) -> None:
    for i in range(3):
        await arrive(db, tenant.account_id, f"LIC{i}", f"lic{i}")
    for i in range(55):
        await report_events(
            db,
            tenant,
            f"p{i}",
            START,
            *[
                (START - timedelta(days=d, minutes=i), 60 + d, f"app{d % 7}.exe", "productive")
                for d in range(12)
            ],
            # Two events of one rollup row on either side of the week's start: the week's
            # window cuts that row, and reads its events from their chunk.
            (START - timedelta(days=7, minutes=-1), 30, "edge.exe", "neutral"),
            (START - timedelta(days=7, minutes=30), 30, "edge.exe", "neutral"),
        )

    counts = {}
    for first in (5, 50):
        with counting(db) as statements:
            page = (await gql(tenant.admin_token, ACTIVITY_PAGE, first=first)).ok()["pendingUsers"]
        assert len(page["edges"]) == first
        for edge in page["edges"]:
            node = edge["node"]
            assert len(node["activity"]["daily"]) == 30 and len(node["activity"]["topApps"]) == 5
            assert node["activity"]["activeSeconds"] == node["pending"]["retainedActiveSeconds"]
            assert node["week"]["activeSeconds"] < node["activity"]["activeSeconds"]
            assert node["lastActivityAt"] is not None
        counts[first] = len(statements)
    assert counts[50] == counts[5], counts
    # auth, page, agents, retained, last activity, and per distinct `days` (30, 7) a daily and
    # an apps-and-cut-rows statement, the cut rows' chunks (the week's) (+ BEGIN/ROLLBACK noise)
    assert counts[50] <= 11, counts


async def test_a_pages_activity_is_loaded_with_the_page_not_row_by_row(
    gql: Gql, db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rows' ``activity`` (for each ``days`` asked: the default, a literal, a variable)
    and ``lastActivityAt`` are loaded with the page (user_connection), and their resolvers
    answer from that without an await: no load row by row, no task per row."""
    for i in range(3):  # the licenses
        await arrive(db, tenant.account_id, f"LIC{i}", f"lic{i}")
    for i in range(4):
        await report_events(
            db,
            tenant,
            f"p{i}",
            START,
            (START - timedelta(days=i, hours=1), 60 * (i + 1), "a.exe", "productive"),
        )
    row_by_row: list[str] = []

    def refuse(name: str) -> Any:
        async def load(*_: Any) -> Any:
            row_by_row.append(name)
            raise AssertionError(f"{name} loaded row by row")

        return load

    page = """query($d: Int!) { pendingUsers(first: 10) { edges { node { id lastActivityAt
      activity { activeSeconds days } fortnight: activity(days: 14) { activeSeconds days }
      week: activity(days: $d) { activeSeconds daily { date } } } } } }"""
    monkeypatch.setattr(UserType, "_load_activity", refuse("activity"))
    monkeypatch.setattr(UserType, "_load_last_activity", refuse("lastActivityAt"))
    nodes = [e["node"] for e in (await gql(tenant.admin_token, page, d=2)).ok()["pendingUsers"]["edges"]]
    assert row_by_row == [] and len(nodes) == 4
    by_seconds = sorted(nodes, key=lambda n: n["activity"]["activeSeconds"])
    assert [n["activity"]["activeSeconds"] for n in by_seconds] == [60, 120, 180, 240]
    for node in nodes:
        assert node["activity"]["days"] == 30 and node["fortnight"]["days"] == 14
        assert node["fortnight"]["activeSeconds"] == node["activity"]["activeSeconds"]
        assert len(node["week"]["daily"]) == 2 and node["lastActivityAt"] is not None
    # The two most recent users' events fall within the two days.
    assert sorted(n["week"]["activeSeconds"] for n in nodes) == [0, 0, 60, 120]

    # A `days` the field refuses is still refused, row by row, by its resolver.
    refused = await gql(
        tenant.admin_token, "{ pendingUsers(first: 10) { edges { node { activity(days: 0) { days } } } } }"
    )
    assert refused.errors and all("days must be from 1 to 90" in e["message"] for e in refused.errors)
    assert row_by_row == []


async def test_retained_activity_of_released_users_costs_a_fixed_number_of_statements(
    gql: Gql, db: Database
) -> None:
    # Released users keep what they recorded while licensed; a row of the day of their
    # release holds events from both sides of it, so their retained figures read its chunk.
    t = await make_tenant(db, licenses=60)
    ids = [
        await report_events(
            db,
            t,
            f"r{i}",
            START,
            (START - timedelta(minutes=10 + i), 60, "excel.exe", "productive"),
            (START + timedelta(minutes=10), 45, "excel.exe", "productive"),
        )
        for i in range(55)
    ]
    async with db.write() as session:
        await reclaim.release(session, Actor.system(t.account_id), ids, START)

    await gql(t.admin_token, PENDING_PAGE, first=1)  # the queue's count, remembered from here
    counts = {}
    for first in (5, 50):
        with counting(db) as statements:
            page = (await gql(t.admin_token, PENDING_PAGE, first=first)).ok()["pendingUsers"]
        assert len(page["edges"]) == first
        assert all(e["node"]["pending"]["retainedEventCount"] == 1 for e in page["edges"]), page
        assert all(e["node"]["pending"]["retainedActiveSeconds"] == 45 for e in page["edges"]), page
        counts[first] = len(statements)
    assert counts[50] == counts[5], counts
    # auth, page, the account's version, agents, agents' users, retained, its cut rows, their
    # chunks (+ BEGIN)
    assert counts[50] <= 10, counts


LICENSED_PAGE = """
query Page($first: Int!) {
  users(first: $first, status: LICENSED) {
    edges { node {
      id lastActivityAt
      suggestions(first: 1) {
        kind score reasons
        user { id displayName status }
        agent { id deviceName user { id displayName } }
      }
      activity(days: 30) { activeSeconds daily { date activeSeconds } topApps { app } }
    } }
  }
}
"""


async def test_licensed_users_likely_matches_cost_a_fixed_number_of_statements(
    gql: Gql, db: Database
) -> None:
    t = await make_tenant(db, licenses=200)
    # Each person licensed twice: a re-imaged laptop (a local account) that took a second seat.
    for i in range(30):
        last = f"Lee{chr(97 + i % 26)}{chr(97 + i // 26)}"
        for device in (f"LAPTOP-{i}", f"DESKTOP-{i}X"):
            await arrive(db, t.account_id, device, f"a{last}".lower(), domain=device, name=f"Ann {last}")

    counts = {}
    for first in (5, 50):
        with counting(db) as statements:
            edges = (await gql(t.admin_token, LICENSED_PAGE, first=first)).ok()["users"]["edges"]
        assert len(edges) == first
        assert all(e["node"]["suggestions"][0]["user"]["status"] == "LICENSED" for e in edges)
        counts[first] = len(statements)
    assert counts[50] == counts[5], counts
    # auth, page, suggestions (3), last activity, activity (2) (+ BEGIN/ROLLBACK noise)
    assert counts[50] <= 9, counts


async def test_a_page_loads_its_keys_as_load_many_does() -> None:
    """user_connection's load_many_now: one call of the batch function, the loader primed as
    load_many leaves it; load_many itself when a key is already cached or queued."""
    from strawberry.dataloader import DataLoader
    from strawberry.exceptions import WrongNumberOfResultsReturned

    from server.graphql.context import load_many_now

    calls: list[list[int]] = []

    async def double(keys: list[int]) -> list[int]:
        calls.append(list(keys))
        return [k * 2 for k in keys]

    fresh, reference = DataLoader(load_fn=double), DataLoader(load_fn=double)
    assert await load_many_now(fresh, [1, 2, 3]) == await reference.load_many([1, 2, 3]) == [2, 4, 6]
    assert calls == [[1, 2, 3], [1, 2, 3]]
    assert await fresh.load(2) == 4 and len(calls) == 2  # primed: no call
    # A key already cached: load_many, which asks only for the others.
    assert await load_many_now(fresh, [3, 4]) == [6, 8]
    assert calls[-1] == [4]
    queued = fresh.load(5)  # queued, not yet dispatched
    assert await load_many_now(fresh, [5, 6]) == [10, 12] and await queued == 10
    assert calls[-1] == [5, 6]

    async def failing(keys: list[int]) -> list[Any]:
        return [ValueError(f"no {k}") if k == 2 else k for k in keys]

    async def short(keys: list[int]) -> list[int]:
        return keys[:-1]

    for load_fn, error in ((failing, ValueError), (short, WrongNumberOfResultsReturned)):
        with pytest.raises(error):
            await load_many_now(DataLoader(load_fn=load_fn), [1, 2, 3])
        with pytest.raises(error):
            await DataLoader(load_fn=load_fn).load_many([1, 2, 3])


async def test_a_page_loads_what_its_own_document_asks(gql: Gql, db: Database, tenant: Tenant) -> None:
    """What a document asks of a page's rows is read once per document (asked_of): each
    document, the first time and again, loads its own fields and no other's."""
    for i in range(3):
        await arrive(db, tenant.account_id, f"LIC{i}", f"lic{i}")
    for i in range(3):
        await arrive(db, tenant.account_id, f"PC{i}", f"p{i}", now=START + timedelta(seconds=i))
    bare = "query($first: Int!) { pendingUsers(first: $first) { edges { node { id } } } }"
    agents = "query($first: Int!) { pendingUsers(first: $first) { edges { node { id agents { id } } } } }"
    for _ in range(2):
        for document, loads_agents in ((PENDING_PAGE, True), (bare, False), (agents, True)):
            with counting(db) as statements:
                (await gql(tenant.admin_token, document, first=5)).ok()
            assert any("FROM agent" in s for s in statements) is loads_agents, document
            assert any("activity_rollup" in s for s in statements) is (document is PENDING_PAGE), document


async def test_a_pages_total_is_counted_with_the_page_only_when_asked(
    gql: Gql, db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page short of its whole list counts the list in its resolver when the document asks
    ``totalCount`` (aliased, in a fragment alike), so the field needs no resolver of its own;
    a document that does not ask it counts nothing."""

    async def no_resolver(*_: Any) -> int:
        raise AssertionError("totalCount went through its resolver")

    monkeypatch.setattr(UserConnection, "_count", no_resolver)
    for i in range(3):
        await arrive(db, tenant.account_id, f"LIC{i}", f"lic{i}")
    for i in range(3):
        await arrive(db, tenant.account_id, f"PC{i}", f"p{i}", now=START + timedelta(seconds=i))
    documents = {
        "{ users(first: 1) { totalCount edges { node { id } } } }": 1,
        "{ users(first: 1) { ...T } } fragment T on UserConnection { n: totalCount }": 1,
        '{ users(first: 1, search: "p") { totalCount } }': 1,
        "{ users(first: 1) { edges { node { id } } } }": 0,
    }
    for document, counts in documents.items():
        with counting(db) as statements:
            data = (await gql(tenant.admin_token, document)).ok()
        assert sum("count(*)" in s for s in statements) == counts, document
        if counts:
            total = data["users"].get("totalCount", data["users"].get("n"))
            assert total == (3 if "search" in document else 6), document
    pending = "{ pendingUsers(first: 1) { totalCount } inactiveUsers(first: 1) { totalCount } }"
    assert (await gql(tenant.admin_token, pending)).ok()["pendingUsers"]["totalCount"] == 3
