"""Admission remembers the account's licensed and pending counts between groups
(server.domain.seat_counts): no COUNT over the account's users while nothing else changed
who holds a seat, a recount as soon as something did, and nothing remembered from a
transaction that rolled back."""

from __future__ import annotations

import pytest

from server.domain import actions, admission
from server.domain.admission import AgentReport
from server.infra.db import Database
from tests.graphql.test_n_plus_one import counting
from tests.server.domain import admin, arrive
from tests.support import START, Tenant


def user_counts(statements: list[str]) -> list[str]:
    """The statements among these that count the account's users by status."""
    return [
        s
        for s in statements
        if "count(*)" in s.lower() and "group by user.status" in s.lower().replace('"', "")
    ]


class Boom(Exception):
    pass


async def free_the_seat_and_admit_four(db: Database, tenant: Tenant, first: admission.Admission) -> None:
    """Remove the one licensed user (the removal takes the next plan version), then admit
    four: with three licenses and none held, three take them and the fourth waits."""
    async with db.write() as s:
        await actions.remove(s, admin(tenant.account_id, tenant.admin_id), [first.user_id], False, START)
    after = [await arrive(db, tenant.account_id, f"PC{i}", f"u{i}") for i in range(2, 6)]
    assert [a.status for a in after] == ["LICENSED"] * 3 + ["PENDING"]


async def test_admissions_count_once_then_remember(db: Database, tenant: Tenant) -> None:
    # The tenant has 3 licenses.
    with counting(db, writes=True) as statements:
        first = [await arrive(db, tenant.account_id, f"PC{i}", f"u{i}") for i in range(5)]
    assert [a.status for a in first] == ["LICENSED"] * 3 + ["PENDING"] * 2
    assert len(user_counts(statements)) == 1


async def test_a_seat_freed_elsewhere_is_counted_again(db: Database, tenant: Tenant) -> None:
    licensed = [await arrive(db, tenant.account_id, f"PC{i}", f"u{i}") for i in range(3)]
    async with db.write() as s:
        result = await actions.remove(
            s, admin(tenant.account_id, tenant.admin_id), [licensed[0].user_id], False, START
        )
    assert result.removed_user_ids == [licensed[0].user_id]
    with counting(db, writes=True) as statements:
        after = await arrive(db, tenant.account_id, "PC9", "u9")
    # The removal bumped the plan version: the counts were read again, and the freed seat taken.
    assert after.status == "LICENSED"
    assert len(user_counts(statements)) == 1


async def test_a_rolled_back_admission_leaves_nothing_remembered(db: Database, tenant: Tenant) -> None:
    first = await arrive(db, tenant.account_id, "PC0", "u0")
    assert first.status == "LICENSED"
    # Admitted, then rolled back: its counts (two licensed) would be true at the next plan
    # version, which the removal below then takes with one licensed user fewer instead.
    with pytest.raises(Boom):
        async with db.write() as s:
            gone = await admission.admit(s, tenant.account_id, AgentReport("PC1", "ACME", "u1", "u1"), START)
            assert gone.status == "LICENSED"
            raise Boom
    await free_the_seat_and_admit_four(db, tenant, first)


async def test_a_savepoint_released_in_a_rolled_back_transaction_leaves_nothing_remembered(
    db: Database, tenant: Tenant
) -> None:
    first = await arrive(db, tenant.account_id, "PC0", "u0")
    with pytest.raises(Boom):
        async with db.write() as s:
            async with s.begin_nested():
                gone = await admission.admit(
                    s, tenant.account_id, AgentReport("PC1", "ACME", "u1", "u1"), START
                )
                assert gone.status == "LICENSED"
            # The savepoint is released (SQLAlchemy's after_commit fires), the transaction is not.
            raise Boom
    await free_the_seat_and_admit_four(db, tenant, first)
