"""The Users and Audit log tabs: lazy paging, search and the status filter, against a real server."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot
from textual.widgets import Static

from tests.tui.conftest import LiveServer, wait_until
from tui_client.screens.audit import AuditView
from tui_client.screens.users import UsersView

SIZE = (120, 36)


def info(view: UsersView | AuditView) -> str:
    return str(view.query_one(".status-line", Static).render())


async def first_pages(pilot: Pilot[Any], view: UsersView | AuditView, rows: int) -> None:
    """The first page, and more until 25 rows wait below the view (``PagedTable.LOOKAHEAD``); then
    paging stops short of the end until the cursor moves on."""

    def loaded() -> bool:
        return len(view.model.rows) >= rows and not view.model.loading

    await wait_until(pilot, loaded, f"the first {rows} rows, and the lookahead to settle")
    assert len(view.model.rows) < view.model.total, f"everything was loaded up front: {len(view.model.rows)}"


async def page_to_the_end(pilot: Pilot[Any], view: UsersView | AuditView) -> None:
    """Jump to the last row until everything is in: each jump brings at least one more page."""
    view.table.focus()
    while len(view.model.rows) < view.model.total:
        before = len(view.model.rows)

        def grew(n: int = before) -> bool:
            return len(view.model.rows) > n

        await pilot.press("ctrl+end")
        await wait_until(pilot, grew, "the next page")


async def test_the_users_tab_pages_searches_and_filters(live: LiveServer) -> None:
    # 3 licenses: the first three are licensed, the other 117 wait.
    await live.seed([f"User {i:03}" for i in range(120)])
    app = live.app(page_size=50)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        users = app.query_one(UsersView)
        await first_pages(pilot, users, 100)
        await page_to_the_end(pilot, users)
        assert info(users) == "Showing 120 of 120 users"

        await pilot.press("slash", *"user 01")
        await wait_until(pilot, lambda: len(users.model.rows) == 10, "the search result")
        assert info(users) == "Showing 10 of 10 users · search “user 01”"
        await pilot.press("enter", "f")  # back to the table; the status filter: licensed
        await wait_until(
            pilot, lambda: users.model.total == 0 and users.status == "LICENSED", "licensed only"
        )
        await pilot.press("f")
        await wait_until(pilot, lambda: users.model.total == 10 and users.status == "PENDING", "pending only")
        assert info(users) == "Showing 10 of 10 pending users · search “user 01”"


async def test_the_audit_tab_pages_newest_first(live: LiveServer) -> None:
    await live.seed([f"User {i:03}" for i in range(120)])
    pending = await live.gql("{ pendingUsers(first: 500) { edges { node { id } } } }")
    ids = [e["node"]["id"] for e in pending["pendingUsers"]["edges"]]
    await live.gql(
        "mutation($ids: [ID!]!) { removeUsers(input: {userIds: $ids}) { errors { code } } }", ids=ids
    )
    app = live.app(page_size=20)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        audit = app.query_one(AuditView)
        await first_pages(pilot, audit, 60)
        total = audit.model.total
        assert total >= 117
        await page_to_the_end(pilot, audit)
        assert info(audit) == f"Showing {total} of {total} entries, newest first"
