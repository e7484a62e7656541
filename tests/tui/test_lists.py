"""The Users and Audit log tabs: lazy paging, search and the status filter, against a real server."""

from __future__ import annotations

from textual.widgets import Static

from tests.tui.conftest import LiveServer, wait_until
from tui_client.screens.audit import AuditView
from tui_client.screens.users import UsersView

SIZE = (120, 36)


def info(view: UsersView | AuditView) -> str:
    return str(view.query_one(".status-line", Static).render())


async def test_the_users_tab_pages_searches_and_filters(live: LiveServer) -> None:
    # 3 licenses: the first three are licensed, the other 117 wait.
    await live.seed([f"User {i:03}" for i in range(120)])
    app = live.app(page_size=50)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        users = app.query_one(UsersView)
        await wait_until(pilot, lambda: len(users.ids) >= 50, "the first page")
        await pilot.pause(0.2)
        assert len(users.ids) < 120, "everything was loaded up front"
        users.table.focus()
        await pilot.press("ctrl+end")
        await wait_until(pilot, lambda: len(users.ids) == 120, "every page, as the cursor moves on")
        assert info(users) == "Showing 120 of 120 users"

        await pilot.press("slash", *"user 01")
        await wait_until(pilot, lambda: users.ids and len(users.ids) == 10, "the search result")
        assert info(users) == "Showing 10 of 10 users · search “user 01”"
        await pilot.press("enter", "f")  # back to the table; the status filter: licensed
        await wait_until(pilot, lambda: users.total == 0 and users.status == "LICENSED", "licensed only")
        await pilot.press("f")
        await wait_until(pilot, lambda: users.total == 10 and users.status == "PENDING", "pending only")
        assert info(users) == "Showing 10 of 10 pending users · search “user 01”"


async def test_the_audit_tab_pages_newest_first(live: LiveServer) -> None:
    await live.seed([f"User {i:03}" for i in range(30)])
    pending = await live.gql("{ pendingUsers(first: 27) { edges { node { id } } } }")
    ids = [e["node"]["id"] for e in pending["pendingUsers"]["edges"]]
    await live.gql("mutation($ids: [ID!]!) { removeUsers(input: {userIds: $ids}) { errors { code } } }", ids=ids)
    app = live.app(page_size=10)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        audit = app.query_one(AuditView)
        await wait_until(pilot, lambda: len(audit.ids) >= 10, "the first page")
        total = audit.total
        assert total >= 27 and len(audit.ids) < total
        audit.table.focus()
        await pilot.press("ctrl+end")
        await wait_until(pilot, lambda: len(audit.ids) == total, "every page")
        assert info(audit) == f"Showing {total} of {total} entries, newest first"
