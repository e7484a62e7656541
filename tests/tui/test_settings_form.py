"""The Settings tab: the form read into a change (in memory), then against a real server the
plan before applying, a domain the server refuses, a queue that changed under the plan, and
the queue target marking rows overdue.

Outcomes are checked through the API, not through the client's own state.
"""

from __future__ import annotations

from typing import Any

import pytest
from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import Input, RadioSet, Static

from tests.tui.conftest import LiveServer, wait_until
from tests.tui.test_pending import SIZE, arrive, ready, rows, status_of, told
from tests.tui.test_plans import notice, plan_shown, plan_text
from tui_client.app import AdminApp
from tui_client.screens.plan import CHANGED, PlanScreen
from tui_client.screens.queue_view import QueueView
from tui_client.screens.settings_form import SettingsView
from tui_client.settings_change import FormError, FormValues, SettingsChange, read_form, split_domains
from tui_client.types import Account, AutoApproveMode

# ---------------------------------------------------------------------------- the form, in memory

ACCOUNT = Account(
    id="1",
    name="Acme",
    license_limit=3,
    licenses_used=3,
    licenses_available=0,
    pending_count=2,
    manual_review=False,
    retention_days=30,
    auto_approve=AutoApproveMode.OFF,
    auto_approve_domains=("acme",),
    queue_target_hours=24,
)


def form(**changes: Any) -> FormValues:
    values = FormValues.of(ACCOUNT)
    return FormValues(**{**values.__dict__, **changes})


def test_an_untouched_form_changes_nothing() -> None:
    assert form() == FormValues("3", False, AutoApproveMode.OFF, "acme", "24")
    assert not read_form(form(), ACCOUNT)
    assert not read_form(form(domains=" ACME ,", license_limit=" 3 "), ACCOUNT)  # the same, as typed


def test_only_what_differs_is_sent() -> None:
    change = read_form(
        form(auto_approve=AutoApproveMode.OLDEST_FIRST, domains="Acme corp.example,lab"), ACCOUNT
    )
    assert change == SettingsChange(
        auto_approve=AutoApproveMode.OLDEST_FIRST, auto_approve_domains=("acme", "corp.example", "lab")
    )
    assert change.as_input("7") == {
        "autoApprove": "OLDEST_FIRST",
        "autoApproveDomains": ["acme", "corp.example", "lab"],
        "expectedQueueVersion": "7",
    }
    assert change.describe(ACCOUNT) == [
        "Auto-approval: off → oldest first",
        "Auto-approval domains: acme → acme, corp.example, lab",
    ]


def test_an_empty_or_zero_target_removes_it_and_an_empty_domain_list_means_any() -> None:
    for empty in ("", " ", "0"):
        assert read_form(form(queue_target=empty), ACCOUNT) == SettingsChange(queue_target_hours=0)
    change = read_form(form(domains="", queue_target="1", license_limit="5"), ACCOUNT)
    assert change == SettingsChange(license_limit=5, auto_approve_domains=(), queue_target_hours=1)
    assert change.describe(ACCOUNT) == [
        "License limit: 3 → 5",
        "Auto-approval domains: acme → any",
        "Queue target: 24 hours → 1 hour",
    ]
    assert split_domains("a, b;c  a\tB") == ("a", "b", "c")


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("license_limit", {"license_limit": "-1"}),
        ("license_limit", {"license_limit": "10000001"}),
        ("queue_target", {"queue_target": "8761"}),
        ("queue_target", {"queue_target": "1.5"}),
    ],
)
def test_a_number_that_is_not_one_is_refused_before_asking_the_server(
    field: str, values: dict[str, str]
) -> None:
    with pytest.raises(FormError) as refused:
        read_form(form(**values), ACCOUNT)
    assert refused.value.field == field and "whole number" in refused.value.message


# ---------------------------------------------------------------------------- against a server


def view(app: AdminApp) -> SettingsView:
    return app.query_one(SettingsView)


def message(app: AdminApp) -> str:
    return str(view(app).query_one("#settings-message", Static).render())


async def on_settings(pilot: Pilot[Any], app: AdminApp) -> SettingsView:
    await wait_until(pilot, lambda: app.account is not None and app.me is not None, "sign-in")
    await pilot.press("7")
    await wait_until(pilot, lambda: view(app).base is not None, "the form")
    return view(app)


def type_in(app: AdminApp, field: str, text: str) -> None:
    view(app).query_one(field, Input).value = text


async def test_turning_the_rule_on_shows_whom_it_approves_in_order_then_applies_it(live: LiveServer) -> None:
    """Linus and Ken report from the ACME domain, Margaret from another: raising the limit to
    five with the rule on for ACME licenses Linus, then Ken."""
    ids = await arrive(live, "Ada", "Alan", "Grace")
    for name, domain in (("Linus", "ACME"), ("Margaret", "OTHER"), ("Ken", "acme")):
        ids[name] = (await live.ingest(f"PC-{name}", name.lower(), name, domain=domain))["userId"]
    app = live.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 3)
        await on_settings(pilot, app)
        await pilot.click("#auto-1")
        type_in(app, "#set-domains", "ACME")
        type_in(app, "#set-limit", "5")
        await pilot.press("ctrl+s")
        await plan_shown(pilot, app)
        body = str(app.screen.query_one(".body", Static).render())
        assert (
            "License limit: 3 → 5\nAuto-approval: off → oldest first\nAuto-approval domains: any → acme"
            in body
        )
        text = plan_text(app)
        assert "Licenses used: 3 → 5 of 5" in text
        assert "Approved, in this order (2):\n   1. Linus\n   2. Ken" in text
        assert await status_of(live, ids["Linus"]) == "PENDING"  # a plan changes nothing
        await pilot.press("y")

        await wait_until(pilot, lambda: rows(app) == ["Margaret"], "the approved to leave the queue")
        assert [await status_of(live, ids[n]) for n in ("Linus", "Margaret", "Ken")] == [
            "LICENSED",
            "PENDING",
            "LICENSED",
        ]
        settings = await live.gql("{ account { licenseLimit autoApprove autoApproveDomains } }")
        assert settings["account"] == {
            "licenseLimit": 5,
            "autoApprove": "OLDEST_FIRST",
            "autoApproveDomains": ["acme"],
        }
        assert told(app, "Settings saved")
        assert "Saved: License limit: 3 → 5" in message(app)
        assert view(app).query_one("#set-domains", Input).value == "acme"


async def test_a_domain_the_server_refuses_is_said_under_the_form_and_nothing_changes(
    live: LiveServer,
) -> None:
    app = live.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 0)
        await on_settings(pilot, app)
        type_in(app, "#set-domains", "acme, bad!domain")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: "not a domain name: 'bad!domain'" in message(app), "the refusal")
        assert not isinstance(app.screen, PlanScreen)
        assert app.focused is view(app).query_one("#set-domains")
        assert (await live.gql("{ account { autoApproveDomains } }"))["account"]["autoApproveDomains"] == []


async def test_a_number_out_of_range_is_said_without_asking_the_server(live: LiveServer) -> None:
    app = live.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 0)
        await on_settings(pilot, app)
        type_in(app, "#set-target", "9000")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: "from 0 to 8,760" in message(app), "the hint")
        assert app.focused is view(app).query_one("#set-target")


async def test_a_queue_changed_under_a_settings_plan_shows_the_fresh_plan(live: LiveServer) -> None:
    await arrive(live, "Ada", "Alan", "Grace", "Linus")
    app = live.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await on_settings(pilot, app)
        type_in(app, "#set-limit", "4")
        await pilot.press("tab", "right", "space")  # from manual review to the rule, by keys
        assert view(app).values().auto_approve is AutoApproveMode.OLDEST_FIRST
        await pilot.press("ctrl+s")
        first = await plan_shown(pilot, app)
        assert "Approved, in this order (1):\n   1. Linus" in plan_text(app)
        await arrive(live, "Margaret")  # over the limit: the queue changed
        await pilot.press("y")

        await wait_until(
            pilot, lambda: isinstance(app.screen, PlanScreen) and app.screen is not first, "the fresh plan"
        )
        assert notice(app) == CHANGED
        assert (await live.account())["licenseLimit"] == 3  # nothing was applied
        await pilot.press("y")
        await wait_until(pilot, lambda: rows(app) == ["Margaret"], "Linus approved by the rule")
        assert (await live.account())["licenseLimit"] == 4


async def test_cancelling_the_plan_keeps_the_edits_and_changes_nothing(live: LiveServer) -> None:
    app = live.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 0)
        await on_settings(pilot, app)
        type_in(app, "#set-target", "8")
        await pilot.press("ctrl+s")
        await plan_shown(pilot, app)
        await pilot.press("escape")
        await wait_until(pilot, lambda: "the plan was cancelled" in message(app), "the form again")
        assert view(app).query_one("#set-target", Input).value == "8"
        assert (await live.gql("{ account { queueTargetHours } }"))["account"]["queueTargetHours"] is None
        await pilot.press("escape")  # resets the form
        assert view(app).query_one("#set-target", Input).value == ""


def overdue_names(app: AdminApp) -> list[str]:
    table = app.pending.table
    return [
        str(cell.plain)
        for key in table.rows
        if isinstance(cell := table.get_cell(key, "name"), Text) and "red" in str(cell.style)
    ]


async def test_a_queue_target_marks_the_rows_waiting_longer_overdue(live: LiveServer) -> None:
    await arrive(live, "Ada", "Alan", "Grace", "Linus")
    live.clock.advance(minutes=90)
    await arrive(live, "Margaret")
    app = live.app()
    async with app.run_test(size=(170, 40)) as pilot:
        await ready(pilot, app, 2)
        assert overdue_names(app) == []
        await on_settings(pilot, app)
        type_in(app, "#set-target", "1")
        view(app).query_one("#set-target").focus()
        await pilot.press("enter")  # in a field: the same as ctrl+s
        await plan_shown(pilot, app)
        assert "Nobody's license changes." in plan_text(app)
        await pilot.press("y")
        await pilot.press("1")
        await wait_until(pilot, lambda: overdue_names(app) == ["Linus"], "Linus overdue, Margaret not")
        linus = next(iter(app.pending.queue.rows))
        entered = app.pending.table.get_cell(linus, "entered")
        assert isinstance(entered, Text) and entered.plain.endswith(" !")  # not by colour alone
        body = app.pending.pane.query_one(".detail-body", Static)
        await wait_until(pilot, lambda: "Due" in str(body.render()), "the due time in the pane")
        assert "Due            2026-11-26 10:00  overdue" in str(body.render())


async def test_a_row_turns_overdue_while_shown(live: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The client's clock says when a due time passed; the server's answer says overdue."""
    monkeypatch.setattr(QueueView, "DUE_CHECK_SECONDS", 0.1)
    await live.gql("mutation { updateAccountSettings(input: {queueTargetHours: 1}) { errors { code } } }")
    await arrive(live, "Ada", "Alan", "Grace", "Linus")
    app = live.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        app.pending.clock = live.clock  # the client and the server share the test's clock
        await pilot.pause(0.3)
        assert overdue_names(app) == []
        live.clock.advance(minutes=61)
        await wait_until(pilot, lambda: overdue_names(app) == ["Linus"], "Linus overdue, live")


async def test_a_viewer_reads_the_settings_but_cannot_change_them(live: LiveServer) -> None:
    app = live.app(viewer=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 0)
        settings = await on_settings(pilot, app)
        assert settings.query_one("#set-auto", RadioSet).disabled
        assert "Viewers can read the settings" in message(app)
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert len(app.screen_stack) == 1
