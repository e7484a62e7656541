"""Stored text full of markup and terminal controls reaches the screen literally, and harmlessly.

Names like ``[@click=app.quit]Eve[/]`` must show as typed (Textual would otherwise attach the
quit action to "Eve" and obey a click on it), and an ``ESC``, a bell, a bidi override or a
zero-width character must never reach the terminal: each shows as U+FFFD instead.

The hostile data is written straight through the domain layer (``admission.admit``) and the
database, never ``/ingest``: ingest refuses control characters in names, but data stored
before it did (and text it never checks) may still hold them.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from textual.content import Content
from textual.pilot import Pilot
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Label, OptionList, Static

from server.domain import admission
from server.domain.admission import AgentReport
from server.domain.models import Account, Admin
from tests.tui.conftest import LiveServer, wait_until
from tests.tui.test_pending import SIZE, ready, status_of
from tui_client import safe
from tui_client.app import AdminApp
from tui_client.screens.audit import AuditView
from tui_client.screens.confirm import ConfirmRemove
from tui_client.screens.paged import PagedListView
from tui_client.screens.pickers import AgentPicker, UserPicker
from tui_client.screens.suggestions import SuggestionsScreen
from tui_client.screens.users import UsersView

BAD = "\ufffd"  # what every control, bidi and zero-width character shows as

NAME = "[@click=app.quit]Eve[/] [b]bold[/b] [red]\x1b]0;pwned\x07\u202e\u200b"
NAME_SHOWN = f"[@click=app.quit]Eve[/] [b]bold[/b] [red]{BAD}]0;pwned{BAD}{BAD}{BAD}"
DOMAIN, DOMAIN_SHOWN = "[b]AC\x9bME", f"[b]AC{BAD}ME"  # \x9b: the C1 CSI
LOGON, LOGON_SHOWN = "eve[/]\u2066", f"eve[/]{BAD}"
DEVICE, DEVICE_SHOWN = "PC[@click=app.quit]7\x1b[2J", f"PC[@click=app.quit]7{BAD}[2J"
ACCOUNT, ACCOUNT_SHOWN = (
    "[@click=app.quit]Acme[/] \x1b]0;pwned\x07",
    f"[@click=app.quit]Acme[/] {BAD}]0;pwned{BAD}",
)
ADMIN, ADMIN_SHOWN = "[b]Ann[/b]\x1b[5m\u200f", f"[b]Ann[/b]{BAD}[5m{BAD}"

# Everything a screen line may hold once Textual's own colour sequences are taken out: no
# control character (C0, DEL, C1), no bidi control, no zero-width character.
SGR = re.compile(r"\x1b\[[0-9;:]*m")
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff]")


# ---------------------------------------------------------------------------- what is on screen


def strips(app: AdminApp) -> list[Strip]:
    return app.screen._compositor.render_strips()


def on_screen(app: AdminApp) -> str:
    return "\n".join(strip.text for strip in strips(app))


def sent_to_terminal(app: AdminApp) -> str:
    """The screen as the terminal receives it, without Textual's colour sequences."""
    return SGR.sub("", "".join(strip.render(app.console) for strip in strips(app)))


def click_actions(app: AdminApp) -> list[str]:
    """Actions a click anywhere on the screen would run (text styled ``@click``)."""
    return [
        str(segment.style.meta["@click"])
        for strip in strips(app)
        for segment in strip
        if segment.style is not None and "@click" in segment.style.meta
    ]


def assert_harmless(app: AdminApp) -> None:
    assert app.is_running
    assert click_actions(app) == []
    written = sent_to_terminal(app)
    assert UNSAFE.search(written) is None, repr(UNSAFE.findall(written))


def toasts(app: AdminApp) -> list[str]:
    """The notifications on screen, as rendered (title, newline, message)."""
    return [str(toast.render()) for toast in app.screen.query("Toast")]


def shown(widget: Widget) -> str:
    """A label's or a static's text as rendered."""
    assert isinstance(widget, Static)
    visual = widget.visual
    return visual.plain if isinstance(visual, Content) else str(visual)


def cell(table: Any, row: str, column: str) -> str:
    return str(table.get_cell(row, column))


def value(view: PagedListView[Any], row: str, column: str) -> str:
    """A column's text for a row as a table cell holds it, whether or not the column is shown
    at this width."""
    return str(safe.cell(view.cells(view.model.rows[row])[column]))


def as_drawn(view: PagedListView[Any], row: str) -> str:
    """A row as the table draws it: each shown cell cut to its column's width with "…"."""
    cells = view.cells(view.model.rows[row])
    parts = []
    for key, width in view.fitted.items():
        text = safe.clean(str(cells[key]))
        parts.append(text.ljust(width) if len(text) <= width else text[: width - 1] + "…")
    return "  ".join(parts)


async def close(pilot: Pilot[Any], app: AdminApp) -> None:
    await pilot.press("escape")
    await wait_until(pilot, lambda: len(app.screen_stack) == 1, "the dialog to close")


async def cursor_on(pilot: Pilot[Any], app: AdminApp, user_id: str) -> None:
    target = app.pending.table.get_row_index(user_id)
    while app.pending.table.cursor_row != target:
        await pilot.press("down" if app.pending.table.cursor_row < target else "up")


# ---------------------------------------------------------------------------- the data


async def admit(live: LiveServer, device: str, domain: str, logon: str, name: str) -> str:
    async with live.db.write() as session:
        admitted = await admission.admit(
            session, live.tenant.account_id, AgentReport(device, domain, logon, name), live.clock()
        )
    assert admitted.user_id is not None
    return str(admitted.user_id)


async def rename(live: LiveServer, model: type[Account] | type[Admin], row_id: int, name: str) -> None:
    table = model.__table__  # type: ignore[union-attr]
    async with live.db.write() as session:
        await session.execute(sa.update(table).where(table.c.id == row_id).values(name=name))


async def hostile_queue(live: LiveServer) -> dict[str, str]:
    """The account and its admin named in markup and escapes; in the queue Eve (hostile names
    everywhere), Ada, and Eve again in a local account on Eve's device (so the queue suggests
    the first Eve for her); Bob removed by the admin."""
    await rename(live, Account, live.tenant.account_id, ACCOUNT)
    await rename(live, Admin, live.tenant.admin_id, ADMIN)
    ids = {
        "eve": await admit(live, DEVICE, DOMAIN, LOGON, NAME),
        "ada": await admit(live, "LAPTOP-ADA", "ACME", "ada", "Ada"),
        "eve2": await admit(live, DEVICE, DEVICE, LOGON, NAME),
        "bob": await admit(live, "LAPTOP-BOB", "ACME", "bob", "Bob"),
    }
    await live.gql(
        "mutation($ids: [ID!]!) { removeUsers(input: {userIds: $ids, doNotTrack: false}) { errors { code } } }",
        ids=[ids["bob"]],
    )
    return ids


# ---------------------------------------------------------------------------- the tests


async def test_hostile_names_show_literally_in_the_queue_the_users_and_the_audit_log(
    live_review: LiveServer,
) -> None:
    ids = await hostile_queue(live_review)
    app = live_review.app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ready(pilot, app, 3)
        table = app.pending.table
        await wait_until(pilot, lambda: ACCOUNT_SHOWN in on_screen(app), "the account's name in the header")
        assert cell(table, ids["eve"], "name") == cell(table, ids["eve2"], "name") == NAME_SHOWN
        logon = f"{DOMAIN_SHOWN}\\{LOGON_SHOWN}"
        assert cell(table, ids["eve"], "logon") == logon
        assert value(app.pending, ids["eve"], "device") == DEVICE_SHOWN
        assert cell(table, ids["eve2"], "suggestion").startswith(f"Assign {NAME_SHOWN} ")
        # Eve's row as drawn: every cell shown cut to its column's width.
        assert {"name", "logon", "suggestion"} <= app.pending.fitted.keys()
        assert as_drawn(app.pending, ids["eve"]) in on_screen(app)
        assert_harmless(app)
        # Where Textual would have put the quit action: the name cell of Eve's row.
        await pilot.click(table, offset=(4, 1 + table.get_row_index(ids["eve"])))
        await pilot.pause()
        assert_harmless(app)

        await pilot.press("2")
        users = app.query_one(UsersView)
        await wait_until(
            pilot, lambda: ids["eve"] in users.model.rows and ids["ada"] in users.model.rows, "the Users tab"
        )
        assert cell(users.table, ids["eve"], "name") == NAME_SHOWN
        assert cell(users.table, ids["eve"], "logon") == logon
        assert value(users, ids["eve"], "devices") == DEVICE_SHOWN
        assert cell(users.table, ids["eve"], "status") == "pending"
        assert as_drawn(users, ids["eve"]) in on_screen(app)
        assert_harmless(app)

        await pilot.press("3")
        audit = app.query_one(AuditView)
        await wait_until(pilot, lambda: len(audit.model.rows) == 5, "the audit log: 4 arrivals and a removal")
        details = {cell(audit.table, key.value, "detail") for key in audit.table.rows if key.value}
        assert f"first report from {logon} on {DEVICE_SHOWN}; manual review is on" in details
        actors = {cell(audit.table, key.value, "actor") for key in audit.table.rows if key.value}
        assert actors == {"system", ADMIN_SHOWN}
        for key in audit.model.rows:
            assert as_drawn(audit, key) in on_screen(app)
        assert_harmless(app)


async def test_pickers_and_likely_matches_show_hostile_names_literally(live_review: LiveServer) -> None:
    ids = await hostile_queue(live_review)
    app = live_review.app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ready(pilot, app, 3)

        await cursor_on(pilot, app, ids["ada"])
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, UserPicker), "the user picker")
        options = app.screen.query_one(OptionList)
        await wait_until(pilot, lambda: options.option_count == 2, "both Eves in the picker")
        prompt = str(options.get_option(ids["eve"]).prompt)
        assert prompt == f"{NAME_SHOWN}  ·  {DOMAIN_SHOWN}\\{LOGON_SHOWN}  ·  pending"
        assert NAME_SHOWN in on_screen(app)
        assert_harmless(app)
        await close(pilot, app)

        await cursor_on(pilot, app, ids["eve"])
        await pilot.press("m")
        await wait_until(pilot, lambda: isinstance(app.screen, AgentPicker), "the agent picker")
        options = app.screen.query_one(OptionList)
        assert shown(app.screen.query_one(".title", Label)) == f"Merge {NAME_SHOWN} into the agent…"
        await wait_until(pilot, lambda: options.option_count == 2, "Ada's and the other Eve's agents")
        assert sorted(str(o.prompt) for o in options.options) == [
            "ACME\\ada on LAPTOP-ADA  ·  Ada (pending)",
            f"{DEVICE_SHOWN}\\{LOGON_SHOWN} on {DEVICE_SHOWN}  ·  {NAME_SHOWN} (pending)",
        ]
        assert_harmless(app)
        await close(pilot, app)

        await cursor_on(pilot, app, ids["eve2"])
        await pilot.press("w")
        await wait_until(pilot, lambda: isinstance(app.screen, SuggestionsScreen), "the likely matches")
        options = app.screen.query_one(OptionList)
        await wait_until(pilot, lambda: options.option_count == 1, "the first Eve as the likely match")
        assert shown(app.screen.query_one(".title", Label)) == f"Who is {NAME_SHOWN}? Likely matches"
        assert str(options.get_option_at_index(0).prompt).startswith(f"Assign {NAME_SHOWN}  ")
        assert_harmless(app)
        await close(pilot, app)
        assert app.is_running


async def test_acting_on_a_hostile_name_tells_it_literally(live_review: LiveServer) -> None:
    ids = await hostile_queue(live_review)
    app = live_review.app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ready(pilot, app, 3)

        await cursor_on(pilot, app, ids["eve"])
        await pilot.press("a")
        approved = f"Approved\nApproved {NAME_SHOWN}. Licenses: 1/3 used, 2 available. Press u to undo."
        await wait_until(pilot, lambda: approved in toasts(app), "the approval's notification")
        assert await status_of(live_review, ids["eve"]) == "LICENSED"
        assert_harmless(app)

        await cursor_on(pilot, app, ids["eve2"])
        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmRemove), "the remove dialog")
        body = shown(app.screen.query_one(".body", Static))
        assert body.startswith(f"{NAME_SHOWN}\n\nTheir devices")
        assert_harmless(app)
        await pilot.press("enter")
        removed = (
            f"Removed\nRemoved {NAME_SHOWN}. Their devices will be ignored from now on. Press u to undo."
        )
        await wait_until(pilot, lambda: removed in toasts(app), "the removal's notification")
        assert await live_review.user(ids["eve2"]) is None
        assert_harmless(app)


async def test_a_viewer_named_in_markup_is_greeted_literally(live: LiveServer) -> None:
    await rename(live, Admin, live.tenant.viewer_id, ADMIN)
    app = live.app(viewer=True)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        greeting = f"Signed in as {ADMIN_SHOWN} (viewer): you can look but not act."
        await wait_until(pilot, lambda: greeting in toasts(app), "the viewer's greeting")
        assert_harmless(app)


async def test_every_notification_is_plain_text_even_when_a_widget_asks_for_markup(live: LiveServer) -> None:
    """``Widget.notify`` passes ``markup=True``: the app's notify shows the text as it is anyway."""
    app = live.app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        app.pending.notify("[@click=app.quit]x[/] [b]y[/b]\x1b]0;pwned\x07\nnext line", title="[b]T\x1b[2J")
        expected = f"[b]T{BAD}[2J\n[@click=app.quit]x[/] [b]y[/b]{BAD}]0;pwned{BAD}\nnext line"
        await wait_until(pilot, lambda: expected in toasts(app), "the notification")
        assert app.notices[-1] == ("information", f"[b]T{BAD}[2J", expected.split("\n", 1)[1])
        assert_harmless(app)


async def test_the_search_text_is_echoed_literally(live_review: LiveServer) -> None:
    ids = await hostile_queue(live_review)
    app = live_review.app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ready(pilot, app, 3)
        await pilot.press("slash", *"[/]", "enter")
        await wait_until(
            pilot, lambda: set(app.pending.queue.rows) == {ids["eve"], ids["eve2"]}, "the filtered queue"
        )
        info = shown(app.pending.query_one("#pending-info", Static))
        assert info == "Showing 2 of 2 pending · filter “[/]”"
        assert_harmless(app)

        await pilot.press("2")
        users = app.query_one(UsersView)
        await wait_until(pilot, lambda: len(users.model.rows) == 3, "the Users tab")
        await pilot.press("slash", *"[/]", "enter")
        await wait_until(pilot, lambda: users.model.rows.keys() == {ids["eve"], ids["eve2"]}, "the search")
        assert shown(users.query_one("#users-info", Static)) == "Showing 2 of 2 users · search “[/]”"
        assert_harmless(app)


async def test_the_detail_pane_shows_hostile_names_literally(live_review: LiveServer) -> None:
    ids = await hostile_queue(live_review)
    app = live_review.app()
    async with app.run_test(size=(170, 40), notifications=True) as pilot:
        await ready(pilot, app, 3)
        await cursor_on(pilot, app, ids["eve2"])
        pane = app.pending.pane
        await wait_until(
            pilot, lambda: pane.detail is not None and pane.detail.id == ids["eve2"], "Eve's details"
        )
        text = shown(pane.query_one(".detail-body"))
        assert text.startswith(f"{NAME_SHOWN}\n")
        assert f"{DEVICE_SHOWN}\\{LOGON_SHOWN} on {DEVICE_SHOWN}" in text
        assert f"Assign {NAME_SHOWN}  " in text  # the first Eve, her likely match
        assert_harmless(app)
        await pilot.click(pane, offset=(2, 0))  # where a click action would sit
        await pilot.pause()
        assert_harmless(app)
