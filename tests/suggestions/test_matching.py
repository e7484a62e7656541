"""Suggestions computed when a user enters the queue: each kind of duplicate, and the
people who only look like someone (hard negatives)."""

from __future__ import annotations

from server.infra.db import Database
from tests.suggestions.helpers import LATER, local, person, suggested, target
from tests.support import START, make_tenant


async def test_renamed_device_with_a_local_account_is_a_merge(db: Database) -> None:
    t = await make_tenant(db, licenses=1)
    old = await local(db, t.account_id, "LAPTOP-7", "jdoe", "John Doe")
    new = await local(db, t.account_id, "LAPTOP-7B", "jdoe", "John Doe", now=LATER)
    assert new.status == "PENDING"

    (top,) = await suggested(db, t.account_id, new.user_id)
    assert target(top) == ("MERGE", old.agent_id)
    assert top.score > 0.95
    assert "same local login jdoe" in top.reasons
    assert "device LAPTOP-7B looks like LAPTOP-7 renamed" in top.reasons
    assert "LAPTOP-7 has not reported for 3 days" in top.reasons


async def test_local_account_beside_the_domain_login_is_an_assign(db: Database) -> None:
    t = await make_tenant(db, licenses=1)
    owner = await person(db, t.account_id, "LAPTOP-7", "jdoe", "John Doe")
    new = await local(db, t.account_id, "LAPTOP-7", "jdoe", "jdoe")

    (top,) = await suggested(db, t.account_id, new.user_id)
    assert target(top) == ("ASSIGN", owner.user_id)
    assert "local account jdoe on LAPTOP-7 matches ACME\\jdoe" in top.reasons
    assert "same device LAPTOP-7" in top.reasons
    assert top.score >= 0.9


async def test_another_login_format_on_another_device_is_an_assign(db: Database) -> None:
    t = await make_tenant(db, licenses=1)
    owner = await person(db, t.account_id, "LAPTOP-7", "jdoe", "John Doe")
    new = await person(db, t.account_id, "LAPTOP-9", "john.doe", "John Doe")

    (top,) = await suggested(db, t.account_id, new.user_id)
    assert target(top) == ("ASSIGN", owner.user_id)
    assert "login john.doe is another form of jdoe" in top.reasons
    assert "display name matches (John Doe)" in top.reasons


async def test_upn_form_of_the_same_login_on_the_same_device_is_a_merge(db: Database) -> None:
    t = await make_tenant(db, licenses=1)
    old = await person(db, t.account_id, "LAPTOP-7", "John.Doe", "John Doe")
    new = await person(db, t.account_id, "LAPTOP-7", "john.doe@acme.com", "John Doe")

    (top,) = await suggested(db, t.account_id, new.user_id)
    assert target(top) == ("MERGE", old.agent_id)
    assert "same login johndoe on ACME (john.doe@acme.com / John.Doe)" in top.reasons


async def test_domain_migration_is_a_merge(db: Database) -> None:
    t = await make_tenant(db, licenses=1)
    old = await person(db, t.account_id, "LAPTOP-7", "jdoe", "John Doe", domain="OLDCORP")
    new = await person(db, t.account_id, "LAPTOP-7", "jdoe", "John Doe", domain="ACME", now=LATER)

    (top,) = await suggested(db, t.account_id, new.user_id)
    assert target(top) == ("MERGE", old.agent_id)
    assert "same login jdoe, domain OLDCORP -> ACME" in top.reasons


async def test_domain_migration_onto_a_new_device_is_an_assign(db: Database) -> None:
    t = await make_tenant(db, licenses=1)
    owner = await person(db, t.account_id, "LAPTOP-7", "jdoe", "John Doe", domain="OLDCORP")
    new = await person(db, t.account_id, "DESKTOP-2", "jdoe", "John Doe", domain="ACME", now=LATER)

    (top,) = await suggested(db, t.account_id, new.user_id)
    assert target(top) == ("ASSIGN", owner.user_id)


async def test_suggestions_are_ordered_by_score(db: Database) -> None:
    t = await make_tenant(db, licenses=2)
    weaker = await person(db, t.account_id, "DESKTOP-1", "john.doe", "John Doe")
    stronger = await local(db, t.account_id, "LAPTOP-7", "jdoe", "John Doe")
    new = await local(db, t.account_id, "LAPTOP-7B", "jdoe", "John Doe", now=LATER)

    found = await suggested(db, t.account_id, new.user_id)
    assert [target(f) for f in found] == [("MERGE", stronger.agent_id), ("ASSIGN", weaker.user_id)]
    assert found[0].score > found[1].score


# ---------------------------------------------------------------------------- hard negatives


async def test_two_people_called_j_smith_are_not_matched(db: Database) -> None:
    t = await make_tenant(db, licenses=1)
    await person(db, t.account_id, "LAPTOP-12", "jsmith", "John Smith")
    jane = await person(db, t.account_id, "LAPTOP-40", "jane.smith", "Jane Smith")
    numbered = await person(db, t.account_id, "LAPTOP-41", "jsmith2", "J. Smith")
    namesake = await person(db, t.account_id, "LAPTOP-42", "jsmith3", "John Smith")

    assert await suggested(db, t.account_id, jane.user_id) == []
    assert await suggested(db, t.account_id, numbered.user_id) == []
    assert await suggested(db, t.account_id, namesake.user_id) == []


async def test_generic_local_accounts_and_shared_devices_are_not_matched(db: Database) -> None:
    t = await make_tenant(db, licenses=2)
    await local(db, t.account_id, "PC-1", "Administrator", "Administrator")
    await person(db, t.account_id, "KIOSK-1", "alice", "Alice Wong")
    admin2 = await local(db, t.account_id, "PC-2", "administrator", "Administrator")
    bob = await person(db, t.account_id, "KIOSK-1", "bob", "Bob Jones")

    assert await suggested(db, t.account_id, admin2.user_id) == []
    assert await suggested(db, t.account_id, bob.user_id) == []


async def test_the_next_machine_in_a_series_is_not_a_rename(db: Database) -> None:
    t = await make_tenant(db, licenses=1)
    owner = await local(db, t.account_id, "LAPTOP-7", "jdoe", "John Doe")
    new = await local(db, t.account_id, "LAPTOP-71", "jdoe", "John Doe", now=LATER)

    (top,) = await suggested(db, t.account_id, new.user_id)
    assert target(top) == ("ASSIGN", owner.user_id)


async def test_a_name_alone_is_not_enough(db: Database) -> None:
    t = await make_tenant(db, licenses=1)
    await person(db, t.account_id, "LAPTOP-7", "jdoe", "John Doe")
    new = await person(db, t.account_id, "MAC-3", "jd77", "John Doe")

    assert await suggested(db, t.account_id, new.user_id) == []


async def test_candidates_come_from_the_same_account_only(db: Database) -> None:
    other = await make_tenant(db, name="Other", licenses=1)
    await local(db, other.account_id, "LAPTOP-7", "jdoe", "John Doe")
    t = await make_tenant(db, licenses=0)
    new = await local(db, t.account_id, "LAPTOP-7B", "jdoe", "John Doe", now=START)

    assert await suggested(db, t.account_id, new.user_id) == []
