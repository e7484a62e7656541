"""docs/behaviour.md, Undo: when undo answers NOT_UNDOABLE (or another refusal), and that a
refused undo changes nothing; the removed data's window, with an injected clock."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa

from server.domain import actions, reclaim, retention
from server.domain.changes import Actor
from server.domain.errors import DomainError, ErrorCode, PermissionDenied
from server.domain.models import QueueAction, Role
from server.domain.undo import apply, check, removed
from server.infra.db import Database
from tests.server.domain import arrive, snapshot
from tests.server.undo_scene import T1, T3, WINDOW, Scene, act, entries, last, scene, send, set_limit, undo

Given = Callable[[Database, Scene], Awaitable[int]]


async def _approved_then_released(db: Database, given: Scene) -> int:
    await set_limit(db, given, 3)
    await act(db, actions.approve, given.actor, [given.pending[0]])
    entry = await last(db, given.account_id, QueueAction.APPROVED)
    await act(db, reclaim.release, given.actor, [given.pending[0]])
    return entry


async def _approved_then_moved_by_a_lowered_limit(db: Database, given: Scene) -> int:
    await set_limit(db, given, 3)
    await act(db, actions.approve, given.actor, [given.pending[0]])
    entry = await last(db, given.account_id, QueueAction.APPROVED)
    async with db.write() as s:
        await actions.update_settings(s, given.actor, T1, license_limit=2)  # moves the newest licensed
    return entry


async def _released_then_approved(db: Database, given: Scene) -> int:
    await act(db, reclaim.release, given.actor, [given.licensed[0]])
    entry = await last(db, given.account_id, QueueAction.RELEASED)
    await act(db, actions.approve, given.actor, [given.licensed[0]])
    return entry


async def _released_then_removed(db: Database, given: Scene) -> int:
    await act(db, reclaim.release, given.actor, [given.licensed[0]])
    entry = await last(db, given.account_id, QueueAction.RELEASED)
    await act(db, actions.remove, given.actor, [given.licensed[0]], False)
    return entry


async def _assigned_then_target_removed(db: Database, given: Scene) -> int:
    await act(db, actions.assign, given.actor, given.pending[0], given.licensed[0])
    entry = await last(db, given.account_id, QueueAction.ASSIGNED)
    await act(db, actions.remove, given.actor, [given.licensed[0]], False)
    return entry


async def _assigned_then_target_assigned_away(db: Database, given: Scene) -> int:
    p0, p1 = given.pending
    await act(db, actions.assign, given.actor, p0, p1)
    entry = await last(db, given.account_id, QueueAction.ASSIGNED)
    await act(db, actions.assign, given.actor, p1, given.licensed[0])
    return entry


async def _merged_then_target_removed(db: Database, given: Scene) -> int:
    await act(db, actions.merge, given.actor, given.pending[0], given.agents[given.licensed[0]])
    entry = await last(db, given.account_id, QueueAction.MERGED)
    await act(db, actions.remove, given.actor, [given.licensed[0]], False)
    return entry


async def _merged_then_target_merged_away(db: Database, given: Scene) -> int:
    p0, p1 = given.pending
    await act(db, actions.merge, given.actor, p0, given.agents[p1])
    entry = await last(db, given.account_id, QueueAction.MERGED)
    await act(db, actions.merge, given.actor, p1, given.agents[given.licensed[0]])
    return entry


async def _removed_then_reported_again(db: Database, given: Scene) -> int:
    await act(db, actions.remove, given.actor, [given.pending[0]], False)
    assert (await send(db, given.account_id, "PEND-0", 5, T1)).user_id != given.pending[0]
    return await last(db, given.account_id, QueueAction.REMOVED)


async def _already_undone(db: Database, given: Scene) -> int:
    await act(db, actions.remove, given.actor, [given.pending[0]], False)
    entry = await last(db, given.account_id, QueueAction.REMOVED)
    await undo(db, given, [entry], T1)
    return entry


async def _an_arrival(db: Database, given: Scene) -> int:
    return await last(db, given.account_id, QueueAction.ENTERED)


async def _an_undo(db: Database, given: Scene) -> int:
    await _already_undone(db, given)
    return await last(db, given.account_id, QueueAction.UNDONE)


@pytest.mark.parametrize(
    "given",
    [
        _approved_then_released,
        _approved_then_moved_by_a_lowered_limit,
        _released_then_approved,
        _released_then_removed,
        _assigned_then_target_removed,
        _assigned_then_target_assigned_away,
        _merged_then_target_removed,
        _merged_then_target_merged_away,
        _removed_then_reported_again,
        _already_undone,
        _an_arrival,
        _an_undo,
    ],
    ids=lambda f: f.__name__.strip("_"),
)
async def test_an_entry_the_state_moved_on_from_is_not_undoable(db: Database, given: Given) -> None:
    made = await scene(db)
    entry = await given(db, made)
    err = await refused(db, made, ErrorCode.NOT_UNDOABLE, [entry])
    assert err.field == "auditEntryIds" and f"entry {entry}" in err.message
    async with db.read() as s:
        shown = await check.undoable_until(s, made.account_id, [entry], T3, WINDOW)
    assert shown.get(entry) is None, "the audit log offers no undo either"


async def refused(db: Database, given: Scene, code: ErrorCode, ids: list[int], **kw: object) -> DomainError:
    before = await snapshot(db, given.account_id)
    with pytest.raises(DomainError) as info:
        await undo(db, given, ids, **kw)  # type: ignore[arg-type]
    assert info.value.code is code, info.value
    assert await snapshot(db, given.account_id) == before, "a refused undo changes nothing"
    return info.value


async def test_a_bulk_undo_is_all_or_nothing(db: Database) -> None:
    given = await scene(db)
    p0, p1 = given.pending
    await act(db, actions.remove, given.actor, [p0, p1], False)
    first, second = (e.id or 0 for e in await entries(db, given.account_id, QueueAction.REMOVED))
    await send(db, given.account_id, "PEND-1", 5, T1)  # P1's agent is a new user now
    err = await refused(db, given, ErrorCode.NOT_UNDOABLE, [first, second])
    assert "PEND-1" in err.message.upper() and "nothing was undone" in err.message
    assert [u.id for u in (await undo(db, given, [first])).users] == [p0]


async def test_too_old_and_turned_off(db: Database) -> None:
    given = await scene(db)
    await act(db, reclaim.release, given.actor, [given.licensed[0]])
    entry = await last(db, given.account_id, QueueAction.RELEASED)
    err = await refused(db, given, ErrorCode.NOT_UNDOABLE, [entry], now=T1 + WINDOW)
    assert "window ended" in err.message
    err = await refused(db, given, ErrorCode.NOT_UNDOABLE, [entry], window=timedelta(0))
    assert "turned off" in err.message
    async with db.read() as s:
        until = await check.undoable_until(
            s, given.account_id, [entry], T1 + WINDOW - timedelta(seconds=1), WINDOW
        )
    assert until == {entry: T1 + WINDOW}
    await undo(db, given, [entry], now=T1 + WINDOW - timedelta(seconds=1))


async def test_unknown_ids_empty_lists_and_viewers_are_refused(db: Database) -> None:
    given = await scene(db)
    other = await scene(db, name="Other")
    await act(db, actions.remove, other.actor, [other.pending[0]], False)
    foreign = await last(db, other.account_id, QueueAction.REMOVED)
    assert "no audit entry" in (await refused(db, given, ErrorCode.NOT_FOUND, [foreign])).message
    await refused(db, given, ErrorCode.NOT_FOUND, [999_999])
    await refused(db, given, ErrorCode.INVALID_INPUT, [])
    viewer = Actor(given.account_id, given.tenant.viewer_id, Role.VIEWER)
    with pytest.raises(PermissionDenied):
        async with db.write() as s:
            await apply.undo_actions(s, viewer, [foreign], T3, WINDOW)


async def _kept(db: Database) -> list[int]:
    """Removed users, agents and aliases kept, and their events (in chunks, in rollups)."""
    async with db.read() as s:
        rows = [
            int((await s.execute(sa.select(sa.func.count()).select_from(t))).scalar_one())
            for t in (removed.REMOVED_USER, removed.REMOVED_AGENT, removed.REMOVED_ALIAS)
        ]
        for t in (removed.REMOVED_CHUNK, removed.REMOVED_ROLLUP):
            total = sa.func.coalesce(sa.func.sum(t.c.event_count), 0)
            rows.append(int((await s.execute(sa.select(total))).scalar_one()))
        return rows


async def test_removed_data_is_kept_for_the_window_then_deleted_for_good(db: Database) -> None:
    given = await scene(db)
    p0, p1 = given.pending
    await act(db, actions.merge, given.actor, p1, given.agents[p0])  # an alias, two agents' activity
    await act(db, actions.remove, given.actor, [p0], True)
    entry = await last(db, given.account_id, QueueAction.REMOVED)
    assert await _kept(db) == [1, 1, 1, 2, 2]

    # The hourly job before the window ends keeps it; the first run after it deletes it.
    report = await retention.purge(db, T1 + WINDOW - timedelta(minutes=1), WINDOW)
    assert report.removed_users == 0 and await _kept(db) == [1, 1, 1, 2, 2]
    report = await retention.purge(db, T1 + WINDOW + timedelta(minutes=1), WINDOW)
    assert report.removed_users == 1 and report.to_json()["removedUsersDeleted"] == 1
    assert await _kept(db) == [0, 0, 0, 0, 0]
    err = await refused(
        db, given, ErrorCode.NOT_UNDOABLE, [entry], now=T1 + timedelta(hours=2), window=WINDOW * 2
    )
    assert "deleted for good" in err.message
    # The do-not-track entries the removal added stay: the removal is final.
    assert (await arrive(db, given.account_id, "PEND-1", "pend-1")).status == "IGNORED"
