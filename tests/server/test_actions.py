"""docs/behaviour.md, Admin actions: every admin action, its effect and each of its errors (a refusal changes nothing)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import sqlalchemy as sa

from server.domain import actions
from server.domain.activity import ingestion
from server.domain.activity.batch import Batch, Event
from server.domain.admission import AgentReport
from server.domain.changes import Actor
from server.domain.errors import DomainError, ErrorCode, PermissionDenied
from server.domain.models import (
    AgentAlias,
    DoNotTrack,
    PendingReason,
    QueueAction,
    Role,
    UserStatus,
)
from server.infra.db import Database
from tests.server.domain import admin, agents_of, arrive, audit, count, events, snapshot, statuses, users
from tests.support import START, Tenant, make_tenant

LATER = START.replace(hour=10)


async def queue_of(db: Database, n: int, licenses: int = 0, **kw: Any) -> tuple[Tenant, list[int]]:
    """An account at ``licenses`` with ``n`` users in the queue (after filling the licenses)."""
    tenant = await make_tenant(db, licenses=licenses, **kw)
    for i in range(licenses):
        await arrive(db, tenant.account_id, f"LIC-{i}", f"licensed{i}")
    ids = [(await arrive(db, tenant.account_id, f"PEND-{i}", f"pending{i}")).user_id or 0 for i in range(n)]
    return tenant, ids


async def report(
    db: Database, account_id: int, device: str, logon: str, seconds: int, app: str = "excel.exe"
) -> None:
    async with db.write() as s:
        await ingestion.ingest(
            s,
            account_id,
            Batch(
                f"b-{device}-{seconds}-{app}",
                AgentReport(device, "ACME", logon, logon),
                [Event(START, seconds, app, None, None, "productive")],
            ),
            START,
        )


async def refused(
    db: Database, tenant: Tenant, code: ErrorCode, action: Callable[[Any], Awaitable[Any]]
) -> DomainError:
    """Run ``action`` in a write transaction; assert it fails with ``code`` and changed nothing."""
    before = await snapshot(db, tenant.account_id)
    with pytest.raises(DomainError) as info:
        async with db.write() as s:
            await action(s)
    assert info.value.code is code, info.value
    assert await snapshot(db, tenant.account_id) == before
    return info.value


# ---------------------------------------------------------------------------- approve


async def test_approve_licenses_every_given_pending_user(db: Database) -> None:
    tenant, ids = await queue_of(db, 3, licenses=1)
    async with db.write() as s:
        await actions.update_settings(s, admin(tenant.account_id), START, license_limit=3)
    async with db.write() as s:
        result = await actions.approve(s, admin(tenant.account_id, tenant.admin_id), ids[:2], LATER)
    assert [u.id for u in result.users] == ids[:2]
    assert (result.usage.licenses_used, result.usage.pending_count) == (3, 1)
    now = await users(db, tenant.account_id)
    assert all(
        now[i].status is UserStatus.LICENSED and now[i].licensed_at == LATER and now[i].pending_since is None
        for i in ids[:2]
    )
    approved = [e for e in await audit(db, tenant.account_id) if e.action is QueueAction.APPROVED]
    assert [(e.user_id, e.actor_id, e.queue_entered_at) for e in approved] == [
        (i, tenant.admin_id, START) for i in ids[:2]
    ]
    assert [(e.action, e.user_id) for e in result.events] == [(QueueAction.APPROVED, i) for i in ids[:2]]


async def test_approve_is_all_or_nothing_when_licenses_run_short(db: Database) -> None:
    tenant, ids = await queue_of(db, 3, licenses=1)
    async with db.write() as s:
        await actions.update_settings(s, admin(tenant.account_id), START, license_limit=3)
    err = await refused(
        db,
        tenant,
        ErrorCode.LICENSE_LIMIT_EXCEEDED,
        lambda s: actions.approve(s, admin(tenant.account_id), ids, LATER),
    )
    assert (err.details["available"], err.details["requested"]) == (2, 3)
    assert "2" in err.message and "3" in err.message


@pytest.mark.parametrize("case", ["missing", "foreign", "licensed", "empty", "too_many"])
async def test_approve_errors(db: Database, case: str) -> None:
    tenant, ids = await queue_of(db, 1, licenses=1)
    other, other_ids = await queue_of(db, 1, licenses=0, name="Other")
    licensed = [i for i, st in (await statuses(db, tenant.account_id)).items() if st is UserStatus.LICENSED]
    given, code = {
        "missing": ([ids[0], 999_999], ErrorCode.NOT_FOUND),
        "foreign": ([other_ids[0]], ErrorCode.NOT_FOUND),
        "licensed": ([licensed[0]], ErrorCode.NOT_PENDING),
        "empty": ([], ErrorCode.INVALID_INPUT),
        "too_many": (list(range(1, 502)), ErrorCode.INVALID_INPUT),
    }[case]
    await refused(db, tenant, code, lambda s: actions.approve(s, admin(tenant.account_id), given, LATER))
    assert (await statuses(db, other.account_id))[other_ids[0]] is UserStatus.PENDING


# ---------------------------------------------------------------------------- assign


async def test_assign_moves_agents_and_activity_and_consumes_no_license(db: Database) -> None:
    tenant, (pending,) = await queue_of(db, 1, licenses=1)
    target = next(i for i, st in (await statuses(db, tenant.account_id)).items() if st is UserStatus.LICENSED)
    await report(db, tenant.account_id, "PEND-0", "pending0", 120)
    async with db.write() as s:
        result = await actions.assign(s, admin(tenant.account_id, tenant.admin_id), pending, target, LATER)
    assert [u.id for u in result.users] == [target]
    assert (result.usage.licenses_used, result.usage.pending_count) == (1, 0)
    assert pending not in await users(db, tenant.account_id)
    assert {a.device_name for a in await agents_of(db, target)} == {"LIC-0", "PEND-0"}
    assert len(await events(db, user_id=target)) == 1
    (entry,) = [e for e in await audit(db, tenant.account_id) if e.action is QueueAction.ASSIGNED]
    assert (entry.user_id, entry.actor_id, entry.queue_entered_at) == (pending, tenant.admin_id, START)
    # A later report from the assigned agent lands on the target user.
    assert (await arrive(db, tenant.account_id, "PEND-0", "pending0")).user_id == target


async def test_assign_to_a_pending_user_is_allowed(db: Database) -> None:
    tenant, (a, b) = await queue_of(db, 2)
    async with db.write() as s:
        await actions.assign(s, admin(tenant.account_id), a, b, LATER)
    assert list(await statuses(db, tenant.account_id)) == [b]


@pytest.mark.parametrize(
    "case", ["self", "missing_target", "missing_pending", "not_pending", "foreign_target"]
)
async def test_assign_errors(db: Database, case: str) -> None:
    tenant, (pending,) = await queue_of(db, 1, licenses=1)
    _, (foreign,) = await queue_of(db, 1, name="Other")
    licensed = next(
        i for i, st in (await statuses(db, tenant.account_id)).items() if st is UserStatus.LICENSED
    )
    args, code = {
        "self": ((pending, pending), ErrorCode.CONFLICT),
        "missing_target": ((pending, 999_999), ErrorCode.NOT_FOUND),
        "missing_pending": ((999_999, licensed), ErrorCode.NOT_FOUND),
        "not_pending": ((licensed, pending), ErrorCode.NOT_PENDING),
        "foreign_target": ((pending, foreign), ErrorCode.NOT_FOUND),
    }[case]
    err = await refused(db, tenant, code, lambda s: actions.assign(s, admin(tenant.account_id), *args, LATER))
    assert err.field in {"pendingUserId", "targetUserId"}


# ---------------------------------------------------------------------------- merge


async def test_merge_rekeys_activity_and_leaves_an_alias(db: Database) -> None:
    tenant, (pending,) = await queue_of(db, 1, licenses=1)
    (target_agent,) = await agents_of(db, next(iter(await statuses(db, tenant.account_id))))
    await report(db, tenant.account_id, "PEND-0", "pending0", 300)
    async with db.write() as s:
        result = await actions.merge(
            s, admin(tenant.account_id, tenant.admin_id), pending, target_agent.id or 0, LATER
        )
    assert result.agent is not None and result.agent.id == target_agent.id
    assert pending not in await users(db, tenant.account_id)
    assert len(await events(db, agent_id=target_agent.id)) == 1
    async with db.read() as s:
        alias = (await s.execute(sa.select(AgentAlias))).scalar_one()
    assert (alias.agent_id, alias.device_name, alias.logon_name) == (target_agent.id, "PEND-0", "pending0")
    assert (await arrive(db, tenant.account_id, "pend-0", "PENDING0")).agent_id == target_agent.id
    (entry,) = [e for e in await audit(db, tenant.account_id) if e.action is QueueAction.MERGED]
    assert entry.user_id == pending and "PEND-0" in entry.detail


@pytest.mark.parametrize("case", ["own_agent", "missing_agent", "foreign_agent", "not_pending"])
async def test_merge_errors(db: Database, case: str) -> None:
    tenant, (pending,) = await queue_of(db, 1, licenses=1)
    _other, (foreign,) = await queue_of(db, 1, name="Other")
    licensed = next(
        i for i, st in (await statuses(db, tenant.account_id)).items() if st is UserStatus.LICENSED
    )
    own = (await agents_of(db, pending))[0].id
    licensed_agent = (await agents_of(db, licensed))[0].id
    foreign_agent = (await agents_of(db, foreign))[0].id
    args, code = {
        "own_agent": ((pending, own), ErrorCode.CONFLICT),
        "missing_agent": ((pending, 999_999), ErrorCode.NOT_FOUND),
        "foreign_agent": ((pending, foreign_agent), ErrorCode.NOT_FOUND),
        "not_pending": ((licensed, own), ErrorCode.NOT_PENDING),
    }[case]
    await refused(db, tenant, code, lambda s: actions.merge(s, admin(tenant.account_id), *args, LATER))
    assert licensed_agent is not None


# ---------------------------------------------------------------------------- remove


async def test_remove_frees_licenses_deletes_everything_and_can_block_keys(db: Database) -> None:
    tenant, (pending,) = await queue_of(db, 1, licenses=1)
    licensed = next(
        i for i, st in (await statuses(db, tenant.account_id)).items() if st is UserStatus.LICENSED
    )
    await report(db, tenant.account_id, "LIC-0", "licensed0", 60)
    async with db.write() as s:
        result = await actions.remove(
            s, admin(tenant.account_id, tenant.admin_id), [licensed, pending], True, LATER
        )
    assert result.removed_user_ids == [licensed, pending]
    assert (result.usage.licenses_used, result.usage.pending_count) == (0, 0)
    assert await users(db, tenant.account_id) == {}
    assert len(await events(db)) == 0
    assert await count(db, DoNotTrack, DoNotTrack.account_id == tenant.account_id) == 2
    removed = [e for e in await audit(db, tenant.account_id) if e.action is QueueAction.REMOVED]
    assert [(e.user_id, e.queue_entered_at) for e in removed] == [(licensed, None), (pending, START)]
    assert (await arrive(db, tenant.account_id, "LIC-0", "licensed0")).status == "IGNORED"


async def test_remove_without_do_not_track_lets_the_key_come_back_as_new(db: Database) -> None:
    tenant, (pending,) = await queue_of(db, 1, licenses=0)
    async with db.write() as s:
        await actions.remove(s, admin(tenant.account_id), [pending], False, LATER)
    back = await arrive(db, tenant.account_id, "PEND-0", "pending0")
    assert back.status == "PENDING" and back.user_id != pending


async def test_remove_puts_aliases_on_the_do_not_track_list_too(db: Database) -> None:
    tenant, (pending,) = await queue_of(db, 1, licenses=1)
    licensed = next(
        i for i, st in (await statuses(db, tenant.account_id)).items() if st is UserStatus.LICENSED
    )
    target = (await agents_of(db, licensed))[0].id or 0
    async with db.write() as s:
        await actions.merge(s, admin(tenant.account_id), pending, target, LATER)
    async with db.write() as s:
        await actions.remove(s, admin(tenant.account_id), [licensed], True, LATER)
    assert (await arrive(db, tenant.account_id, "PEND-0", "pending0")).status == "IGNORED"
    assert (await arrive(db, tenant.account_id, "LIC-0", "licensed0")).status == "IGNORED"


async def test_remove_is_all_or_nothing(db: Database) -> None:
    tenant, ids = await queue_of(db, 2)
    await refused(
        db,
        tenant,
        ErrorCode.NOT_FOUND,
        lambda s: actions.remove(s, admin(tenant.account_id), [*ids, 424242], True, LATER),
    )


# ---------------------------------------------------------------------------- settings


async def test_lowering_the_limit_queues_the_most_recently_licensed(db: Database) -> None:
    tenant = await make_tenant(db, licenses=4)
    ids = []
    for i in range(4):
        ids.append(
            (await arrive(db, tenant.account_id, f"PC-{i}", f"u{i}", now=START.replace(minute=i))).user_id
        )
    async with db.write() as s:
        result = await actions.update_settings(
            s, admin(tenant.account_id, tenant.admin_id), LATER, license_limit=2
        )
    assert [e.user_id for e in result.events] == [ids[3], ids[2]]
    assert all(e.action is QueueAction.ENTERED and e.actor_id is None for e in result.events)
    now = await users(db, tenant.account_id)
    assert [now[i].status for i in ids] == [UserStatus.LICENSED] * 2 + [UserStatus.PENDING] * 2
    assert {now[i].pending_reason for i in ids[2:]} == {PendingReason.OVER_LIMIT}
    entered = [e for e in await audit(db, tenant.account_id) if e.action is QueueAction.ENTERED]
    assert [e.actor_id for e in entered] == [None, None] and "from 4 to 2" in entered[0].detail


async def test_raising_the_limit_or_ending_manual_review_approves_nobody(db: Database) -> None:
    tenant, _ids = await queue_of(db, 2, licenses=0, manual_review=True)
    async with db.write() as s:
        result = await actions.update_settings(
            s, admin(tenant.account_id), LATER, license_limit=10, manual_review=False
        )
    assert (
        result.events == [] and result.account.manual_review is False and result.account.license_limit == 10
    )
    assert set((await statuses(db, tenant.account_id)).values()) == {UserStatus.PENDING}
    # ... but a new arrival now gets a free license.
    assert (await arrive(db, tenant.account_id, "NEW", "newbie")).status == "LICENSED"


async def test_a_negative_limit_is_refused(db: Database) -> None:
    tenant, _ = await queue_of(db, 1)
    err = await refused(
        db,
        tenant,
        ErrorCode.INVALID_INPUT,
        lambda s: actions.update_settings(s, admin(tenant.account_id), LATER, license_limit=-1),
    )
    assert err.field == "licenseLimit"


# ---------------------------------------------------------------------------- roles, events


@pytest.mark.parametrize("action", ["approve", "assign", "merge", "remove", "settings"])
async def test_a_viewer_may_not_act(db: Database, action: str) -> None:
    tenant, (a, b) = await queue_of(db, 2)
    viewer = Actor(tenant.account_id, tenant.viewer_id, Role.VIEWER)
    agent = (await agents_of(db, b))[0].id or 0
    call = {
        "approve": lambda s: actions.approve(s, viewer, [a], LATER),
        "assign": lambda s: actions.assign(s, viewer, a, b, LATER),
        "merge": lambda s: actions.merge(s, viewer, a, agent, LATER),
        "remove": lambda s: actions.remove(s, viewer, [a], True, LATER),
        "settings": lambda s: actions.update_settings(s, viewer, LATER, manual_review=True),
    }[action]
    before = await snapshot(db, tenant.account_id)
    with pytest.raises(PermissionDenied):
        async with db.write() as s:
            await call(s)
    assert await snapshot(db, tenant.account_id) == before


async def test_events_are_published_after_commit_and_never_for_a_refusal(db: Database) -> None:
    tenant, ids = await queue_of(db, 2)
    sub = db.broadcaster.subscribe(tenant.account_id)
    with pytest.raises(DomainError):
        async with db.write() as s:
            await actions.approve(s, admin(tenant.account_id), ids, LATER)
    assert sub._queue.empty()
    with pytest.raises(RuntimeError):
        async with db.write() as s:
            await actions.remove(s, admin(tenant.account_id), ids, False, LATER)
            raise RuntimeError("crash before commit")
    assert sub._queue.empty() and len(await statuses(db, tenant.account_id)) == 2
    async with db.write() as s:
        await actions.remove(s, admin(tenant.account_id), ids, False, LATER)
    got = [sub._queue.get_nowait() for _ in ids]
    assert [(e.action, e.user_id) for e in got] == [(QueueAction.REMOVED, i) for i in ids]  # type: ignore[union-attr]
    sub.close()


async def test_settings_changes_are_recorded_with_who_and_what(db: Database) -> None:
    import sqlalchemy as sa

    from server.domain.settings_history import SettingsChange

    tenant, _ = await queue_of(db, 0, licenses=3)
    async with db.write() as s:
        await actions.update_settings(
            s, admin(tenant.account_id, tenant.admin_id), LATER, license_limit=1, manual_review=True
        )
    async with db.write() as s:
        await actions.update_settings(
            s, admin(tenant.account_id, tenant.admin_id), LATER, license_limit=1
        )  # no change
    async with db.write() as s:
        await actions.update_settings(s, Actor.system(tenant.account_id), LATER, license_limit=5)  # the CLI
    async with db.read() as s:
        rows = list((await s.execute(sa.select(SettingsChange).order_by(SettingsChange.id))).scalars())
    assert [
        (
            r.actor_id,
            r.manual_review_before,
            r.manual_review_after,
            r.license_limit_before,
            r.license_limit_after,
            r.moved_to_pending,
            r.at,
        )
        for r in rows
    ] == [
        (tenant.admin_id, False, True, 3, 1, 2, LATER),
        (None, True, True, 1, 5, 0, LATER),
    ]
