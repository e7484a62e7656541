"""Likely matches in the queue: the column, one key to accept, bulk over a selection, the list."""

from __future__ import annotations

from tests.tui.conftest import LiveServer, eventually, wait_until
from tests.tui.test_pending import SIZE, cursor_to, ready, rows, told
from tui_client.screens.suggestions import SuggestionsScreen


async def licensed_and_duplicates(live: LiveServer) -> dict[str, str]:
    """Three licensed people, then two of them again under new keys, and one new person."""
    ada = await live.ingest("LAPTOP-1", "alovelace", "Ada Lovelace")
    alan = await live.ingest("LAPTOP-2", "aturing", "Alan Turing", domain="LAPTOP-2")
    await live.ingest("LAPTOP-3", "ghopper", "Grace Hopper")
    ids = {"ada": ada["userId"], "alan": alan["userId"], "alan_agent": alan["agentId"]}
    for device, logon, name, domain in [
        ("LAPTOP-1", "alovelace", "Ada L.", "LAPTOP-1"),  # a local account on Ada's laptop
        ("LAPTOP-2B", "aturing", "Alan Turing", "LAPTOP-2B"),  # Alan's laptop, renamed
        ("MAC-9", "ltorvalds", "Linus Torvalds", "ACME"),  # someone new
    ]:
        answer = await live.ingest(device, logon, name, domain=domain)
        assert answer["status"] == "PENDING"
        ids[name] = answer["userId"]
    return ids


def cell(app: object, name: str) -> str:
    view = app.pending  # type: ignore[attr-defined]
    uid = next(u.id for u in view.queue.rows.values() if u.display_name == name)
    return str(view.table.get_cell(uid, "suggestion"))


async def test_the_queue_shows_the_likely_match_and_y_accepts_it(live: LiveServer) -> None:
    ids = await licensed_and_duplicates(live)
    app = live.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 3)
        assert cell(app, "Ada L.") == "Assign Ada Lovelace 98%"
        assert cell(app, "Alan Turing").startswith("Merge Alan Turing ")
        assert cell(app, "Linus Torvalds") == "—"

        await cursor_to(pilot, app, "Ada L.")
        await pilot.press("y")

        async def assigned() -> bool:
            ada = await live.user(ids["ada"])
            return await live.user(ids["Ada L."]) is None and ada is not None and len(ada["agents"]) == 2

        await eventually(pilot, assigned, "Ada's local account assigned to her")
        await wait_until(pilot, lambda: rows(app) == ["Alan Turing", "Linus Torvalds"], "the row gone")
        assert told(app, "Ada L. assigned to Ada Lovelace")


async def test_y_over_a_selection_accepts_every_match_and_leaves_the_rest(live: LiveServer) -> None:
    ids = await licensed_and_duplicates(live)
    app = live.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 3)
        await pilot.press("ctrl+a")
        await pilot.press("y")

        async def resolved() -> bool:
            return all([await live.user(ids[n]) is None for n in ("Ada L.", "Alan Turing")])

        await eventually(pilot, resolved, "both duplicates resolved")
        alan = await live.user(ids["alan"])
        assert alan is not None and [a["id"] for a in alan["agents"]] == [
            ids["alan_agent"]
        ]  # merged, not assigned
        await wait_until(pilot, lambda: rows(app) == ["Linus Torvalds"], "only the new person left")
        assert told(app, "Resolved 2 users by their likely match; 1 user without a likely match left alone")


async def test_w_lists_the_matches_with_reasons_and_enter_accepts(live: LiveServer) -> None:
    ids = await licensed_and_duplicates(live)
    app = live.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 3)
        await cursor_to(pilot, app, "Alan Turing")
        await pilot.press("w")
        await wait_until(
            pilot, lambda: isinstance(app.screen, SuggestionsScreen) and bool(app.screen.found), "the list"
        )
        screen = app.screen
        assert isinstance(screen, SuggestionsScreen)
        assert "same local login aturing" in screen.found[0].reasons
        await pilot.press("enter")

        await eventually(pilot, lambda: _gone(live, ids["Alan Turing"]), "Alan merged")
        assert told(app, "Alan Turing merged into Alan Turing (LAPTOP-2\\aturing on LAPTOP-2)")


async def _gone(live: LiveServer, user_id: str) -> bool:
    return await live.user(user_id) is None


async def test_a_viewer_sees_matches_but_cannot_accept(live: LiveServer) -> None:
    await licensed_and_duplicates(live)
    app = live.app(viewer=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 3)
        assert cell(app, "Ada L.") == "Assign Ada Lovelace 98%"
        await cursor_to(pilot, app, "Ada L.")
        await pilot.press("y")
        await pilot.pause(0.2)
        assert rows(app) == ["Ada L.", "Alan Turing", "Linus Torvalds"]


# ---------------------------------------------------------------------------- rows an event is not about


async def test_a_removal_that_takes_a_match_away_clears_the_other_row(live: LiveServer) -> None:
    """Ada (licensed) is removed by another admin: "Ada L." no longer has her as a likely match,
    though the event is about Ada, who was never in the queue."""
    ids = await licensed_and_duplicates(live)
    app = live.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 3)
        assert cell(app, "Ada L.") == "Assign Ada Lovelace 98%"
        await live.gql(
            "mutation($ids: [ID!]!) { removeUsers(input: {userIds: $ids}) { errors { code } } }",
            ids=[ids["ada"]],
        )
        await wait_until(pilot, lambda: cell(app, "Ada L.") == "—", "Ada L.'s match to go with Ada")
        assert cell(app, "Alan Turing").startswith("Merge Alan Turing ")


async def test_an_assign_that_gives_a_match_shows_on_the_other_row(live_review: LiveServer) -> None:
    """Grace waits on her laptop's local account; later her domain login on the same laptop
    arrives and another admin assigns it to a licensed "Grace B. Hopper". Grace's row now has
    a likely match, though the event is about the other two."""
    grace = await live_review.ingest("LAPTOP-3", "ghopper", "Grace Hopper", domain="LAPTOP-3")
    later = await live_review.ingest("LAPTOP-3", "ghopper", "Grace Hopper", domain="ACME")
    licensed = await live_review.ingest("DESKTOP-77", "gbh", "Grace B. Hopper", domain="ACME")
    await live_review.gql(
        "mutation($ids: [ID!]!) { approvePendingUsers(input: {userIds: $ids}) { errors { code } } }",
        ids=[licensed["userId"]],
    )
    app = live_review.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 2)
        before = str(app.pending.table.get_cell(grace["userId"], "suggestion"))
        await live_review.gql(
            "mutation($p: ID!, $t: ID!) { assignPendingUser(input: {pendingUserId: $p, targetUserId: $t}) "
            "{ errors { code } } }",
            p=later["userId"],
            t=licensed["userId"],
        )

        def matched() -> bool:
            return "Grace B. Hopper" in str(app.pending.table.get_cell(grace["userId"], "suggestion"))

        await wait_until(pilot, matched, "Grace's row to show her likely match")
        assert "Grace B. Hopper" not in before
        assert rows(app) == ["Grace Hopper"]


async def test_rows_out_of_sight_are_left_to_paging(live_review: LiveServer) -> None:
    """The re-read covers the rows in sight, from the nearest row above with a cursor: a long
    queue is not read again in full after every event."""
    await live_review.seed([f"User {i:03}" for i in range(120)])
    app = live_review.app(page_size=50)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: len(rows(app)) >= 50 and not app.pending.queue.loading, "a page")
        after, first = app.pending.queue.window(*app.pending._in_sight())
        assert after is None and first <= SIZE[1]
        await pilot.press("pagedown", "pagedown")
        await pilot.pause()
        top, bottom = app.pending._in_sight()
        after, first = app.pending.queue.window(top, bottom)
        assert after is not None and first <= bottom - top + 1


async def test_a_later_duplicate_gives_the_earlier_row_its_match(live_review: LiveServer) -> None:
    """The demo's defect: three re-images of one laptop waited, each but the last showing "—".
    Matches hold both ways, and the earlier row is re-read when the later one arrives."""
    first = await live_review.ingest("LAPTOP-9980", "sstroustrup", "Shafi Stroustrup", domain="LAPTOP-9980")
    app = live_review.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)

        def match(user_id: str) -> str:
            return str(app.pending.table.get_cell(user_id, "suggestion"))

        assert match(first["userId"]) == "—"
        later = await live_review.ingest(
            "LAPTOP-9980B", "sstroustrup", "Shafi Stroustrup", domain="LAPTOP-9980B"
        )
        await wait_until(pilot, lambda: len(rows(app)) == 2, "the later duplicate, live")
        assert "Shafi Stroustrup" in match(later["userId"])
        await wait_until(
            pilot, lambda: "Shafi Stroustrup" in match(first["userId"]), "the earlier row's match"
        )
