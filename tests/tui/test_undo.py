"""Undo in the admin client against a real server: ``u`` right after an action (its notification
offers it, for a few seconds), and the Audit tab's undoable entries, undone after a confirmation.

Outcomes are checked through the API, not through the client's own state.
"""

from __future__ import annotations

from tests.support import START
from tests.tui.conftest import LiveServer, eventually, wait_until
from tests.tui.test_pending import SIZE, arrive, cursor_to, ready, rows, status_of, told
from tui_client.screens.audit import AuditView
from tui_client.types import AdminRef, AuditEntry, QueueAction
from tui_client.undo import Offers, UndoOffer, entries_of

REMOVE = "mutation($ids: [ID!]!) { removeUsers(input: {userIds: $ids}) { errors { code } } }"


async def test_u_right_after_a_removal_brings_the_user_back(live: LiveServer) -> None:
    ids = await arrive(live, "Ada", "Alan", "Grace", "Linus")
    app = live.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await pilot.press("x")
        await wait_until(pilot, lambda: app.screen.query("#dnt"), "the confirm dialog")
        await pilot.press("enter")
        await wait_until(pilot, lambda: told(app, "Press u to undo"), "the removal's notification")
        assert rows(app) == []
        await pilot.press("u")
        await wait_until(pilot, lambda: told(app, "Undid: the removal of Linus"), "the undo")
        assert await status_of(live, ids["Linus"]) == "PENDING"
        await wait_until(pilot, lambda: rows(app) == ["Linus"], "Linus back in the queue")
        # Off the do-not-track list again: Linus reports as himself.
        assert (await live.ingest("LAPTOP-LINUS", "linus", "Linus"))["userId"] == ids["Linus"]


async def test_u_undoes_an_approval_only_while_offered(live: LiveServer) -> None:
    ids = await arrive(live, "Ada", "Alan", "Grace", "Linus", "Mary")
    await live.gql("mutation { updateAccountSettings(input: {licenseLimit: 5}) { errors { code } } }")
    app = live.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 2)
        await pilot.press("a")
        await wait_until(pilot, lambda: told(app, "Approved Linus"), "the approval")
        await pilot.press("u")
        await wait_until(pilot, lambda: told(app, "Undid: the approval of Linus"), "the undo")
        assert await status_of(live, ids["Linus"]) == "PENDING"
        await wait_until(pilot, lambda: rows(app) == ["Linus", "Mary"], "Linus back in his place")

        app.undo_offers.seconds = 0  # the offer lapses at once
        await cursor_to(pilot, app, "Linus")
        await pilot.press("a")
        await wait_until(pilot, lambda: rows(app) == ["Mary"], "approved again")
        await pilot.press("u")
        await wait_until(pilot, lambda: told(app, "Nothing to undo right now"), "no offer")
        assert await status_of(live, ids["Linus"]) == "LICENSED"


async def test_the_audit_tab_shows_what_can_be_undone_and_undoes_a_selection(live: LiveServer) -> None:
    ids = await arrive(live, "Ada", "Alan", "Grace", "Linus", "Mary")
    await live.gql(REMOVE, ids=[ids["Linus"], ids["Mary"]])
    app = live.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 0)
        await pilot.press("3")
        audit = app.query_one(AuditView)
        await wait_until(pilot, lambda: len(audit.model.rows) == 4, "two arrivals and two removals")
        undo_until = {e.action: str(audit.table.get_cell(e.id, "undo")) for e in audit.model.rows.values()}
        assert undo_until[QueueAction.ENTERED] == "" and undo_until[QueueAction.REMOVED] == "  11-27 09:00"

        await pilot.press("space", "down", "space", "u")  # the two removals, newest first
        await wait_until(pilot, lambda: app.screen.query("#yes"), "the confirmation")
        await pilot.press("y")

        async def both_back() -> bool:
            return [await status_of(live, ids[n]) for n in ("Linus", "Mary")] == ["PENDING", "PENDING"]

        await eventually(pilot, both_back, "both users back")
        await wait_until(pilot, lambda: told(app, "Undid 2 entries"), "the notification")
        await wait_until(
            pilot,
            lambda: [e.action for e in audit.model.rows.values()][:2] == ["UNDONE", "UNDONE"],
            "the log",
        )
        assert all(e.undoable_until is None for e in audit.model.rows.values())


async def test_a_refused_undo_is_told_and_nothing_changes(live: LiveServer) -> None:
    ids = await arrive(live, "Ada", "Alan", "Grace", "Linus")
    await live.gql(REMOVE, ids=[ids["Linus"]])
    app = live.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 0)
        await pilot.press("3")
        audit = app.query_one(AuditView)
        await wait_until(pilot, lambda: len(audit.model.rows) == 2, "the audit log")
        # Linus's laptop reports again meanwhile: a new user, so the removal cannot be undone.
        assert (await live.ingest("LAPTOP-LINUS", "linus", "Linus"))["userId"] != ids["Linus"]
        await pilot.press("u", "y")
        await wait_until(pilot, lambda: told(app, "Nothing was undone"), "the refusal")
        assert await live.user(ids["Linus"]) is None


async def test_a_viewer_cannot_undo(live: LiveServer) -> None:
    ids = await arrive(live, "Ada", "Alan", "Grace", "Linus")
    await live.gql(REMOVE, ids=[ids["Linus"]])
    app = live.app(viewer=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 0)
        await pilot.press("3")
        audit = app.query_one(AuditView)
        await wait_until(pilot, lambda: len(audit.model.rows) == 2, "the audit log")
        await pilot.press("u")
        await pilot.pause(0.2)
        assert not app.screen.query("#yes") and await live.user(ids["Linus"]) is None


def test_the_offer_picks_the_entries_its_action_wrote() -> None:
    now = [100.0]
    offers = Offers(seconds=8, clock=lambda: now[0])
    assert offers.make(QueueAction.REMOVED, ["7", "8"], "the removal of 2 users") == "Press u to undo."
    me, other = AdminRef(id="1", name="Me"), AdminRef(id="2", name="Other")

    def entry(i: str, action: QueueAction, user: str, actor: AdminRef | None, undoable: bool) -> AuditEntry:
        return AuditEntry(
            id=i, at=START, actor=actor, action=action, user_id=user, user_display_name=user, detail="",
            undoable_until=START if undoable else None,
        )  # fmt: skip

    offer = offers.take()
    assert isinstance(offer, UndoOffer) and offers.take() is None, "an offer is taken once"
    log = [
        entry("9", QueueAction.REMOVED, "8", other, True),  # another admin's
        entry("8", QueueAction.REMOVED, "8", me, True),
        entry("7", QueueAction.REMOVED, "7", me, True),
        entry("6", QueueAction.REMOVED, "7", me, True),  # an older one: only the newest counts
        entry("5", QueueAction.APPROVED, "7", me, True),
    ]
    assert entries_of(offer, log, "1") == ["8", "7"]
    assert entries_of(offer, [entry("7", QueueAction.REMOVED, "7", me, False), *log[3:]], "1") == []
    offers.make(QueueAction.APPROVED, ["7"], "x")
    now[0] += 9
    assert offers.take() is None, "lapsed"
