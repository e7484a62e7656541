"""Columns sized to their content and the terminal: the rule in memory, then the queue as drawn.

The queue is drawn at 100, 150 and 200 columns against a real server holding the names the
demo cut short ("Carol Stroustrup", a DEMOCORP logon, "14m 10s, 2 ev", "manual review").
"""

from __future__ import annotations

from typing import Any

import pytest
from textual.geometry import Region
from textual.pilot import Pilot

from tests.tui.conftest import LiveServer, wait_until
from tests.tui.test_pending import ready
from tui_client.app import AdminApp
from tui_client.columns import PADDING, Col, ContentWidths, fit
from tui_client.screens.queue_view import COLUMNS

COLS = [
    Col("name", "Name", 8, keep=90),
    Col("logon", "Logon", 8, keep=60),
    Col("device", "Device", 6, keep=30),
]


def test_every_column_gets_its_content_when_the_row_fits() -> None:
    content = {"name": 16, "logon": 20, "device": 11}
    assert fit(COLS, content, 100) == {"name": 16, "logon": 20, "device": 11}


def test_a_column_is_as_wide_as_its_label_when_its_content_is_narrower() -> None:
    assert fit(COLS, {}, 100) == {"name": 4, "logon": 5, "device": 6}
    assert fit([Col("x", "Expires", 3, keep=1)], {"x": 2}, 100) == {"x": 7}
    assert fit([Col("x", "Expires", None, keep=1)], {"x": 2}, 100) == {"x": 7}


def test_the_least_useful_column_is_narrowed_first() -> None:
    content = {"name": 16, "logon": 20, "device": 11}
    room = 16 + 20 + 11 + 3 * PADDING - 4
    assert fit(COLS, content, room) == {"name": 16, "logon": 20, "device": 7}
    room -= 5  # the device is at its minimum: the logon gives way next
    assert fit(COLS, content, room) == {"name": 16, "logon": 16, "device": 6}


def test_the_least_useful_column_is_cut_when_even_the_minimums_do_not_fit() -> None:
    content = {"name": 16, "logon": 20, "device": 11}
    widths = fit(COLS, content, 8 + 8 + 2 * PADDING + 3)
    assert list(widths) == ["name", "logon"]
    assert sum(widths.values()) + PADDING * len(widths) == 8 + 8 + 2 * PADDING + 3
    assert fit(COLS, content, 5) == {"name": 5 - PADDING}  # one column always stays


def test_a_whole_column_keeps_its_text_and_the_others_give_way() -> None:
    cols = [Col("name", "Name", None, keep=90), *COLS[1:]]
    content = {"name": 16, "logon": 20, "device": 11}
    assert fit(cols, content, 16 + 8 + 2 * PADDING) == {"name": 16, "logon": 8}
    assert fit(cols, content, 10) == {"name": 10 - PADDING}  # alone and still too wide


def test_a_maximum_caps_a_column_whatever_its_content() -> None:
    assert fit([Col("d", "Detail", 10, keep=1, max=30)], {"d": 200}, 300) == {"d": 30}


def test_content_widths_grow_with_the_rows_and_measure_what_is_shown() -> None:
    widths = ContentWidths()
    assert widths.add([("name", "Ada"), ("n", 12345)])
    assert not widths.add([("name", "Al")])
    assert widths.add([("name", "Ada\x1b[2J")])  # the ESC shows as one U+FFFD
    assert widths.widths == {"name": 7, "n": 5}


# ---------------------------------------------------------------------------- drawn

PEOPLE = [
    ("LAPTOP-9980", "LAPTOP-9980", "cstroustrup", "Carol Stroustrup"),
    ("DESKTOP-6533", "DEMOCORP", "cmatsumoto@democorp.example", "Carol Matsumoto"),
    ("LAPTOP-9980B", "LAPTOP-9980B", "cstroustrup", "Carol Stroustrup"),
    ("LAPTOP-4242", "DEMOCORP", "tturing", "Tim Turing"),
]


async def queue_of_demo_names(live: LiveServer) -> list[str]:
    """The people, each waiting for review; their user ids in queue order."""
    return [
        (await live.ingest(device, logon, name, domain=domain, events=2))["userId"]
        for device, domain, logon, name in PEOPLE
    ]


def lines(app: AdminApp) -> list[str]:
    table = app.pending.table
    region = Region(0, 0, table.size.width, table.size.height)
    return [strip.text for strip in table.render_lines(region)]


def row_text(app: AdminApp, user_id: str) -> str:
    return lines(app)[1 + list(app.pending.queue.rows).index(user_id)]  # under the header


async def drawn(pilot: Pilot[Any], app: AdminApp) -> None:
    """Wait until the table has laid out its columns for the terminal's width (and the detail
    pane's, open on wide terminals)."""
    await wait_until(
        pilot, lambda: bool(app.pending.fitted) and app.pending.table.size.width > 0, "the table"
    )
    await pilot.pause()


@pytest.mark.parametrize("width", [100, 150, 200])
async def test_the_queue_fits_its_columns_to_the_terminal(live_review: LiveServer, width: int) -> None:
    carol, matsumoto, carol_again, tim = await queue_of_demo_names(live_review)
    app = live_review.app()
    async with app.run_test(size=(width, 30)) as pilot:
        await ready(pilot, app, len(PEOPLE))
        await drawn(pilot, app)
        view = app.pending
        widths = view.fitted
        used = sum(widths.values()) + PADDING * len(widths)
        assert used <= view.table.room
        cells = [view.cells(user) for user in view.queue.rows.values()]
        content = {c.key: c.wanted(max(len(str(row[c.key])) for row in cells)) for c in COLUMNS}
        cut_short = [key for key, w in widths.items() if w < content[key]]
        if cut_short:
            assert used == view.table.room, f"{cut_short} cut short while space stood unused"

        # The name shows in full at every width, and so do the reason and the retained data
        # whenever they are shown.
        assert "Carol Stroustrup" in row_text(app, carol)
        assert "Carol Matsumoto" in row_text(app, matsumoto)
        if "reason" in widths:
            assert "manual review" in row_text(app, tim)
        if "retained" in widths:
            assert "2m, 2 ev" in row_text(app, tim)
        match = str(view.cells(view.queue.rows[carol_again])["suggestion"])
        assert match.endswith("Carol Stroustrup 97%"), match
        if width >= 150:
            assert match in row_text(app, carol_again)
        if width == 200:
            # The detail pane is open on a terminal this wide; closed, the table has it all.
            assert app.pending.pane.display
            await pilot.press("enter")
            await wait_until(pilot, lambda: not app.pending.pane.display, "the pane to close")
            await wait_until(pilot, lambda: "expires" in view.fitted, "the columns to widen")
            await pilot.pause()
            assert all(view.fitted[c.key] == content[c.key] for c in COLUMNS), view.fitted
            assert "DEMOCORP\\cmatsumoto@democorp.example" in row_text(app, matsumoto)
        if width == 100:
            assert set(widths) < {c.key for c in COLUMNS}, "something has to give at 100 columns"
            assert {"sel", "name", "suggestion"} <= set(widths)


async def test_the_columns_follow_a_resize_and_new_content(live_review: LiveServer) -> None:
    carol, *_ = await queue_of_demo_names(live_review)
    app = live_review.app()
    async with app.run_test(size=(200, 30)) as pilot:
        await ready(pilot, app, len(PEOPLE))
        await drawn(pilot, app)
        assert "expires" in app.pending.fitted
        await pilot.resize_terminal(90, 30)
        await wait_until(pilot, lambda: "expires" not in app.pending.fitted, "a column cut at 90 columns")
        assert "Carol Stroustrup" in row_text(app, carol)
        await pilot.resize_terminal(200, 30)
        await wait_until(pilot, lambda: "expires" in app.pending.fitted, "the column back at 200")
        before = app.pending.fitted["name"]
        long = "Johannes Diderik van der Waals"
        waals = (await live_review.ingest("LAPTOP-1", "jd", long, events=1))["userId"]
        await wait_until(pilot, lambda: app.pending.fitted["name"] > before, "the name column to widen")
        assert long in row_text(app, waals)
