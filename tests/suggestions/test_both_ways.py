"""Likely matches hold both ways: between pending users, and for licensed users (issue 13).

A re-imaged laptop reports under a new key, so its owner reappears as another user: all of
them pending (the queue's "Shafi Stroustrup" on LAPTOP-9980, -9980B, -9980BB) or all of them
licensed while seats were free ("Edsger McCarthy" three times). Each must show the others,
as soon as the later one arrives and for as long as it exists.
"""

from __future__ import annotations

from datetime import timedelta

from server.domain import actions
from server.infra.db import Database
from tests.graphql.helpers import Gql
from tests.server.domain import admin
from tests.suggestions.helpers import local, person, suggested, target
from tests.support import START, make_tenant

DAY = timedelta(days=1)


async def matches(db: Database, account_id: int, user_id: int | None) -> list[tuple[str, int | None]]:
    """Each suggestion as ``(kind, the user it points at)``, best first."""
    out = []
    for found in await suggested(db, account_id, user_id):
        owner = found.user.id if found.user is not None else found.agent.user_id  # type: ignore[union-attr]
        out.append((found.kind.value, owner))
    return out


async def test_pending_re_images_match_each_other_as_each_arrives(db: Database) -> None:
    t = await make_tenant(db, licenses=0)
    first = await local(db, t.account_id, "LAPTOP-9980", "sstroustrup", "Shafi Stroustrup")
    assert await matches(db, t.account_id, first.user_id) == []

    second = await local(db, t.account_id, "LAPTOP-9980B", "sstroustrup", "Shafi Stroustrup", now=START + DAY)

    # The earlier one gains the match when the later one arrives, and the later one has it.
    assert target((await suggested(db, t.account_id, first.user_id))[0]) == ("MERGE", second.agent_id)
    assert target((await suggested(db, t.account_id, second.user_id))[0]) == ("MERGE", first.agent_id)

    third = await local(
        db, t.account_id, "LAPTOP-9980BB", "sstroustrup", "Shafi Stroustrup", now=START + 2 * DAY
    )

    for me, others in ((first, (second, third)), (second, (first, third)), (third, (first, second))):
        assert {u for _, u in await matches(db, t.account_id, me.user_id)} == {o.user_id for o in others}


async def test_the_scores_do_not_depend_on_which_duplicate_came_first(db: Database) -> None:
    t = await make_tenant(db, licenses=0)
    old = await local(db, t.account_id, "LAPTOP-7", "jdoe", "John Doe")
    new = await local(db, t.account_id, "LAPTOP-7B", "jdoe", "John Doe", now=START + 3 * DAY)

    (forward,) = await suggested(db, t.account_id, new.user_id)
    (backward,) = await suggested(db, t.account_id, old.user_id)

    assert forward.score == backward.score
    # The old laptop is the renamed one whichever side asks.
    assert "device LAPTOP-7B looks like LAPTOP-7 renamed" in forward.reasons
    assert "device LAPTOP-7B looks like LAPTOP-7 renamed" in backward.reasons
    assert "LAPTOP-7 has not reported for 3 days" in backward.reasons


async def test_an_earlier_pending_user_loses_the_match_when_the_duplicate_is_removed(db: Database) -> None:
    t = await make_tenant(db, licenses=0)
    first = await local(db, t.account_id, "LAPTOP-9980", "sstroustrup", "Shafi Stroustrup")
    second = await local(db, t.account_id, "LAPTOP-9980B", "sstroustrup", "Shafi Stroustrup", now=START + DAY)
    assert second.user_id is not None
    assert await matches(db, t.account_id, first.user_id)

    async with db.write() as s:
        await actions.remove(s, admin(t.account_id, t.admin_id), [second.user_id], False, START + DAY)

    assert await matches(db, t.account_id, first.user_id) == []


async def test_merging_a_duplicate_into_the_earlier_one_leaves_neither_a_match(db: Database) -> None:
    t = await make_tenant(db, licenses=0)
    first = await local(db, t.account_id, "LAPTOP-9980", "sstroustrup", "Shafi Stroustrup")
    second = await local(db, t.account_id, "LAPTOP-9980B", "sstroustrup", "Shafi Stroustrup", now=START + DAY)
    third = await local(
        db, t.account_id, "LAPTOP-9980BB", "sstroustrup", "Shafi Stroustrup", now=START + 2 * DAY
    )
    assert second.user_id is not None and first.agent_id is not None

    async with db.write() as s:
        await actions.merge(s, admin(t.account_id, t.admin_id), second.user_id, first.agent_id, START + DAY)

    assert await matches(db, t.account_id, first.user_id) == [("MERGE", third.user_id)]
    assert await matches(db, t.account_id, third.user_id) == [("MERGE", first.user_id)]


async def test_an_approved_duplicate_stays_a_match_both_ways(db: Database) -> None:
    t = await make_tenant(db, licenses=0)
    first = await local(db, t.account_id, "LAPTOP-9980", "sstroustrup", "Shafi Stroustrup")
    second = await local(db, t.account_id, "LAPTOP-9980B", "sstroustrup", "Shafi Stroustrup", now=START + DAY)
    assert second.user_id is not None
    async with db.write() as s:
        await actions.update_settings(s, admin(t.account_id, t.admin_id), START + DAY, license_limit=1)
    async with db.write() as s:
        await actions.approve(s, admin(t.account_id, t.admin_id), [second.user_id], START + DAY)

    # The pending one probably is the licensed one now: its match shows where to assign it,
    # and the licensed one still shows its pending duplicate.
    assert await matches(db, t.account_id, first.user_id) == [("MERGE", second.user_id)]
    assert await matches(db, t.account_id, second.user_id) == [("MERGE", first.user_id)]


async def test_licensed_re_images_show_each_other(db: Database) -> None:
    t = await make_tenant(db, licenses=5)
    laptop = await local(db, t.account_id, "LAPTOP-5800", "emccarthy", "Edsger McCarthy")
    renamed = await local(db, t.account_id, "LAPTOP-5800B", "emccarthy", "Edsger McCarthy", now=START + DAY)
    reimaged = await local(
        db, t.account_id, "DESKTOP-F00E3A", "emccarthy", "Edsger McCarthy", now=START + 2 * DAY
    )
    other = await person(db, t.account_id, "LAPTOP-1234", "aturing", "Alan Turing")
    assert {a.status for a in (laptop, renamed, reimaged, other)} == {"LICENSED"}

    assert await matches(db, t.account_id, laptop.user_id) == [
        ("MERGE", renamed.user_id),
        ("ASSIGN", reimaged.user_id),
    ]
    assert {u for _, u in await matches(db, t.account_id, renamed.user_id)} == {
        laptop.user_id,
        reimaged.user_id,
    }
    assert {u for _, u in await matches(db, t.account_id, reimaged.user_id)} == {
        laptop.user_id,
        renamed.user_id,
    }
    assert await matches(db, t.account_id, other.user_id) == []


async def test_a_pending_arrival_gives_an_earlier_licensed_user_its_match(db: Database) -> None:
    t = await make_tenant(db, licenses=1)
    licensed = await person(db, t.account_id, "LAPTOP-7", "jdoe", "John Doe")
    assert await matches(db, t.account_id, licensed.user_id) == []

    pending = await local(db, t.account_id, "LAPTOP-7", "jdoe", "John Doe", now=START + DAY)

    assert await matches(db, t.account_id, pending.user_id) == [("ASSIGN", licensed.user_id)]
    assert await matches(db, t.account_id, licensed.user_id) == [("ASSIGN", pending.user_id)]


USERS = """
query($status: UserStatus) {
  users(first: 50, status: $status) {
    edges { node { id displayName status
      suggestions(first: 1) { kind score reasons user { id status } agent { id deviceName user { id } } }
    } }
  }
}
"""


async def test_the_users_list_shows_a_licensed_users_likely_match(gql: Gql, db: Database) -> None:
    t = await make_tenant(db, licenses=5)
    laptop = await local(db, t.account_id, "LAPTOP-5800", "emccarthy", "Edsger McCarthy")
    reimaged = await local(
        db, t.account_id, "DESKTOP-F00E3A", "emccarthy", "Edsger McCarthy", now=START + DAY
    )
    await person(db, t.account_id, "LAPTOP-1234", "aturing", "Alan Turing")

    edges = (await gql(t.viewer_token, USERS, status="LICENSED")).ok()["users"]["edges"]
    best = {e["node"]["id"]: e["node"]["suggestions"] for e in edges}

    (match,) = best[str(laptop.user_id)]
    assert match["kind"] == "ASSIGN" and match["user"] == {"id": str(reimaged.user_id), "status": "LICENSED"}
    assert "same local login emccarthy" in match["reasons"] and match["score"] > 0.9
    (back,) = best[str(reimaged.user_id)]
    assert back["user"] == {"id": str(laptop.user_id), "status": "LICENSED"}
    assert sum(1 for s in best.values() if not s) == 1
