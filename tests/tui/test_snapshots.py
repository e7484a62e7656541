"""Snapshots of the main screens (pytest-textual-snapshot), on fixed data and a fixed clock.

Update after an intended change with ``pytest tests/tui --snapshot-update`` and review the
SVGs in ``tests/tui/__snapshots__``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input, OptionList, Static

from tests.tui.conftest import ThreadedServer, wait_until
from tui_client.app import AdminApp
from tui_client.screens.audit import AuditView
from tui_client.screens.metrics import MetricsView
from tui_client.screens.plan import PlanScreen
from tui_client.screens.reclaim import ReclaimView
from tui_client.screens.settings_form import SettingsView
from tui_client.screens.users import UsersView

SIZE = (120, 36)
Compare = Callable[..., bool]


async def _live(pilot: Pilot[Any]) -> AdminApp:
    app = pilot.app
    assert isinstance(app, AdminApp)
    await wait_until(pilot, lambda: app.connection == "live" and app.pending.queue.loaded, "the live queue")
    await wait_until(pilot, lambda: app.me is not None and app.account is not None, "sign-in")
    return app


def test_pending_licenses(snap_compare: Compare, seeded: ThreadedServer) -> None:
    """The opening screen: usage header, the live queue, the keys."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await _live(pilot)

    assert snap_compare(seeded.app(), terminal_size=SIZE, run_before=run_before)


def test_selection_and_remove_dialog(snap_compare: Compare, seeded: ThreadedServer) -> None:
    """Two rows selected, then the remove dialog with do-not-track checked."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app = await _live(pilot)
        await pilot.press("space", "space", "x")
        await wait_until(pilot, lambda: bool(app.screen.query("#dnt")), "the dialog")

    assert snap_compare(seeded.app(), terminal_size=SIZE, run_before=run_before)


def test_assign_picker(snap_compare: Compare, seeded: ThreadedServer) -> None:
    """The searchable user picker, narrowed by typing, then ↓ to the list.

    The list has the focus when the picture is taken: a focused search box shows a blinking
    cursor, and whether a blink lands between the last key and the picture is a race.
    """

    async def run_before(pilot: Pilot[Any]) -> None:
        app = await _live(pilot)
        await pilot.press("s")
        await wait_until(pilot, lambda: bool(app.screen.query("#picker-options")), "the picker")
        options = app.screen.query_one("#picker-options", OptionList)
        search = app.screen.query_one("#picker-search", Input)
        await wait_until(pilot, lambda: options.option_count > 0, "the unfiltered list")
        unfiltered = options.option_count
        await pilot.press(*"ma")
        await wait_until(pilot, lambda: search.value == "ma", "the typed search")

        def narrowed() -> bool:  # to "ma", not to the "m" typed before it (names and logons show)
            shown = [str(options.get_option_at_index(i).prompt).lower() for i in range(options.option_count)]
            return 0 < len(shown) < unfiltered and all("ma" in label for label in shown)

        await wait_until(pilot, narrowed, "the list narrowed to 'ma'")
        await pilot.press("down")
        await wait_until(pilot, lambda: options.has_focus and options.highlighted == 0, "the list focused")

    assert snap_compare(seeded.app(), terminal_size=SIZE, run_before=run_before)


def test_users_tab(snap_compare: Compare, seeded: ThreadedServer) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = await _live(pilot)
        await pilot.press("2")
        await wait_until(pilot, lambda: len(app.query_one(UsersView).model.rows) == 14, "the users")

    assert snap_compare(seeded.app(), terminal_size=SIZE, run_before=run_before)


def test_audit_tab(snap_compare: Compare, seeded: ThreadedServer) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = await _live(pilot)
        await pilot.press("3")
        await wait_until(pilot, lambda: len(app.query_one(AuditView).model.rows) > 0, "the audit log")

    assert snap_compare(seeded.app(), terminal_size=SIZE, run_before=run_before)


def test_metrics_tab(snap_compare: Compare, seeded: ThreadedServer) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = await _live(pilot)
        await pilot.press("4")
        body = app.query_one(MetricsView).query_one("#metrics-body", Static)
        await wait_until(pilot, lambda: "Queue metrics" in str(body.render()), "the metrics")

    assert snap_compare(seeded.app(), terminal_size=SIZE, run_before=run_before)


def test_help(snap_compare: Compare, seeded: ThreadedServer) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await _live(pilot)

    assert snap_compare(seeded.app(), press=["question_mark"], terminal_size=SIZE, run_before=run_before)


def test_plan_of_an_approval_beyond_the_free_licenses(snap_compare: Compare, seeded: ThreadedServer) -> None:
    """Two rows selected, then ``a``: the plan says what the server would refuse, and why."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app = await _live(pilot)
        await pilot.press("space", "space", "a")
        await wait_until(pilot, lambda: isinstance(app.screen, PlanScreen), "the plan")

    assert snap_compare(seeded.app(), terminal_size=SIZE, run_before=run_before)


def test_plan_of_a_lower_limit(snap_compare: Compare, seeded: ThreadedServer) -> None:
    """``l``, 6: the plan lists who would move to the queue, most recently licensed first."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app = await _live(pilot)
        await pilot.press("l")
        await wait_until(pilot, lambda: bool(app.screen.query("#limit-input")), "the limit prompt")
        app.screen.query_one("#limit-input", Input).value = "6"
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, PlanScreen), "the plan")

    assert snap_compare(seeded.app(), terminal_size=SIZE, run_before=run_before)


def test_detail_pane(snap_compare: Compare, seeded: ThreadedServer) -> None:
    """A wide terminal: the pane beside the queue shows the row under the cursor, its agents,
    likely matches, retained activity by day, productivity and top apps."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app = await _live(pilot)
        await pilot.press("down")
        pane = app.pending.pane
        await wait_until(
            pilot,
            lambda: pane.detail is not None and pane.detail.display_name == "Tim Berners-Lee",
            "the pane",
        )

    assert snap_compare(seeded.app(), terminal_size=(170, 40), run_before=run_before)


def test_reclaim_tab(snap_compare: Compare, seeded: ThreadedServer) -> None:
    """Twenty days on, every licensed user is idle: the Reclaim tab lists them, idle longest
    first, with when each was last active."""
    before = seeded.clock.now
    seeded.clock.advance(days=20)

    async def run_before(pilot: Pilot[Any]) -> None:
        app = await _live(pilot)
        await pilot.press("6")
        view = app.query_one(ReclaimView)
        await wait_until(pilot, lambda: len(view.model.rows) == 8, "the idle users")
        await pilot.press("space")

    try:
        assert snap_compare(seeded.app(), terminal_size=SIZE, run_before=run_before)
    finally:
        seeded.clock.now = before


def test_settings_tab(snap_compare: Compare, seeded: ThreadedServer) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = await _live(pilot)
        await pilot.press("7")
        await wait_until(pilot, lambda: app.query_one(SettingsView).base is not None, "the form")

    assert snap_compare(seeded.app(), terminal_size=SIZE, run_before=run_before)


def test_plan_of_the_rule_switched_on(snap_compare: Compare, seeded: ThreadedServer) -> None:
    """Settings: the rule on and two more licenses; the plan names whom the rule approves, in order."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app = await _live(pilot)
        await pilot.press("7")
        view = app.query_one(SettingsView)
        await wait_until(pilot, lambda: view.base is not None, "the form")
        await pilot.click("#auto-1")
        view.query_one("#set-limit", Input).value = "10"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, PlanScreen), "the plan")

    assert snap_compare(seeded.app(), terminal_size=SIZE, run_before=run_before)
