"""Plans before commitments, against a real server: the plan shown, applied exactly, and shown
again when the queue changed in between (``PLAN_CHANGED``: nothing applied).

Outcomes are checked through the API, not through the client's own state.
"""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot
from textual.widgets import Button, Input, Static

from tests.tui.conftest import LiveServer, wait_until
from tests.tui.test_pending import SIZE, arrive, header, ready, rows, status_of, told
from tui_client.app import AdminApp
from tui_client.screens.plan import CHANGED, PlanScreen


def plan_text(app: AdminApp) -> str:
    return str(app.screen.query_one("#plan-body", Static).render())


def notice(app: AdminApp) -> str:
    found = app.screen.query("#plan-notice")
    return str(found.first(Static).render()) if found else ""


async def plan_shown(pilot: Pilot[Any], app: AdminApp, what: str = "the plan") -> PlanScreen:
    await wait_until(pilot, lambda: isinstance(app.screen, PlanScreen), what)
    screen = app.screen
    assert isinstance(screen, PlanScreen)
    return screen


async def test_a_bulk_approval_shows_its_plan_then_applies_it(live_review: LiveServer) -> None:
    ids = await arrive(live_review, "Ada", "Alan", "Grace")
    app = live_review.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 3)
        await pilot.press("space", "down", "space", "a")  # Ada, then Grace
        await plan_shown(pilot, app)
        text = plan_text(app)
        assert "Licenses used: 0 → 2 of 3" in text
        assert "Approved, in this order (2):\n   1. Ada\n   2. Grace" in text
        assert await status_of(live_review, ids["Ada"]) == "PENDING"  # a plan changes nothing
        await pilot.press("y")
        await wait_until(pilot, lambda: rows(app) == ["Alan"], "the approved rows to leave")
        assert [await status_of(live_review, ids[n]) for n in ("Ada", "Alan", "Grace")] == [
            "LICENSED",
            "PENDING",
            "LICENSED",
        ]
        assert told(app, "Approved 2 users")


async def test_cancelling_a_plan_changes_nothing(live_review: LiveServer) -> None:
    ids = await arrive(live_review, "Ada", "Alan")
    app = live_review.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 2)
        await pilot.press("ctrl+a", "a")
        await plan_shown(pilot, app)
        await pilot.press("escape")
        await wait_until(pilot, lambda: len(app.screen_stack) == 1, "the plan to close")
        assert rows(app) == ["Ada", "Alan"] and app.pending.queue.selected == set(ids.values())
        assert [await status_of(live_review, uid) for uid in ids.values()] == ["PENDING", "PENDING"]


async def test_a_plan_the_server_would_refuse_says_why_and_cannot_be_applied(live: LiveServer) -> None:
    ids = await arrive(live, "Ada", "Alan", "Grace", "Linus", "Margaret")
    app = live.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 2)
        await pilot.press("ctrl+a", "a")
        await plan_shown(pilot, app)
        assert "Cannot apply: 2 license(s) requested but only 0 available" in plan_text(app)
        assert "Approve fewer users, raise the limit, or remove licensed users." in plan_text(app)
        assert app.screen.query_one("#apply", Button).disabled
        await pilot.press("y")  # refused by the dialog itself
        await wait_until(pilot, lambda: len(app.screen_stack) == 1, "the plan to close")
        assert app.pending.queue.selected == {ids["Linus"], ids["Margaret"]}  # kept, to retry
        assert await status_of(live, ids["Linus"]) == "PENDING"


async def test_a_queue_changed_since_the_plan_shows_the_fresh_plan_and_applies_nothing(
    live_review: LiveServer,
) -> None:
    """The plan is open; a newcomer arrives (through /ingest) before the admin confirms."""
    ids = await arrive(live_review, "Ada", "Alan")
    app = live_review.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 2)
        await pilot.press("ctrl+a", "a")
        first = await plan_shown(pilot, app)
        assert notice(app) == ""
        await arrive(live_review, "Grace")  # waits for review: the queue changed
        await wait_until(pilot, lambda: "Grace" in rows(app), "the arrival, live")
        await pilot.press("y")

        await wait_until(
            pilot, lambda: isinstance(app.screen, PlanScreen) and app.screen is not first, "the fresh plan"
        )
        assert notice(app) == CHANGED
        assert app.screen.plan.queue_version != first.plan.queue_version  # type: ignore[attr-defined]
        assert [await status_of(live_review, ids[n]) for n in ("Ada", "Alan")] == ["PENDING", "PENDING"]
        assert "Approved, in this order (2):\n   1. Ada\n   2. Alan" in plan_text(app)

        await pilot.press("y")  # the fresh plan applies
        await wait_until(pilot, lambda: rows(app) == ["Grace"], "the approved rows to leave")
        assert [await status_of(live_review, ids[n]) for n in ("Ada", "Alan")] == ["LICENSED", "LICENSED"]


async def test_lowering_the_limit_shows_who_moves_to_the_queue(live: LiveServer) -> None:
    await arrive(live, "Ada", "Alan", "Grace")  # the three licenses, in this order
    app = live.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 0)
        await wait_until(pilot, lambda: app.account is not None, "the account")
        await pilot.press("l")
        await wait_until(pilot, lambda: bool(app.screen.query("#limit-input")), "the limit prompt")
        box = app.screen.query_one("#limit-input", Input)
        assert box.value == "3"
        box.value = "1"
        await pilot.press("enter")
        await plan_shown(pilot, app)
        text = plan_text(app)
        assert "Licenses used: 3 → 1 of 1" in text
        assert "Moved to the queue, most recently licensed first (2):\n   1. Grace\n   2. Alan" in text
        await pilot.press("y")
        await wait_until(
            pilot, lambda: rows(app) == ["Alan", "Grace"] or rows(app) == ["Grace", "Alan"], "the queue"
        )
        account = await live.account()
        assert (account["licenseLimit"], account["licensesUsed"], account["pendingCount"]) == (1, 1, 2)
        await wait_until(pilot, lambda: "1/1" in header(app), "the header to follow")
        assert told(app, "The license limit is 1.")


async def test_a_limit_that_is_not_a_number_is_asked_again(live: LiveServer) -> None:
    app = live.app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.account is not None, "the account")
        await pilot.press("l")
        await wait_until(pilot, lambda: bool(app.screen.query("#limit-input")), "the limit prompt")
        app.screen.query_one("#limit-input", Input).value = "99999999"
        await pilot.press("enter")
        hint = app.screen.query_one("#limit-hint", Static)
        await wait_until(pilot, lambda: "whole number from 0 to 10,000,000" in str(hint.render()), "the hint")
        await pilot.press("escape")
        assert (await live.account())["licenseLimit"] == 3


async def test_manual_review_shows_its_plan_and_a_changed_queue_reopens_it(live: LiveServer) -> None:
    await arrive(live, "Ada")
    app = live.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 0)
        await wait_until(pilot, lambda: app.account is not None, "the account")
        await pilot.press("t")
        first = await plan_shown(pilot, app)
        assert "Nobody's license changes." in plan_text(app)
        await arrive(live, "Alan")  # takes a free license: what a plan depends on changed
        await pilot.press("y")
        await wait_until(
            pilot, lambda: isinstance(app.screen, PlanScreen) and app.screen is not first, "the fresh plan"
        )
        assert notice(app) == CHANGED
        assert not (await live.account())["manualReview"]
        await pilot.press("y")

        async def on() -> bool:
            return bool((await live.account())["manualReview"])

        await wait_until(pilot, lambda: "manual review on" in header(app), "the header to follow")
        assert await on()


async def test_a_viewer_may_not_change_settings(live: LiveServer) -> None:
    app = live.app(viewer=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.me is not None, "sign-in")
        await pilot.press("l", "t")
        await pilot.pause()
        assert len(app.screen_stack) == 1
