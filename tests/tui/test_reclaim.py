"""The Reclaim tab against a real server: idle licensed users, release, swap, refusals.

Ada, Alan and Grace take the account's three licenses; Ada and Grace report activity on
the first day and Alan never does. Twenty days later Linus and Margaret arrive over the
limit, active that day, so Alan (never active), then Ada and Grace (idle since the first
day) are idle.
Outcomes are checked through the API, not through the client's own state.
"""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot
from textual.widgets import OptionList, Static

from tests.tui.conftest import LiveServer, RecordingApp, eventually, wait_until
from tests.tui.test_hostile_text import (
    DEVICE,
    DOMAIN,
    LOGON,
    NAME,
    NAME_SHOWN,
    admit,
    assert_harmless,
    shown,
    toasts,
    value,
)
from tests.tui.test_pending import SIZE, arrive, ready, rows, status_of, told
from tui_client.app import AdminApp
from tui_client.screens.confirm import ConfirmScreen
from tui_client.screens.pickers import PendingPicker
from tui_client.screens.reclaim import ReclaimView


async def idle_and_waiting(live: LiveServer) -> dict[str, str]:
    """Ada, Alan (never active) and Grace licensed and idle; Linus and Margaret waiting."""
    ids = await arrive(live, "Ada")
    ids["Alan"] = (await live.ingest("LAPTOP-ALAN", "alan", "Alan", events=0))["userId"]
    ids |= await arrive(live, "Grace")
    now = live.clock.advance(days=20)
    for name in ("Linus", "Margaret"):
        ids[name] = (await live.ingest(f"LAPTOP-{name.upper()}", name.lower(), name, start=now))["userId"]
    return ids


def reclaim(app: AdminApp) -> ReclaimView:
    return app.query_one(ReclaimView)


def idle_rows(app: AdminApp) -> list[str]:
    view = reclaim(app)
    return [view.idle.rows[str(key.value)].display_name for key in view.table.rows]


def cell(app: AdminApp, name: str, column: str) -> str:
    view = reclaim(app)
    uid = next(uid for uid, user in view.idle.rows.items() if user.display_name == name)
    return str(getattr(view.table.get_cell(uid, column), "plain", ""))


def question_text(app: AdminApp) -> str:
    return str(app.screen.query_one(".body", Static).render())


async def on_reclaim(pilot: Pilot[Any], app: AdminApp, count: int) -> None:
    await pilot.press("6")
    await wait_until(
        pilot, lambda: reclaim(app).idle.loaded and len(idle_rows(app)) == count, f"{count} idle"
    )
    reclaim(app).table.focus()


async def reason_of(live: LiveServer, user_id: str) -> str | None:
    data = await live.gql("query($id: ID!) { user(id: $id) { pending { reason } } }", id=user_id)
    pending = data["user"]["pending"]
    return None if pending is None else str(pending["reason"])


async def question(pilot: Pilot[Any], app: AdminApp) -> None:
    await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")


async def test_idle_licensed_users_are_listed_longest_idle_first(live: LiveServer) -> None:
    await idle_and_waiting(live)
    app = live.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 2)
        await on_reclaim(pilot, app, 3)
        assert idle_rows(app) == ["Alan", "Ada", "Grace"]  # never active first, then the oldest
        assert cell(app, "Alan", "idle") == "never"
        assert cell(app, "Ada", "idle") == "2026-11-26 09:01"  # when its last event ended
        status = str(app.query_one("#reclaim-info", Static).render())
        assert "Showing 3 of 3 licensed users idle for 14+ days" in status

        await pilot.press("d")  # 30 days: only Alan, who never was active, is idle that long
        await wait_until(pilot, lambda: idle_rows(app) == ["Alan"], "the 30-day list")
        assert "idle for 30+ days" in str(app.query_one("#reclaim-info", Static).render())


async def test_the_idle_list_pages_in_like_every_list(live: LiveServer) -> None:
    for i in range(3):
        await live.ingest(f"PC-{i}", f"user{i}", f"User {i}", events=0)
    app = live.app(page_size=2)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 0)
        await on_reclaim(pilot, app, 3)  # two, then the rest as the cursor is near the end
        assert reclaim(app).idle.total == 3


async def test_release_asks_with_the_usage_after_then_moves_the_users_to_the_queue(live: LiveServer) -> None:
    ids = await idle_and_waiting(live)
    app = live.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 2)
        await on_reclaim(pilot, app, 3)
        await pilot.press("space", "space", "r")  # Alan and Ada
        await question(pilot, app)
        assert str(app.screen.query_one(".title", Static).render()) == "Release the licenses of 2 users?"
        text = question_text(app)
        assert "Licenses used: 3 → 1 of 3" in text
        assert "Released to the queue (2):\n   1. Alan\n   2. Ada" in text
        assert await status_of(live, ids["Alan"]) == "LICENSED"  # asking changes nothing
        live.clock.advance(hours=1)
        await pilot.press("y")

        await wait_until(pilot, lambda: idle_rows(app) == ["Grace"], "the released to leave the list")
        assert [await reason_of(live, ids[n]) for n in ("Alan", "Ada", "Grace")] == [
            "RELEASED",
            "RELEASED",
            None,
        ]
        await wait_until(pilot, lambda: told(app, "Released 2 users."), "the notice")
        assert told(app, "Licenses: 1/3 used, 2 available.")
        await pilot.press("1")
        await wait_until(
            pilot,
            lambda: rows(app) == ["Linus", "Margaret", "Ada", "Alan"],
            "the queue, live (the two released at once: by id)",
        )


async def test_cancelling_a_release_changes_nothing(live: LiveServer) -> None:
    ids = await idle_and_waiting(live)
    app = live.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 2)
        await on_reclaim(pilot, app, 3)
        await pilot.press("r")
        await question(pilot, app)
        await pilot.press("escape")
        await wait_until(pilot, lambda: len(app.screen_stack) == 1, "the question to close")
        assert await status_of(live, ids["Alan"]) == "LICENSED"


async def pick(pilot: Pilot[Any], app: AdminApp, name: str) -> None:
    """In the pending picker: narrow to ``name`` and pick it."""
    await wait_until(pilot, lambda: isinstance(app.screen, PendingPicker), "the picker")
    options = app.screen.query_one("#picker-options", OptionList)
    await wait_until(pilot, lambda: options.option_count > 0, "the queue in the picker")
    await pilot.press(*name.lower())
    await wait_until(
        pilot,
        lambda: options.option_count == 1 and name in str(options.get_option_at_index(0).prompt),
        f"{name} alone",
    )
    await pilot.press("enter")


async def test_swap_picks_a_pending_user_shows_the_plan_then_swaps(live: LiveServer) -> None:
    ids = await idle_and_waiting(live)
    app = live.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 2)
        await on_reclaim(pilot, app, 3)
        await pilot.press("s")  # Alan, under the cursor
        await pick(pilot, app, "Margaret")
        await question(pilot, app)
        text = question_text(app)
        assert "Licenses used: 3 → 3 of 3 (unchanged)" in text
        assert "To the queue (released): Alan\n  last active never" in text
        assert "Gets the license: Margaret\n  over limit, waiting since 2026-12-16 09:00" in text
        live.clock.advance(hours=1)
        await pilot.press("y")

        await wait_until(pilot, lambda: told(app, "Margaret has Alan's license"), "the notice")
        assert await status_of(live, ids["Margaret"]) == "LICENSED"
        assert await reason_of(live, ids["Alan"]) == "RELEASED"
        assert (await live.account())["licensesUsed"] == 3
        await wait_until(pilot, lambda: idle_rows(app) == ["Ada", "Grace"], "Alan to leave the list")
        await pilot.press("1")
        await wait_until(pilot, lambda: rows(app) == ["Linus", "Alan"], "the queue, live")


async def refused_swap(live: LiveServer, meanwhile: str) -> tuple[RecordingApp, dict[str, str]]:
    """A swap of Alan for Margaret, confirmed after ``meanwhile`` happened elsewhere."""
    ids = await idle_and_waiting(live)
    app = live.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 2)
        await on_reclaim(pilot, app, 3)
        await pilot.press("s")
        await pick(pilot, app, "Margaret")
        await question(pilot, app)
        if meanwhile == "Alan released":
            await live.gql(
                "mutation($id: ID!) { releaseLicenses(input: {userIds: [$id]}) { errors { code } } }",
                id=ids["Alan"],
            )
        else:  # Margaret approved into a license added for her
            await live.gql("mutation { updateAccountSettings(input: {licenseLimit: 4}) { errors { code } } }")
            await live.gql(
                "mutation($id: ID!) { approvePendingUsers(input: {userIds: [$id]}) { errors { code } } }",
                id=ids["Margaret"],
            )
        await pilot.press("y")
        await wait_until(pilot, lambda: told(app, "Swap refused: nothing changed"), "the refusal")

        async def reread() -> bool:
            return "Alan" not in idle_rows(app) if meanwhile == "Alan released" else True

        await eventually(pilot, reread, "the list read again")
    return app, ids


async def test_a_swap_of_a_user_released_meanwhile_is_refused_and_changes_nothing(live: LiveServer) -> None:
    app, ids = await refused_swap(live, "Alan released")
    assert told(app, "not licensed, nothing to release: Alan")
    assert await status_of(live, ids["Margaret"]) == "PENDING"
    assert (await live.account())["licensesUsed"] == 2


async def test_a_swap_for_a_user_approved_meanwhile_is_refused_and_changes_nothing(live: LiveServer) -> None:
    app, ids = await refused_swap(live, "Margaret approved")
    assert told(app, "not pending: Margaret")
    assert await status_of(live, ids["Alan"]) == "LICENSED"
    assert (await live.account())["licensesUsed"] == 4


async def test_a_viewer_sees_idle_users_but_cannot_release_or_swap(live: LiveServer) -> None:
    ids = await idle_and_waiting(live)
    app = live.app(viewer=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 2)
        await wait_until(pilot, lambda: app.me is not None, "sign-in")
        await on_reclaim(pilot, app, 3)
        await pilot.press("r", "s")
        await pilot.pause()
        assert len(app.screen_stack) == 1  # no question, no picker
        assert await status_of(live, ids["Alan"]) == "LICENSED"


async def test_hostile_names_show_literally_when_reclaiming_and_when_overdue(live: LiveServer) -> None:
    """Eve (named in markup and escapes) and Ada hold the two licenses, never active; a second
    Eve waits past the queue target. Every step of a swap, and her overdue row, show the names
    as typed."""
    await live.gql(
        "mutation { updateAccountSettings(input: {licenseLimit: 2, queueTargetHours: 1}) { errors { code } } }"
    )
    ids = {
        "eve": await admit(live, DEVICE, DOMAIN, LOGON, NAME),
        "ada": await admit(live, "PC-A", "ACME", "ada", "Ada"),
    }
    live.clock.advance(days=20)
    ids["eve2"] = await admit(live, "PC-E", "ACME", "eve", NAME)
    live.clock.advance(hours=2)
    app = live.app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ready(pilot, app, 1)
        assert value(app.pending, ids["eve2"], "name") == NAME_SHOWN
        assert "red" in str(getattr(app.pending.table.get_cell(ids["eve2"], "name"), "style", ""))  # overdue
        assert_harmless(app)

        await on_reclaim(pilot, app, 2)
        assert value(reclaim(app), ids["eve"], "name") == NAME_SHOWN
        assert_harmless(app)
        await pilot.press("s")  # Eve, the first of the two never active
        await wait_until(pilot, lambda: isinstance(app.screen, PendingPicker), "the picker")
        options = app.screen.query_one("#picker-options", OptionList)
        await wait_until(pilot, lambda: options.option_count == 1, "the queue in the picker")
        assert str(options.get_option_at_index(0).prompt).startswith(NAME_SHOWN)
        assert_harmless(app)
        await pilot.press("enter")
        await question(pilot, app)
        assert shown(app.screen.query_one(".title")) == f"Give {NAME_SHOWN}'s license to {NAME_SHOWN}?"
        assert f"To the queue (released): {NAME_SHOWN}\n" in question_text(app)
        assert_harmless(app)
        await pilot.press("y")
        done = f"Done\n{NAME_SHOWN} has {NAME_SHOWN}'s license; {NAME_SHOWN} waits in the queue. The Audit"
        await wait_until(pilot, lambda: any(t.startswith(done) for t in toasts(app)), "the notification")
        assert await status_of(live, ids["eve2"]) == "LICENSED"
        assert_harmless(app)


async def test_with_the_rule_on_a_release_says_who_fills_the_seat_and_the_usage_follows(
    live: LiveServer,
) -> None:
    ids = await idle_and_waiting(live)
    await live.gql(
        "mutation { updateAccountSettings(input: {autoApprove: OLDEST_FIRST}) { errors { code } } }"
    )
    app = live.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 2)
        await on_reclaim(pilot, app, 3)
        await pilot.press("r")  # Alan
        await question(pilot, app)
        assert "The auto-approval rule is on: it gives the freed licenses to the oldest" in question_text(app)
        live.clock.advance(hours=1)
        await pilot.press("y")
        await wait_until(pilot, lambda: told(app, "Released Alan."), "the notice")
        assert told(app, "Licenses: 3/3 used, 0 available.")  # Linus took the seat
        assert await status_of(live, ids["Linus"]) == "LICENSED"
        assert await reason_of(live, ids["Alan"]) == "RELEASED"
        await pilot.press("1")
        await wait_until(pilot, lambda: rows(app) == ["Margaret", "Alan"], "the queue, live")


async def test_u_undoes_a_release_right_after_it(live: LiveServer) -> None:
    ids = await idle_and_waiting(live)
    app = live.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 2)
        await on_reclaim(pilot, app, 3)
        await pilot.press("r")  # Alan
        await question(pilot, app)
        await pilot.press("y")
        await wait_until(pilot, lambda: told(app, "Press u to undo"), "the release's notification")
        assert await reason_of(live, ids["Alan"]) == "RELEASED"
        await pilot.press("u")
        await wait_until(pilot, lambda: told(app, "Undid: the release of Alan"), "the undo")
        assert await status_of(live, ids["Alan"]) == "LICENSED"
        await wait_until(pilot, lambda: idle_rows(app) == ["Alan", "Ada", "Grace"], "Alan idle again")
