"""docs/behaviour.md, Admission: where a reported agent goes."""

from __future__ import annotations

import sqlalchemy as sa

from server.domain import actions
from server.domain.events import QueueEvent
from server.domain.models import (
    AgentAlias,
    DoNotTrack,
    PendingReason,
    QueueAction,
    QueueArrival,
    User,
    UserStatus,
)
from server.infra.db import Database
from tests.server.domain import admin, agents_of, arrive, audit, count, users
from tests.support import START, Tenant, make_tenant


async def test_known_key_resolves_to_its_agent_case_insensitively(db: Database, tenant: Tenant) -> None:
    first = await arrive(db, tenant.account_id, "LAPTOP-7", "jdoe")
    again = await arrive(db, tenant.account_id, "laptop-7", "JDOE", domain="acme")
    assert (again.agent_id, again.user_id) == (first.agent_id, first.user_id)
    assert await count(db, User, User.account_id == tenant.account_id) == 1


async def test_new_users_are_licensed_until_the_limit_then_pending_over_limit(
    db: Database, tenant: Tenant
) -> None:
    results = [await arrive(db, tenant.account_id, f"PC-{i}", f"user{i}") for i in range(5)]
    assert [r.status for r in results] == ["LICENSED"] * 3 + ["PENDING"] * 2
    pending = [u for u in (await users(db, tenant.account_id)).values() if u.status is UserStatus.PENDING]
    assert {u.pending_reason for u in pending} == {PendingReason.OVER_LIMIT}
    assert all(u.pending_since == START and u.licensed_at is None for u in pending)


async def test_manual_review_queues_even_with_free_licenses(db: Database) -> None:
    tenant = await make_tenant(db, licenses=10, manual_review=True)
    result = await arrive(db, tenant.account_id, "PC-1", "ann")
    assert result.status == "PENDING" and result.entered_queue
    (user,) = (await users(db, tenant.account_id)).values()
    assert user.pending_reason is PendingReason.MANUAL_REVIEW


async def test_same_domain_login_on_a_new_device_joins_the_same_user_without_a_queue_entry(
    db: Database, tenant: Tenant
) -> None:
    first = await arrive(db, tenant.account_id, "LAPTOP-1", "jdoe")
    second = await arrive(db, tenant.account_id, "DESKTOP-9", "JDoe", domain="acme")
    assert second.user_id == first.user_id and second.agent_id != first.agent_id
    assert second.status == "LICENSED" and not second.entered_queue
    assert len(await agents_of(db, first.user_id or 0)) == 2
    assert await count(db, QueueArrival, QueueArrival.account_id == tenant.account_id) == 0


async def test_same_login_joins_a_pending_user_and_stays_pending(db: Database) -> None:
    tenant = await make_tenant(db, licenses=0)
    first = await arrive(db, tenant.account_id, "LAPTOP-1", "jdoe")
    second = await arrive(db, tenant.account_id, "LAPTOP-2", "jdoe")
    assert second.user_id == first.user_id and second.status == "PENDING" and not second.entered_queue
    assert len([e for e in await audit(db, tenant.account_id) if e.action is QueueAction.ENTERED]) == 1


async def test_a_local_account_never_matches_by_login(db: Database, tenant: Tenant) -> None:
    # A local account's domain is its device name; "admin" on two machines is two people.
    a = await arrive(db, tenant.account_id, "PC-1", "admin", domain="PC-1")
    b = await arrive(db, tenant.account_id, "PC-2", "admin", domain="PC-2")
    assert a.user_id != b.user_id


async def test_do_not_track_keys_are_ignored_and_nothing_is_stored(db: Database, tenant: Tenant) -> None:
    victim = await arrive(db, tenant.account_id, "KIOSK-1", "guest")
    async with db.write() as s:
        await actions.remove(s, admin(tenant.account_id, tenant.admin_id), [victim.user_id or 0], True, START)
    before = await count(db, User, User.account_id == tenant.account_id)
    again = await arrive(db, tenant.account_id, "kiosk-1", "GUEST")
    assert (again.status, again.agent_id, again.user_id) == ("IGNORED", None, None)
    assert await count(db, User, User.account_id == tenant.account_id) == before
    assert await count(db, DoNotTrack, DoNotTrack.account_id == tenant.account_id) == 1


async def test_entering_the_queue_writes_audit_arrival_and_event(db: Database) -> None:
    tenant = await make_tenant(db, licenses=0)
    sub = db.broadcaster.subscribe(tenant.account_id)
    result = await arrive(db, tenant.account_id, "PC-1", "ann", name="Ann Lee")
    (entry,) = await audit(db, tenant.account_id)
    assert (entry.action, entry.actor_id, entry.user_id, entry.user_display_name) == (
        QueueAction.ENTERED,
        None,
        result.user_id,
        "Ann Lee",
    )
    async with db.read() as s:
        arrival = (await s.execute(sa.select(QueueArrival))).scalar_one()
    assert (arrival.user_id, arrival.device_name, arrival.reason) == (
        result.user_id,
        "PC-1",
        PendingReason.OVER_LIMIT,
    )
    event: QueueEvent = sub._queue.get_nowait()  # type: ignore[assignment]
    assert (event.action, event.user_id, event.actor_id) == (QueueAction.ENTERED, result.user_id, None)
    assert (event.usage.licenses_used, event.usage.pending_count, event.usage.license_limit) == (0, 1, 0)
    sub.close()


async def test_alias_left_by_a_merge_resolves_to_the_target_agent(db: Database) -> None:
    tenant = await make_tenant(db, licenses=1)
    kept = await arrive(db, tenant.account_id, "LAPTOP-7", "jdoe")
    renamed = await arrive(db, tenant.account_id, "LAPTOP-7B", "jdoe2")
    async with db.write() as s:
        await actions.merge(
            s, admin(tenant.account_id, tenant.admin_id), renamed.user_id or 0, kept.agent_id or 0, START
        )
    later = await arrive(db, tenant.account_id, "laptop-7b", "JDOE2")
    assert (later.agent_id, later.user_id, later.status) == (kept.agent_id, kept.user_id, "LICENSED")
    assert await count(db, AgentAlias, AgentAlias.account_id == tenant.account_id) == 1


async def test_accounts_are_isolated(db: Database) -> None:
    one = await make_tenant(db, name="One", licenses=1)
    two = await make_tenant(db, name="Two", licenses=1)
    a = await arrive(db, one.account_id, "PC-1", "jdoe")
    b = await arrive(db, two.account_id, "PC-1", "jdoe")
    assert a.user_id != b.user_id and a.status == b.status == "LICENSED"


async def test_a_group_of_batches_is_decided_as_if_they_came_one_by_one(db: Database) -> None:
    """Group commit stores concurrent batches together; each is still decided in order."""
    from server.domain.activity import ingestion
    from server.domain.activity.batch import Batch
    from server.domain.admission import AgentReport

    tenant = await make_tenant(db, licenses=1)
    dnt = await arrive(db, tenant.account_id, "KIOSK", "guest")
    async with db.write() as s:
        await actions.remove(s, admin(tenant.account_id), [dnt.user_id or 0], True, START)

    def b(batch_id: str, device: str, logon: str, domain: str = "ACME") -> tuple[int, Batch]:
        return tenant.account_id, Batch(batch_id, AgentReport(device, domain, logon, logon), [])

    async with db.write() as s:
        results = await ingestion.ingest_many(
            s,
            [
                b("1", "PC-1", "jdoe"),  # new user, takes the only license
                b("2", "PC-2", "jdoe"),  # same domain login: same user, licensed
                b("3", "pc-1", "JDOE"),  # same key, another batch: same agent
                b("1", "PC-1", "jdoe"),  # same batch again: a duplicate
                b("4", "PC-3", "ann"),  # no license left: pending
                b("5", "PC-4", "ann"),  # joins the pending user made just before
                b("6", "kiosk", "GUEST"),  # do-not-track
                b("7", "PC-5", "root", "PC-5"),  # a local account: new pending user
                b("6", "kiosk", "GUEST"),  # the ignored batch again: ignored again
            ],
            START,
        )
    r = {i: x for i, x in enumerate(results)}
    assert (r[0].status, r[1].status, r[2].status) == ("LICENSED",) * 3
    assert r[1].user_id == r[0].user_id and r[1].agent_id != r[0].agent_id
    assert r[2].agent_id == r[0].agent_id and not r[2].duplicate
    assert r[3].duplicate and r[3].agent_id == r[0].agent_id
    assert r[4].status == "PENDING" and r[5].user_id == r[4].user_id and r[5].status == "PENDING"
    assert r[6].status == "IGNORED" and r[6].user_id is None
    assert r[7].status == "PENDING" and r[7].user_id not in (r[0].user_id, r[4].user_id)
    assert r[8].status == "IGNORED" and not r[8].duplicate
    entered = [e.user_id for e in await audit(db, tenant.account_id) if e.action is QueueAction.ENTERED]
    assert entered == [r[4].user_id, r[7].user_id]
    assert len(await agents_of(db, r[4].user_id or 0)) == 2
