"""The Pending Licenses tab against a real server: the queue, every action, live updates.

Outcomes are checked through the API, not through the client's own state.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn
from textual.content import Content
from textual.pilot import Pilot
from textual.widgets import Static

from server.domain.activity import ingestion
from server.domain.activity.batch import Batch, Event
from server.domain.admission import AgentReport
from server.infra.db import Database
from server.infra.settings import Settings
from server.web.app import create_app
from tests.support import START, FakeClock, make_tenant
from tests.tui.conftest import SERVER_OF, LiveServer, RecordingApp, eventually, wait_until
from tui_client.app import AdminApp
from tui_client.widgets.usage_header import Usage

SIZE = (120, 36)


def rows(app: AdminApp) -> list[str]:
    view = app.pending
    return [view.queue.rows[str(key.value)].display_name for key in view.table.rows]


def header(app: AdminApp) -> str:
    return Content.from_markup(str(app.query_one(Usage).render())).plain


def told(app: RecordingApp, text: str) -> bool:
    return any(text in f"{title} {message}" for _, title, message in app.notices)


async def ready(pilot: Pilot[Any], app: AdminApp, count: int) -> None:
    """The client is live (and the server has registered its subscription) with ``count`` rows."""
    await wait_until(pilot, lambda: app.connection == "live", "the live connection")
    server = SERVER_OF.get(app)
    if server is not None:
        # The client is "live" once the socket is acknowledged; its subscribe message may
        # still be on the way. A change committed before the server registers it would be
        # missed: act only after.
        await wait_until(pilot, lambda: server.subscribers() >= 1, "the server to register the subscription")
    await wait_until(pilot, lambda: app.pending.queue.loaded and len(rows(app)) == count, f"{count} rows")


async def cursor_to(pilot: Pilot[Any], app: AdminApp, name: str) -> None:
    target = rows(app).index(name)
    while app.pending.table.cursor_row < target:
        await pilot.press("down")
    while app.pending.table.cursor_row > target:
        await pilot.press("up")


async def arrive(live: LiveServer, *names: str) -> dict[str, str]:
    """Each name reports from its own laptop; returns name -> user id."""
    ids = {}
    for name in names:
        answer = await live.ingest(f"LAPTOP-{name.upper()}", name.lower(), name)
        ids[name] = answer["userId"]
    return ids


async def status_of(live: LiveServer, user_id: str) -> str | None:
    user = await live.user(user_id)
    return None if user is None else str(user["status"])


async def test_the_queue_shows_with_license_usage(live: LiveServer) -> None:
    await arrive(live, "Ada", "Alan", "Grace", "Linus", "Margaret")
    app = live.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 2)
        assert rows(app) == ["Linus", "Margaret"]  # oldest first
        assert "3/3" in header(app) and "2 pending" in header(app)
        assert "manual review off" in header(app)


async def test_approve_licenses_the_row_under_the_cursor(live_review: LiveServer) -> None:
    ids = await arrive(live_review, "Ada", "Alan")
    app = live_review.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 2)
        await cursor_to(pilot, app, "Alan")
        await pilot.press("a")
        await wait_until(pilot, lambda: rows(app) == ["Ada"], "Alan's row to leave")
        assert await status_of(live_review, ids["Alan"]) == "LICENSED"
        assert await status_of(live_review, ids["Ada"]) == "PENDING"
        await wait_until(pilot, lambda: "1/3" in header(app), "the header to follow")


async def test_a_refused_approval_shows_its_error_and_changes_nothing(live: LiveServer) -> None:
    """The row under the cursor is approved at once (a selection shows its plan first:
    tests/tui/test_plans.py), so the server's refusal is what the admin is told."""
    ids = await arrive(live, "Ada", "Alan", "Grace", "Linus", "Margaret")
    app = live.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 2)
        await pilot.press("a")
        await wait_until(pilot, lambda: told(app, "Not enough licenses"), "the refusal")
        assert told(app, "Nothing was approved")
        assert rows(app) == ["Linus", "Margaret"]
        assert await status_of(live, ids["Linus"]) == "PENDING"
        assert await status_of(live, ids["Margaret"]) == "PENDING"


async def test_assign_moves_the_devices_to_the_picked_user(live: LiveServer) -> None:
    ids = await arrive(live, "Ada", "Alan", "Grace", "Linus")
    app = live.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await pilot.press("s")
        await wait_until(pilot, lambda: app.screen.query("#picker-search"), "the user picker")
        await pilot.press(*"grace")
        await wait_until(
            pilot,
            lambda: app.screen.query_one("#picker-options").option_count == 1,  # type: ignore[attr-defined]
            "the search to narrow to Grace",
        )
        await pilot.press("enter")
        await wait_until(pilot, lambda: rows(app) == [], "Linus's row to leave")
        assert await live.user(ids["Linus"]) is None
        grace = await live.user(ids["Grace"])
        assert grace is not None
        assert {a["logonName"] for a in grace["agents"]} == {"grace", "linus"}
        assert (await live.account())["licensesUsed"] == 3  # no license consumed


async def test_merge_folds_the_agent_into_the_picked_agent(live: LiveServer) -> None:
    ids = await arrive(live, "Ada", "Alan", "Grace", "Linus")
    app = live.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await pilot.press("m")
        await wait_until(pilot, lambda: app.screen.query("#picker-search"), "the agent picker")
        await pilot.press(*"laptop-alan")
        await wait_until(
            pilot,
            lambda: app.screen.query_one("#picker-options").option_count == 1,  # type: ignore[attr-defined]
            "the search to narrow to Alan's agent",
        )
        await pilot.press("down", "enter")  # from the list this time
        await wait_until(pilot, lambda: rows(app) == [], "Linus's row to leave")
        assert await live.user(ids["Linus"]) is None
        # Linus's key is now an alias of Alan's agent: his next report lands on Alan.
        again = await live.ingest("LAPTOP-LINUS", "linus", "Linus")
        assert again["userId"] == ids["Alan"]


async def test_remove_with_do_not_track_ignores_later_reports(live: LiveServer) -> None:
    ids = await arrive(live, "Ada", "Alan", "Grace", "Linus")
    app = live.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await pilot.press("x")
        await wait_until(pilot, lambda: app.screen.query("#dnt"), "the confirm dialog")
        await pilot.press("enter")  # do-not-track is checked by default
        await wait_until(pilot, lambda: rows(app) == [], "the row to leave")
        assert await live.user(ids["Linus"]) is None
        assert (await live.ingest("LAPTOP-LINUS", "linus", "Linus"))["status"] == "IGNORED"


async def test_remove_without_do_not_track_lets_the_user_come_back(live: LiveServer) -> None:
    ids = await arrive(live, "Ada", "Alan", "Grace", "Linus")
    app = live.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await pilot.press("x")
        await wait_until(pilot, lambda: app.screen.query("#dnt"), "the confirm dialog")
        await pilot.press("d", "enter")
        await wait_until(pilot, lambda: told(app, "Removed Linus"), "the removal")
        assert await live.user(ids["Linus"]) is None
        back = await live.ingest("LAPTOP-LINUS", "linus", "Linus")
        assert back["status"] == "PENDING" and back["userId"] != ids["Linus"]
        await wait_until(pilot, lambda: rows(app) == ["Linus"], "Linus to re-enter the queue live")


async def test_cancelling_a_removal_changes_nothing(live: LiveServer) -> None:
    ids = await arrive(live, "Ada", "Alan", "Grace", "Linus")
    app = live.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await pilot.press("x")
        await wait_until(pilot, lambda: app.screen.query("#dnt"), "the confirm dialog")
        await pilot.press("escape")
        await wait_until(pilot, lambda: not app.screen.query("#dnt"), "the dialog to close")
        assert await status_of(live, ids["Linus"]) == "PENDING"


async def test_toggle_manual_review_asks_then_changes_the_setting(live: LiveServer) -> None:
    app = live.app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.account is not None, "the account")
        await pilot.press("t")
        await wait_until(pilot, lambda: app.screen.query("#apply"), "the plan")
        await pilot.press("y")

        async def on() -> bool:
            return bool((await live.account())["manualReview"])

        await eventually(pilot, on, "manual review to be on")
        await wait_until(pilot, lambda: "manual review on" in header(app), "the header to follow")
        await pilot.press("t")  # asked again, declined
        await wait_until(pilot, lambda: app.screen.query("#apply"), "the plan")
        await pilot.press("n")
        await wait_until(pilot, lambda: len(app.screen_stack) == 1, "the plan to close")
        assert await on()


async def test_users_arrive_and_leave_live_without_a_key_press(live: LiveServer) -> None:
    await arrive(live, "Ada", "Alan", "Grace")
    app = live.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 0)
        ids = await arrive(live, "Linus", "Margaret")  # through /ingest, while the client watches
        await wait_until(pilot, lambda: rows(app) == ["Linus", "Margaret"], "the arrivals to appear")
        await wait_until(pilot, lambda: "2 pending" in header(app), "the header to follow")
        await live.gql(
            "mutation($ids: [ID!]!) { removeUsers(input: {userIds: $ids}) { errors { code } } }",
            ids=[ids["Linus"]],
        )
        await wait_until(pilot, lambda: rows(app) == ["Margaret"], "the removed row to leave")
        await wait_until(pilot, lambda: "1 pending" in header(app), "the header to follow")


async def test_the_header_follows_usage_that_no_queue_event_carries(live: LiveServer) -> None:
    """A newcomer taking a free license changes the usage but not the queue."""
    await arrive(live, "Ada")
    app = live.app(usage_refresh=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 0)
        await wait_until(pilot, lambda: "1/" in header(app), "the first usage")
        await arrive(live, "Alan")  # licensed at once: no queue event
        await wait_until(pilot, lambda: "2/" in header(app), "the header to count the new license")
        assert rows(app) == []


async def test_a_queued_row_shows_what_an_assign_into_it_brought(live_review: LiveServer) -> None:
    """Another admin assigns one queued user into another: the target's row follows, live."""
    ids = await arrive(live_review, "Ada", "Alan")
    app = live_review.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 2)
        ada = ids["Ada"]
        before = app.pending.queue.rows[ada].pending
        assert before is not None and before.retained_event_count == 2
        await live_review.gql(
            "mutation($p: ID!, $t: ID!) { assignPendingUser(input: {pendingUserId: $p, targetUserId: $t}) "
            "{ errors { code } } }",
            p=ids["Alan"],
            t=ada,
        )
        await wait_until(pilot, lambda: rows(app) == ["Ada"], "the assigned row to leave")

        def ada_gained() -> bool:
            info = app.pending.queue.rows[ada].pending
            return info is not None and info.retained_event_count == 4

        await wait_until(pilot, ada_gained, "Ada's row to count Alan's activity")
        cell = str(app.pending.table.get_cell(ada, "retained"))
        assert cell.endswith("4 ev"), cell
        assert str(app.pending.table.get_cell(ada, "logon")) == "ACME\\ada +1"


async def test_a_large_queue_pages_in_as_the_cursor_nears_the_end(live_review: LiveServer) -> None:
    names = [f"User {i:03}" for i in range(150)]
    await live_review.seed(names)
    app = live_review.app(page_size=50)
    async with app.run_test(size=SIZE) as pilot:
        # The first page and, as the viewport nears its end, one more: never everything up front.
        await wait_until(pilot, lambda: len(rows(app)) >= 100, "the first page and the lookahead")
        await wait_until(pilot, lambda: not app.pending.queue.loading, "the lookahead to settle")
        assert len(rows(app)) == 100
        await pilot.press("ctrl+end")
        await wait_until(pilot, lambda: len(rows(app)) == 150, "every page, as the cursor moves on")
        assert rows(app) == names
        assert "Showing 150 of 150" in str(app.pending.query_one("#pending-info", Static).render())


async def test_the_filter_narrows_the_queue_on_the_server(live_review: LiveServer) -> None:
    await arrive(live_review, "Ada", "Alan", "Grace")
    app = live_review.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 3)
        await pilot.press("slash", *"al", "enter")
        await wait_until(pilot, lambda: rows(app) == ["Alan"], "the filtered queue")
        await arrive(live_review, "Alfred", "Bob")  # live arrivals respect the filter
        await wait_until(pilot, lambda: rows(app) == ["Alan", "Alfred"], "only the matching arrival")
        await pilot.press("slash", "escape")
        await wait_until(pilot, lambda: len(rows(app)) == 5, "the whole queue again")


async def test_a_viewer_sees_the_queue_but_cannot_act(live_review: LiveServer) -> None:
    ids = await arrive(live_review, "Ada")
    app = live_review.app(viewer=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await wait_until(pilot, lambda: app.me is not None, "sign-in")
        await pilot.press("a", "x", "t")
        await pilot.pause()
        assert len(app.screen_stack) == 1  # no dialog opened
        assert await status_of(live_review, ids["Ada"]) == "PENDING"


async def test_a_bad_token_is_a_notification_not_a_traceback(live: LiveServer) -> None:
    app = RecordingApp(live.graphql_url, "not-a-token", retry=(0.1, 0.5))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: told(app, "refused the token"), "the sign-in error")
        assert app.is_running


async def test_a_lost_server_shows_retries_and_catches_up(
    db: Database, db_url: str, clock: FakeClock
) -> None:
    tenant = await make_tenant(db, licenses=0)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]

    async def start(listener: socket.socket) -> tuple[uvicorn.Server, asyncio.Task[None]]:
        app = create_app(Settings(database_url=db_url), db=db, clock=clock)
        config = uvicorn.Config(app, log_level="warning", ws="websockets-sansio", timeout_graceful_shutdown=1)
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[listener]))
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to await
            await asyncio.sleep(0.01)
        return server, task

    async def arrive_directly(name: str) -> None:
        # Straight into the database: the server is down, and the client must catch up by re-querying.
        async with db.write() as session:
            report = AgentReport(f"LAPTOP-{name.upper()}", "ACME", name.lower(), name)
            await ingestion.ingest(
                session,
                tenant.account_id,
                Batch(
                    f"b-{name}",
                    report,
                    [
                        Event(START, 60, "excel.exe", None, None, "productive"),
                    ],
                ),
                START,
            )

    server, task = await start(sock)
    app = AdminApp(f"http://127.0.0.1:{port}/graphql", tenant.admin_token, retry=(0.1, 0.3))
    async with app.run_test(size=SIZE) as pilot:
        await arrive_directly("Ada")
        await wait_until(pilot, lambda: rows(app) == ["Ada"] and app.connection == "live", "the live queue")
        server.should_exit = True
        await task
        sock.close()
        await wait_until(pilot, lambda: app.connection == "offline", "the indicator to show the loss")
        await arrive_directly("Alan")
        again = socket.socket()
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))
        server, task = await start(again)
        try:
            await wait_until(pilot, lambda: app.connection == "live", "the reconnection")
            await wait_until(pilot, lambda: rows(app) == ["Ada", "Alan"], "the view to catch up")
        finally:
            server.should_exit = True
            await task
            again.close()
