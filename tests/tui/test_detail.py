"""The detail pane: the chart and the text in memory, then the pane against a real server.

It is read for the row under the cursor once the cursor rests, never for every row; open on
wide terminals, toggled with enter; it follows the row's changes.
"""

from __future__ import annotations

from datetime import UTC, date, timedelta
from typing import Any

from tests.support import START
from tests.tui.conftest import LiveServer, wait_until
from tests.tui.test_pending import arrive, cursor_to, ready, rows
from tui_client import chart
from tui_client.app import AdminApp
from tui_client.parsing import parse
from tui_client.screens.users import UsersView
from tui_client.types import UserDetail
from tui_client.widgets.detail_pane import DetailPane, describe

WIDE = (170, 40)
NARROW = (120, 36)
BAD = "\ufffd"


# ---------------------------------------------------------------------------- the chart


def test_bars_scale_to_the_busiest_day_and_show_empty_days_as_dots() -> None:
    assert chart.bars([0, 8, 4, 1], height=1) == ["·█▄▁"]
    assert chart.bars([0, 16, 4], height=2) == [" █ ", "·█▄"]
    assert chart.bars([0, 0], height=2) == ["  ", "··"]
    assert chart.bars([3, 0], height=1, bar_width=2) == ["██··"]


def test_days_are_summed_when_there_are_more_than_columns() -> None:
    assert chart.resample([1, 2, 3], 5) == [1, 2, 3]
    assert chart.resample([1, 2, 3, 4, 5], 2) == [6, 9]


def test_the_axis_puts_the_first_date_left_and_the_last_right() -> None:
    assert chart.axis(date(2026, 10, 28), date(2026, 11, 26), 20) == "Oct 28        Nov 26"
    assert chart.axis(date(2026, 10, 28), date(2026, 11, 26), 8) == "  Nov 26"


# ---------------------------------------------------------------------------- the text


def detail_json(**changes: Any) -> dict[str, Any]:
    days = [START.date() - timedelta(days=2 - i) for i in range(3)]
    detail = {
        "id": "5",
        "displayName": "Eve\x1b]0;pwned\x07",
        "status": "PENDING",
        "firstSeenAt": "2026-11-24T09:00:00+00:00",
        "licensedAt": None,
        "lastActivityAt": "2026-11-26T09:30:00+00:00",
        "agents": [
            {
                "id": "7",
                "deviceName": "PC[@click=app.quit]7",
                "domain": "ACME",
                "logonName": "eve",
                "lastSeenAt": "2026-11-26T09:30:00+00:00",
            }
        ],
        "pending": {
            "reason": "MANUAL_REVIEW",
            "enteredAt": "2026-11-24T09:00:00+00:00",
            "retainedEventCount": 4,
            "retainedActiveSeconds": 5400,
            "oldestRetainedAt": "2026-11-24T09:00:00+00:00",
            "dataExpiresAt": "2026-12-24T09:00:00+00:00",
        },
        "suggestions": [
            {
                "kind": "ASSIGN",
                "score": 0.97,
                "reasons": ["same local login eve"],
                "user": {"id": "2", "displayName": "Eve Diaz", "status": "LICENSED", "agents": []},
                "agent": None,
            }
        ],
        "activity": {
            "days": 3,
            "activeSeconds": 5400,
            "productiveSeconds": 3600,
            "unproductiveSeconds": 600,
            "topApps": [
                {"app": "excel.exe\u202e", "activeSeconds": 3000},
                {"app": "chrome.exe", "activeSeconds": 2400},
            ],
            "daily": [
                {
                    "date": d.isoformat(),
                    "activeSeconds": s,
                    "productiveSeconds": 0,
                    "unproductiveSeconds": 0,
                }
                for d, s in zip(days, [3600, 0, 1800], strict=True)
            ],
        },
    }
    return {**detail, **changes}


def test_the_pane_says_who_where_which_match_and_what_was_done() -> None:
    detail = parse(UserDetail, detail_json())
    text = describe(detail, UTC, 40).plain
    assert text.startswith(f"Eve{BAD}]0;pwned{BAD}\npending · manual review · waiting since 2026-11-24 09:00")
    assert "Last activity  2026-11-26 09:30" in text and "Data expires   2026-12-24 09:00" in text
    assert "ACME\\eve on PC[@click=app.quit]7\n    last seen 2026-11-26 09:30" in text
    assert "Assign Eve Diaz  97%\n    licensed\n    · same local login eve" in text
    assert "Retained activity, last 3 days\n" in text
    # One bar per day, two columns wide; a 6-column chart has room for its last date only.
    assert "██    \n██    \n██  ██\n██··██\nNov 26\n" in text
    assert "Most a day: 1h 00m" in text
    assert "productive     1h 00m   67%\n  unproductive      10m   11%\n  neutral           20m   22%" in text
    assert f"excel.exe{BAD}" in text and "\x1b" not in text and "\u202e" not in text


def test_a_licensed_user_shows_its_activity_and_its_duplicates() -> None:
    detail = parse(
        UserDetail, detail_json(status="LICENSED", pending=None, licensedAt="2026-11-25T10:00:00+00:00")
    )
    text = describe(detail, UTC, 40).plain
    assert "licensed since 2026-11-25 10:00" in text and "Data expires" not in text
    assert "Activity, last 3 days" in text and "Assign Eve Diaz  97%" in text


def test_no_activity_and_no_match_are_said_in_words() -> None:
    empty = {"days": 30, "activeSeconds": 0, "productiveSeconds": 0, "unproductiveSeconds": 0}
    detail = parse(UserDetail, detail_json(suggestions=[], activity={**empty, "topApps": [], "daily": []}))
    text = describe(detail, UTC, 40).plain
    assert "none: this looks like a new person" in text and "No activity in these days." in text


# ---------------------------------------------------------------------------- the pane, live


def pane(app: AdminApp) -> DetailPane:
    return app.pending.pane


def shows(app: AdminApp, name: str) -> bool:
    detail = pane(app).detail
    return pane(app).display and detail is not None and detail.display_name == name


def pane_text(app: AdminApp) -> str:
    return str(pane(app).query_one(".detail-body").render())  # type: ignore[attr-defined]


class Reads:
    """Counts the detail reads the client sends (the real ones, passed on to the server)."""

    def __init__(self, app: AdminApp) -> None:
        self.ids: list[str] = []
        real = app.api.user_detail

        async def counted(user_id: str, days: int) -> UserDetail | None:
            self.ids.append(user_id)
            return await real(user_id, days)

        app.api.user_detail = counted  # type: ignore[method-assign]


async def test_a_wide_terminal_shows_the_row_under_the_cursor_and_reads_only_where_it_rests(
    live_review: LiveServer,
) -> None:
    ids = await arrive(live_review, "Ada", "Alan", "Grace", "Linus")
    app = live_review.app()
    reads = Reads(app)
    async with app.run_test(size=WIDE) as pilot:
        await ready(pilot, app, 4)
        await wait_until(pilot, lambda: shows(app, "Ada"), "Ada's details")
        # The rest before a read, long enough that three key presses never wait that long
        # even on a busy machine.
        pane(app).DELAY = 2.0
        text = pane_text(app)
        assert "pending · manual review" in text and "ACME\\ada on LAPTOP-ADA" in text
        assert "Retained activity, last 30 days" in text and "\nActive " in text
        assert "excel.exe" in text and "Nov 26" in text
        await pilot.press("down", "down", "down")  # through Alan and Grace without resting
        await wait_until(pilot, lambda: shows(app, "Linus"), "Linus's details")
        assert reads.ids == [ids["Ada"], ids["Linus"]]


async def test_enter_opens_and_closes_the_pane_on_a_narrower_terminal(live_review: LiveServer) -> None:
    await arrive(live_review, "Ada", "Alan")
    app = live_review.app()
    reads = Reads(app)
    async with app.run_test(size=NARROW) as pilot:
        await ready(pilot, app, 2)
        assert not pane(app).display
        await pilot.pause(DetailPane.DELAY * 2)
        assert reads.ids == []  # closed: nothing is read
        await cursor_to(pilot, app, "Alan")
        await pilot.press("enter")
        await wait_until(pilot, lambda: shows(app, "Alan"), "Alan's details")
        assert "name" in app.pending.fitted  # the table gave way, not the name
        await pilot.press("enter")
        await wait_until(pilot, lambda: not pane(app).display, "the pane to close")


async def test_the_pane_follows_a_change_to_its_row(live_review: LiveServer) -> None:
    """Another admin assigns Alan into Ada: Ada's pane shows the agent it gained."""
    ids = await arrive(live_review, "Ada", "Alan")
    app = live_review.app()
    async with app.run_test(size=WIDE) as pilot:
        await ready(pilot, app, 2)
        await wait_until(pilot, lambda: shows(app, "Ada"), "Ada's details")
        assert "Agents (1)" in pane_text(app)
        await live_review.gql(
            "mutation($p: ID!, $t: ID!) { assignPendingUser(input: {pendingUserId: $p, targetUserId: $t}) "
            "{ errors { code } } }",
            p=ids["Alan"],
            t=ids["Ada"],
        )
        await wait_until(pilot, lambda: rows(app) == ["Ada"], "Alan's row to leave")
        await wait_until(pilot, lambda: "Agents (2)" in pane_text(app), "Ada's pane to show both agents")


async def test_the_users_tab_shows_a_licensed_duplicate_in_its_column_and_pane(live: LiveServer) -> None:
    """Two licenses taken by one person's re-imaged laptop: the seat is seen wasted."""
    await live.ingest("LAPTOP-5800", "emccarthy", "Edsger McCarthy", domain="LAPTOP-5800")
    await live.ingest("LAPTOP-5800B", "emccarthy", "Edsger McCarthy", domain="LAPTOP-5800B")
    app = live.app()
    async with app.run_test(size=WIDE) as pilot:
        await ready(pilot, app, 0)
        await pilot.press("2")
        users = app.query_one(UsersView)
        await wait_until(pilot, lambda: len(users.model.rows) == 2, "the users")
        for uid in users.model.rows:
            assert "Edsger McCarthy" in str(users.table.get_cell(uid, "suggestion"))
        await wait_until(pilot, lambda: users.pane.detail is not None, "the pane")
        text = str(users.pane.query_one(".detail-body").render())  # type: ignore[attr-defined]
        assert "licensed since" in text and "Edsger McCarthy" in text.split("Likely matches", 1)[1]
