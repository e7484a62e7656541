"""Suggestions stay true as the queue and the candidates change."""

from __future__ import annotations

from datetime import timedelta

from server.domain import actions, admission
from server.domain.models import Suggestion
from server.infra.db import Database
from tests.server.domain import admin, count
from tests.suggestions.helpers import LATER, local, person, suggested, target
from tests.support import START, make_tenant


async def test_approving_keeps_the_users_suggestions(db: Database) -> None:
    t = await make_tenant(db, licenses=1)
    owner = await person(db, t.account_id, "LAPTOP-7", "jdoe", "John Doe")
    new = await local(db, t.account_id, "LAPTOP-7", "jdoe", "John Doe")
    assert new.user_id is not None
    async with db.write() as s:
        await actions.update_settings(s, admin(t.account_id, t.admin_id), LATER, license_limit=2)
    async with db.write() as s:
        await actions.approve(s, admin(t.account_id, t.admin_id), [new.user_id], LATER)

    # Licensed twice now: each shows the other, so the wasted seat can be seen.
    assert [target(f) for f in await suggested(db, t.account_id, new.user_id)] == [("ASSIGN", owner.user_id)]
    assert [target(f) for f in await suggested(db, t.account_id, owner.user_id)] == [("ASSIGN", new.user_id)]


async def test_accepting_a_suggestion_drops_the_suggestions_of_and_to_the_pending_user(db: Database) -> None:
    t = await make_tenant(db, licenses=1)
    owner = await person(db, t.account_id, "LAPTOP-7", "jdoe", "John Doe")
    first = await local(db, t.account_id, "LAPTOP-7", "jdoe", "John Doe")
    second = await local(db, t.account_id, "LAPTOP-7B", "jdoe", "John Doe", now=LATER)
    assert first.user_id is not None and owner.user_id is not None
    assert target((await suggested(db, t.account_id, second.user_id))[0]) == ("MERGE", first.agent_id)

    async with db.write() as s:
        await actions.assign(s, admin(t.account_id, t.admin_id), first.user_id, owner.user_id, LATER)

    assert await count(db, Suggestion, Suggestion.pending_user_id == first.user_id) == 0
    # The second now matches the owner, who got the first's local agent: refreshed.
    found = await suggested(db, t.account_id, second.user_id)
    assert found and found[0].agent is not None and found[0].agent.id == first.agent_id
    assert found[0].kind.value == "MERGE"


async def test_a_removed_target_takes_its_suggestions_along(db: Database) -> None:
    t = await make_tenant(db, licenses=1)
    owner = await local(db, t.account_id, "LAPTOP-7", "jdoe", "John Doe")
    new = await local(db, t.account_id, "LAPTOP-7B", "jdoe", "John Doe", now=LATER)
    assert owner.user_id is not None
    assert await suggested(db, t.account_id, new.user_id)

    async with db.write() as s:
        await actions.remove(s, admin(t.account_id, t.admin_id), [owner.user_id], False, LATER)

    assert await suggested(db, t.account_id, new.user_id) == []


async def test_merging_drops_suggestions_into_the_merged_agent_and_keeps_the_rest(db: Database) -> None:
    t = await make_tenant(db, licenses=1)
    old = await person(db, t.account_id, "LAPTOP-7", "jdoe", "John Doe", domain="OLDCORP")
    moved = await person(db, t.account_id, "LAPTOP-7", "jdoe", "John Doe", domain="ACME", now=LATER)
    again = await person(db, t.account_id, "LAPTOP-7", "jdoe@acme.com", "John Doe", domain="ACME", now=LATER)
    assert moved.user_id is not None and old.agent_id is not None
    assert {target(f) for f in await suggested(db, t.account_id, again.user_id)} == {
        ("MERGE", old.agent_id),
        ("MERGE", moved.agent_id),
    }

    async with db.write() as s:
        await actions.merge(s, admin(t.account_id, t.admin_id), moved.user_id, old.agent_id, LATER)

    assert [target(f) for f in await suggested(db, t.account_id, again.user_id)] == [("MERGE", old.agent_id)]


async def test_a_new_licensed_candidate_refreshes_the_pending_users_it_matches(db: Database) -> None:
    t = await make_tenant(db, licenses=0, manual_review=False)
    pending = await local(db, t.account_id, "LAPTOP-7", "jdoe", "John Doe")
    assert await suggested(db, t.account_id, pending.user_id) == []
    async with db.write() as s:
        await actions.update_settings(s, admin(t.account_id, t.admin_id), START, license_limit=1)

    owner = await person(db, t.account_id, "LAPTOP-7", "jdoe", "John Doe")
    assert owner.status == "LICENSED"

    (top,) = await suggested(db, t.account_id, pending.user_id)
    assert target(top) == ("ASSIGN", owner.user_id)


async def test_users_queued_by_a_lowered_limit_get_suggestions(db: Database) -> None:
    t = await make_tenant(db, licenses=2)
    owner = await person(db, t.account_id, "LAPTOP-7", "jdoe", "John Doe", now=START)
    dup = await local(db, t.account_id, "LAPTOP-7", "jdoe", "John Doe", now=START + timedelta(minutes=1))
    assert dup.status == "LICENSED"

    async with db.write() as s:
        await actions.update_settings(s, admin(t.account_id, t.admin_id), LATER, license_limit=1)

    (top,) = await suggested(db, t.account_id, dup.user_id)
    assert target(top) == ("ASSIGN", owner.user_id)


async def test_two_duplicates_in_the_queue_point_at_each_other(db: Database) -> None:
    t = await make_tenant(db, licenses=0)
    first = await local(db, t.account_id, "LAPTOP-7", "jdoe", "John Doe")
    second = await person(db, t.account_id, "LAPTOP-7", "jdoe", "John Doe")

    (top,) = await suggested(db, t.account_id, second.user_id)
    assert target(top) == ("ASSIGN", first.user_id)
    (back,) = await suggested(db, t.account_id, first.user_id)
    assert target(back) == ("ASSIGN", second.user_id)
    assert back.score == top.score


async def test_one_admission_batch_suggests_in_bulk(db: Database) -> None:
    from server.domain.admission import AgentReport

    t = await make_tenant(db, licenses=2)
    async with db.write() as s:
        admitted = await admission.admit_many(
            s,
            t.account_id,
            [
                AgentReport("LAPTOP-1", "ACME", "ann.lee", "Ann Lee"),
                AgentReport("LAPTOP-2", "ACME", "bo.chan", "Bo Chan"),
                AgentReport("LAPTOP-1", "LAPTOP-1", "ann.lee", "Ann Lee"),
                AgentReport("LAPTOP-2B", "ACME", "bchan", "Bo Chan"),
                AgentReport("LAPTOP-3", "ACME", "cy.ng", "Cy Ng"),
            ],
            START,
        )
    assert [a.status for a in admitted] == ["LICENSED", "LICENSED", "PENDING", "PENDING", "PENDING"]
    assert target((await suggested(db, t.account_id, admitted[2].user_id))[0]) == (
        "ASSIGN",
        admitted[0].user_id,
    )
    assert target((await suggested(db, t.account_id, admitted[3].user_id))[0]) == (
        "ASSIGN",
        admitted[1].user_id,
    )
    assert await suggested(db, t.account_id, admitted[4].user_id) == []
