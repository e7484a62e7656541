"""docs/behaviour.md, Undo: each action's undo puts the account back as it was, apart from the
audit rows, including when activity arrived in between (on SQLite and PostgreSQL)."""

from __future__ import annotations

import sqlalchemy as sa

from server.domain import actions, metrics, reclaim
from server.domain.models import Account, AuditEntry, AutoApproveMode, PendingReason, QueueAction, UserStatus
from server.infra.db import Database
from tests.server.domain import users
from tests.server.undo_scene import T2, T3, act, arrived, dump, entries, last, scene, send, set_limit, undo
from tests.support import START


async def test_undoing_an_approval_puts_the_user_back_in_its_place(db: Database) -> None:
    given = await scene(db)
    await set_limit(db, given, 3)
    before = await dump(db, given.account_id)
    async with db.read() as s:
        version = (await s.get(Account, given.account_id)).plan_version  # type: ignore[union-attr]
    p0 = given.pending[0]
    await act(db, actions.approve, given.actor, [p0])
    await send(db, given.account_id, "PEND-0", 30, T2)

    result = await undo(db, given, [await last(db, given.account_id, QueueAction.APPROVED)])

    assert await dump(db, given.account_id) == arrived(before, given.agents[p0], p0, 30, T2)
    assert [(u.id, u.status, u.pending_reason, u.pending_since) for u in result.users] == [
        (p0, UserStatus.PENDING, PendingReason.OVER_LIMIT, START)
    ]
    assert [(e.action, e.user_id, e.actor_id) for e in result.events] == [
        (QueueAction.UNDONE, p0, given.tenant.admin_id)
    ]
    approved, undone = (await entries(db, given.account_id))[-2:]
    assert (undone.action, undone.actor_id, undone.user_id, undone.at) == (
        QueueAction.UNDONE,
        given.tenant.admin_id,
        p0,
        T3,
    )
    assert approved.undone_by == undone.id and f"entry {approved.id}" in undone.detail
    assert undone.undo is None, "an undo is not undoable"
    assert result.usage.plan_version == version + 2, "the approval and its undo each bump queueVersion"


async def test_undoing_an_assignment_takes_back_the_agents_and_all_their_activity(db: Database) -> None:
    given = await scene(db)
    before = await dump(db, given.account_id)
    p0, l0 = given.pending[0], given.licensed[0]
    await act(db, actions.assign, given.actor, p0, l0)
    # Reported since, under the assigned agent's key: it went to the target; it comes back.
    assert (await send(db, given.account_id, "PEND-0", 30, T2)).user_id == l0

    result = await undo(db, given, [await last(db, given.account_id, QueueAction.ASSIGNED)])

    assert await dump(db, given.account_id) == arrived(before, given.agents[p0], p0, 30, T2)
    assert [u.id for u in result.users] == [p0, l0]
    assert (await send(db, given.account_id, "PEND-0", 1, T3)).user_id == p0


async def test_undoing_a_merge_splits_the_agent_and_its_activity_off_again(db: Database) -> None:
    given = await scene(db)
    before = await dump(db, given.account_id)
    p0, l0 = given.pending[0], given.licensed[0]
    await act(db, actions.merge, given.actor, p0, given.agents[l0])
    # Reported since through the alias: counted for the target agent until the undo.
    assert (await send(db, given.account_id, "PEND-0", 30, T2)).agent_id == given.agents[l0]

    await undo(db, given, [await last(db, given.account_id, QueueAction.MERGED)])

    assert await dump(db, given.account_id) == arrived(before, given.agents[p0], p0, 30, T2)
    again = await send(db, given.account_id, "PEND-0", 1, T3)
    assert (again.agent_id, again.user_id) == (given.agents[p0], p0), "the alias is gone"


async def test_undoing_one_of_two_merges_into_one_agent_keeps_the_other(db: Database) -> None:
    given = await scene(db)
    p0, p1, l0 = *given.pending, given.licensed[0]
    await act(db, actions.merge, given.actor, p0, given.agents[l0])
    after_first = await dump(db, given.account_id)
    first = await last(db, given.account_id, QueueAction.MERGED)
    await act(db, actions.merge, given.actor, p1, given.agents[l0])
    await undo(db, given, [await last(db, given.account_id, QueueAction.MERGED)])
    assert await dump(db, given.account_id) == after_first
    await undo(db, given, [first])
    assert {u.status for i, u in (await users(db, given.account_id)).items() if i in (p0, p1)} == {
        UserStatus.PENDING
    }


async def test_undoing_a_merge_gives_back_the_aliases_that_followed_the_folded_agent(db: Database) -> None:
    given = await scene(db)
    before = await dump(db, given.account_id)
    p0, p1, l0 = *given.pending, given.licensed[0]
    # P0 into P1's agent, then P1 (with P0's key as its alias) into L0's agent.
    await act(db, actions.merge, given.actor, p0, given.agents[p1])
    await act(db, actions.merge, given.actor, p1, given.agents[l0])
    assert (await send(db, given.account_id, "PEND-0", 30, T2)).agent_id == given.agents[l0]
    merges = [e.id or 0 for e in await entries(db, given.account_id, QueueAction.MERGED)]
    await undo(db, given, merges)
    assert await dump(db, given.account_id) == arrived(before, given.agents[p0], p0, 30, T2)


async def test_undoing_a_removal_brings_back_users_agents_aliases_activity_and_lifts_do_not_track(
    db: Database,
) -> None:
    given = await scene(db)
    p0, p1, l0 = *given.pending, given.licensed[0]
    await act(db, actions.merge, given.actor, p1, given.agents[l0])  # L0 has an alias now
    before = await dump(db, given.account_id)
    await act(db, actions.remove, given.actor, [l0, p0], True)
    assert (await send(db, given.account_id, "PEND-1", 5, T2)).status == "IGNORED"  # an alias of L0's
    removals = [e.id or 0 for e in await entries(db, given.account_id, QueueAction.REMOVED)]

    result = await undo(db, given, removals)

    assert await dump(db, given.account_id) == before
    assert sorted(u.id or 0 for u in result.users) == sorted([l0, p0])
    assert (await send(db, given.account_id, "PEND-1", 5, T3)).user_id == l0, "off the do-not-track list"


async def test_undoing_a_release_licenses_the_user_again(db: Database) -> None:
    given = await scene(db)
    before = await dump(db, given.account_id)
    l0 = given.licensed[0]
    await act(db, reclaim.release, given.actor, [l0])
    await send(db, given.account_id, "LIC-0", 30, T2)
    result = await undo(db, given, [await last(db, given.account_id, QueueAction.RELEASED)])
    assert await dump(db, given.account_id) == arrived(before, given.agents[l0], l0, 30, T2)
    assert [(u.id, u.status, u.licensed_at) for u in result.users] == [(l0, UserStatus.LICENSED, START)]


async def test_undoing_both_entries_of_a_swap_puts_both_users_back(db: Database) -> None:
    given = await scene(db)
    before = await dump(db, given.account_id)
    await act(db, reclaim.swap, given.actor, given.licensed[0], given.pending[0])
    swap = [e.id or 0 for e in (await entries(db, given.account_id))[-2:]]
    await undo(db, given, swap)
    assert await dump(db, given.account_id) == before


async def test_a_user_undone_back_to_licensed_without_a_free_license_comes_back_pending(db: Database) -> None:
    given = await scene(db)
    l0, p0 = given.licensed[0], given.pending[0]
    await act(db, reclaim.release, given.actor, [l0])
    release = await last(db, given.account_id, QueueAction.RELEASED)
    await act(db, actions.approve, given.actor, [p0])  # takes the freed license
    result = await undo(db, given, [release])
    assert [(u.id, u.status, u.pending_reason) for u in result.users] == [
        (l0, UserStatus.PENDING, PendingReason.OVER_LIMIT)
    ]
    assert "no license is free" in (await entries(db, given.account_id))[-1].detail
    assert (result.usage.licenses_used, result.usage.license_limit) == (2, 2)


async def test_a_removed_licensed_user_whose_license_was_taken_comes_back_pending(db: Database) -> None:
    given = await scene(db)
    l0 = given.licensed[0]
    await send(db, given.account_id, "LIC-0", 30, START)
    await act(db, actions.remove, given.actor, [l0], False)
    assert (await send(db, given.account_id, "NEW-0", 5, T2)).status == "LICENSED"
    result = await undo(db, given, [await last(db, given.account_id, QueueAction.REMOVED)])
    (back,) = result.users
    assert (back.id, back.status, back.pending_reason, back.pending_since) == (
        l0,
        UserStatus.PENDING,
        PendingReason.OVER_LIMIT,
        T3,
    )
    # What it recorded while licensed is not pending data: retention keeps it.
    assert back.licensed_until == T3 and result.usage.licenses_used == 2


async def test_an_undone_approval_waits_for_an_admin_while_the_rule_fills_free_licenses(db: Database) -> None:
    given = await scene(db)
    p0, p1 = given.pending
    await set_limit(db, given, 2, auto_approve=AutoApproveMode.OLDEST_FIRST)
    await act(db, actions.remove, given.actor, [given.licensed[0]], False)  # the rule approves P0
    by_rule = await last(db, given.account_id, QueueAction.APPROVED)
    assert (await entries(db, given.account_id))[-1].actor_id is None

    result = await undo(db, given, [by_rule])

    # The rule applies after the undo as after any write: P1 gets the license, not P0.
    assert [(e.action, e.user_id, e.actor_id) for e in result.events] == [
        (QueueAction.UNDONE, p0, given.tenant.admin_id),
        (QueueAction.APPROVED, p1, None),
    ]
    # A license freed later still leaves P0 to an admin.
    await act(db, actions.remove, given.actor, [given.licensed[1]], False)
    now = await users(db, given.account_id)
    assert (now[p0].status, now[p0].pending_since) == (UserStatus.PENDING, START)
    await act(db, actions.approve, given.actor, [p0])
    assert (await users(db, given.account_id))[p0].status is UserStatus.LICENSED


async def test_an_undone_exit_is_not_a_resolution(db: Database) -> None:
    given = await scene(db)
    await set_limit(db, given, 3)
    await act(db, actions.approve, given.actor, [given.pending[0]])
    async with db.read() as s:
        assert (await metrics.queue_metrics(s, given.account_id, 30, T3)).resolved_count == 1
    await undo(db, given, [await last(db, given.account_id, QueueAction.APPROVED)])
    async with db.read() as s:
        figures = await metrics.queue_metrics(s, given.account_id, 30, T3)
    assert (figures.resolved_count, figures.pending_count) == (0, 2)


async def test_undo_keeps_no_audit_rows_of_its_own_undoable(db: Database) -> None:
    given = await scene(db)
    await act(db, actions.remove, given.actor, [given.pending[0]], False)
    await undo(db, given, [await last(db, given.account_id, QueueAction.REMOVED)])
    async with db.read() as s:
        undone = (
            await s.execute(sa.select(AuditEntry).where(AuditEntry.action == QueueAction.UNDONE))  # type: ignore[arg-type]
        ).scalar_one()
    assert undone.undo is None and undone.queue_entered_at is None
