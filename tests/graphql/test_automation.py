"""Automation (docs/behaviour.md, Automation and reclaim): the auto-approval rule, releasing and
swapping licenses, idle users, and the queue target, through the API on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from server.domain import actions
from server.domain.models import QueueAction
from server.infra.db import Database
from tests.graphql.helpers import Gql
from tests.graphql.test_seat_plans import ingest
from tests.graphql.test_user_activity import report
from tests.server.domain import admin, arrive, audit, snapshot
from tests.support import START, FakeClock, Tenant, make_tenant

SETTINGS = """mutation($m: Boolean, $l: Int, $a: AutoApproveMode, $d: [String!], $t: Int, $v: String) {
  updateAccountSettings(input: {manualReview: $m, licenseLimit: $l, autoApprove: $a, autoApproveDomains: $d,
                                queueTargetHours: $t, expectedQueueVersion: $v}) {
    account { licenseLimit licensesUsed pendingCount autoApprove autoApproveDomains queueTargetHours queueVersion }
    errors { code message field } } }"""
PREVIEW = """query($l: Int, $a: AutoApproveMode, $d: [String!]) {
  previewAccountSettings(input: {licenseLimit: $l, autoApprove: $a, autoApproveDomains: $d}) {
    approve { id } moveToPending { id } licensesUsedBefore licensesUsedAfter queueVersion errors { code } } }"""
RELEASE = """mutation($ids: [ID!]!) { releaseLicenses(input: {userIds: $ids}) {
  released { id status pending { reason enteredAt } } account { licensesUsed pendingCount }
  errors { code message field } } }"""
SWAP = """mutation($r: ID!, $a: ID!) { swapLicense(input: {releaseUserId: $r, approveUserId: $a}) {
  released { id status pending { reason } } approved { id status } account { licensesUsed licenseLimit }
  errors { code message field } } }"""
REMOVE = "mutation($ids: [ID!]!) { removeUsers(input: {userIds: $ids}) { errors { code } } }"
INACTIVE = """query($days: Int!, $first: Int!, $after: String) { inactiveUsers(days: $days, first: $first, after: $after) {
  totalCount pageInfo { hasNextPage endCursor } edges { node { id displayName status } } } }"""
STATUS = "query($id: ID!) { user(id: $id) { id status pending { reason dueAt overdue } } }"


async def settings(gql: Gql, tenant: Tenant, **variables: Any) -> dict[str, Any]:
    found: dict[str, Any] = (await gql(tenant.admin_token, SETTINGS, **variables)).ok()[
        "updateAccountSettings"
    ]
    return found


async def status(gql: Gql, tenant: Tenant, user_id: Any) -> dict[str, Any]:
    found: dict[str, Any] = (await gql(tenant.admin_token, STATUS, id=str(user_id))).ok()["user"]
    return found


async def queue_of(db: Database, tenant: Tenant, *who: tuple[str, str], minutes: int = 0) -> list[int]:
    """Each (device, domain) arrives one minute after the previous; their user ids."""
    ids = []
    for i, (device, domain) in enumerate(who):
        found = await arrive(
            db,
            tenant.account_id,
            device,
            f"user{minutes + i}",
            domain=domain,
            now=START + timedelta(minutes=minutes + i),
        )
        assert found.user_id is not None
        ids.append(found.user_id)
    return ids


async def test_a_raised_limit_approves_the_oldest_eligible_in_the_same_write_as_previewed(
    gql: Gql, db: Database, tenant: Tenant
) -> None:
    licensed = await queue_of(db, tenant, ("L1", "ACME"), ("L2", "ACME"), ("L3", "ACME"))
    over = await queue_of(
        db, tenant, ("P1", "ACME"), ("P2", "acme"), ("P3", "OTHER"), ("P4", "ACME"), minutes=10
    )
    await settings(gql, tenant, m=True)
    manual = await queue_of(db, tenant, ("M1", "ACME"), minutes=20)
    await settings(gql, tenant, m=False)
    # A manual-review user is older than P4 once P4 is re-entered later; it never goes first.
    assert (await status(gql, tenant, manual[0]))["pending"]["reason"] == "MANUAL_REVIEW"

    on = await settings(gql, tenant, a="OLDEST_FIRST", d=["Acme", "acme", " ACME "])
    assert on["errors"] == [] and on["account"]["autoApproveDomains"] == ["acme"]
    assert on["account"]["licensesUsed"] == 3, "no license was free: nobody approved yet"

    plan = (await gql(tenant.admin_token, PREVIEW, l=6)).ok()["previewAccountSettings"]
    # OTHER is not in the list; case does not matter; oldest entry first.
    assert [u["id"] for u in plan["approve"]] == [str(over[0]), str(over[1]), str(over[3])]
    assert (plan["licensesUsedBefore"], plan["licensesUsedAfter"]) == (3, 6)

    raised = await settings(gql, tenant, l=6, v=plan["queueVersion"])
    assert raised["errors"] == [] and raised["account"]["licensesUsed"] == 6
    for uid, want in [
        (over[0], "LICENSED"),
        (over[1], "LICENSED"),
        (over[3], "LICENSED"),
        (over[2], "PENDING"),
    ]:
        assert (await status(gql, tenant, uid))["status"] == want
    assert (await status(gql, tenant, manual[0]))["status"] == "PENDING"
    entries = [e for e in await audit(db, tenant.account_id) if e.action is QueueAction.APPROVED]
    assert [(e.user_id, e.actor_id) for e in entries] == [(over[0], None), (over[1], None), (over[3], None)]
    assert all(e.detail == "approved by the auto-approval rule (was OVER_LIMIT)" for e in entries)
    assert licensed


async def test_switching_the_rule_on_or_freeing_a_license_fills_free_licenses(
    gql: Gql, db: Database, tenant: Tenant
) -> None:
    licensed = await queue_of(db, tenant, ("L1", "ACME"), ("L2", "ACME"), ("L3", "ACME"))
    over = await queue_of(db, tenant, ("P1", "P1"), ("P2", "ACME"), minutes=10)
    await settings(gql, tenant, l=4)  # rule off: the free license stays free
    assert (await status(gql, tenant, over[0]))["status"] == "PENDING"
    # A local account's domain is its device name.
    on = await settings(gql, tenant, a="OLDEST_FIRST", d=["p1"])
    assert on["account"]["licensesUsed"] == 4
    assert (await status(gql, tenant, over[0]))["status"] == "LICENSED"
    assert (await status(gql, tenant, over[1]))["status"] == "PENDING"

    await settings(gql, tenant, d=[])  # every domain
    assert (await gql(tenant.admin_token, REMOVE, ids=[str(licensed[0])])).ok()["removeUsers"]["errors"] == []
    assert (await status(gql, tenant, over[1]))["status"] == "LICENSED"


async def test_bad_rule_settings_are_refused_and_change_nothing(
    gql: Gql, db: Database, tenant: Tenant
) -> None:
    before = await snapshot(db, tenant.account_id)
    for variables, field in [
        ({"d": ["ok", "bad domain"]}, "autoApproveDomains"),
        ({"d": ["x/y"]}, "autoApproveDomains"),
        ({"d": [f"d{i}" for i in range(101)]}, "autoApproveDomains"),
        ({"t": 8761}, "queueTargetHours"),
        ({"t": -1}, "queueTargetHours"),
    ]:
        answer = await settings(gql, tenant, a="OLDEST_FIRST", **variables)
        assert [(e["code"], e["field"]) for e in answer["errors"]] == [("INVALID_INPUT", field)], variables
        assert answer["account"]["autoApprove"] == "OFF"
    assert await snapshot(db, tenant.account_id) == before
    target = await settings(gql, tenant, t=24)
    assert target["account"]["queueTargetHours"] == 24
    assert (await settings(gql, tenant, t=0))["account"]["queueTargetHours"] is None


async def test_release_is_all_or_nothing_and_a_released_user_stays_queued(
    gql: Gql, db: Database, tenant: Tenant, clock: FakeClock
) -> None:
    licensed = await queue_of(db, tenant, ("L1", "ACME"), ("L2", "ACME"), ("L3", "ACME"))
    (pending,) = await queue_of(db, tenant, ("P1", "ACME"), minutes=10)
    before = await snapshot(db, tenant.account_id)
    for ids, code in [
        ([licensed[0], pending], "CONFLICT"),
        ([licensed[0], 424242], "NOT_FOUND"),
        ([], "INVALID_INPUT"),
    ]:
        refused = (await gql(tenant.admin_token, RELEASE, ids=[str(i) for i in ids])).ok()["releaseLicenses"]
        assert [e["code"] for e in refused["errors"]] == [code] and refused["released"] == []
        assert await snapshot(db, tenant.account_id) == before
    viewer = await gql(tenant.viewer_token, RELEASE, ids=[str(licensed[0])])
    assert viewer.codes == ["FORBIDDEN"] and await snapshot(db, tenant.account_id) == before

    done = (await gql(tenant.admin_token, RELEASE, ids=[str(licensed[1]), str(licensed[0])])).ok()[
        "releaseLicenses"
    ]
    assert done["errors"] == []
    assert [u["id"] for u in done["released"]] == [str(licensed[1]), str(licensed[0])]
    assert all(u["status"] == "PENDING" and u["pending"]["reason"] == "RELEASED" for u in done["released"])
    assert done["account"] == {"licensesUsed": 1, "pendingCount": 3}
    entries = [e for e in await audit(db, tenant.account_id) if e.action is QueueAction.RELEASED]
    assert sorted(e.user_id for e in entries) == sorted(licensed[:2]) and all(e.actor_id for e in entries)

    # Reporting again keeps them in the queue, with their reason.
    again = await arrive(db, tenant.account_id, "L1", "user0", now=START + timedelta(hours=1))
    assert again.status == "PENDING" and again.user_id == licensed[0]
    assert (await status(gql, tenant, licensed[0]))["pending"]["reason"] == "RELEASED"


async def test_the_rule_fills_released_licenses_with_others_never_the_released(
    gql: Gql, db: Database, tenant: Tenant
) -> None:
    licensed = await queue_of(db, tenant, ("L1", "ACME"), ("L2", "ACME"), ("L3", "ACME"))
    (waiting,) = await queue_of(db, tenant, ("P1", "ACME"), minutes=10)
    await settings(gql, tenant, a="OLDEST_FIRST")
    done = (await gql(tenant.admin_token, RELEASE, ids=[str(licensed[0]), str(licensed[1])])).ok()[
        "releaseLicenses"
    ]
    assert done["account"] == {"licensesUsed": 2, "pendingCount": 2}
    assert (await status(gql, tenant, waiting))["status"] == "LICENSED"
    assert (await status(gql, tenant, licensed[0]))["status"] == "PENDING"
    # Their licenses stay free for now; the next write that frees one fills both: released
    # users are eligible like any over-limit user.
    await gql(tenant.admin_token, REMOVE, ids=[str(licensed[2])])
    for uid in licensed[:2]:
        assert (await status(gql, tenant, uid))["status"] == "LICENSED"


async def test_swap_refusals_change_nothing_and_a_swap_keeps_the_count(
    gql: Gql, db: Database, tenant: Tenant
) -> None:
    licensed = await queue_of(db, tenant, ("L1", "ACME"), ("L2", "ACME"), ("L3", "ACME"))
    pending = await queue_of(db, tenant, ("P1", "ACME"), ("P2", "ACME"), minutes=10)
    before = await snapshot(db, tenant.account_id)
    for r, a, code, field in [
        (licensed[0], licensed[0], "CONFLICT", "approveUserId"),
        (pending[0], pending[1], "CONFLICT", "releaseUserId"),
        (licensed[0], licensed[1], "NOT_PENDING", "approveUserId"),
        (licensed[0], 424242, "NOT_FOUND", "approveUserId"),
        ("bad", pending[0], "NOT_FOUND", "releaseUserId"),
    ]:
        refused = (await gql(tenant.admin_token, SWAP, r=str(r), a=str(a))).ok()["swapLicense"]
        assert [(e["code"], e["field"]) for e in refused["errors"]] == [(code, field)], (r, a)
        assert refused["released"] is None and refused["approved"] is None
        assert await snapshot(db, tenant.account_id) == before
    done = (await gql(tenant.admin_token, SWAP, r=str(licensed[1]), a=str(pending[1]))).ok()["swapLicense"]
    assert done["errors"] == []
    assert done["released"] == {
        "id": str(licensed[1]),
        "status": "PENDING",
        "pending": {"reason": "RELEASED"},
    }
    assert done["approved"] == {"id": str(pending[1]), "status": "LICENSED"}
    assert done["account"] == {"licensesUsed": 3, "licenseLimit": 3}


async def test_concurrent_swaps_and_arrivals_never_exceed_the_limit_or_lose_a_seat(
    gql: Gql, db: Database, tenant: Tenant
) -> None:
    licensed = await queue_of(db, tenant, ("L1", "ACME"), ("L2", "ACME"), ("L3", "ACME"))
    pending = await queue_of(db, tenant, *((f"P{i}", "ACME") for i in range(6)), minutes=10)
    answers = await asyncio.gather(
        *(gql(tenant.admin_token, SWAP, r=str(licensed[i % 3]), a=str(pending[i])) for i in range(6)),
        *(arrive(db, tenant.account_id, f"NEW{i}", f"new{i}") for i in range(6)),
    )
    swaps = [a.ok()["swapLicense"] for a in answers[:6]]
    # Each licensed user can be released once: three swaps land, three find it released.
    assert sorted(len(s["errors"]) for s in swaps) == [0, 0, 0, 1, 1, 1]
    assert all(s["errors"][0]["code"] == "CONFLICT" for s in swaps if s["errors"])
    account = (await gql(tenant.admin_token, "{ account { licensesUsed pendingCount } }")).ok()["account"]
    assert account == {"licensesUsed": 3, "pendingCount": 12}


async def test_inactive_users_idle_longest_first_never_active_first_of_all(
    gql: Gql, db: Database, tenant: Tenant, clock: FakeClock
) -> None:
    await settings(gql, tenant, l=10)
    users = await queue_of(db, tenant, *((f"L{i}", "ACME") for i in range(5)))
    # Activity (START + 5 min + i days ago, by the clock below) for three of them.
    clock.now = START + timedelta(days=40)
    for i, device in [(1, "L1"), (2, "L2"), (4, "L4")]:
        await ingest(db, tenant, device, f"user{i}", seconds=60 + i)
    q = await gql(tenant.admin_token, INACTIVE, days=14, first=2)
    page = q.ok()["inactiveUsers"]
    # Never active (L0, L3) first, by id; then the active ones, least recent first.
    assert page["totalCount"] == 5
    assert [e["node"]["id"] for e in page["edges"]] == [str(users[0]), str(users[3])]
    rest = (
        await gql(tenant.admin_token, INACTIVE, days=14, first=5, after=page["pageInfo"]["endCursor"])
    ).ok()
    assert [e["node"]["id"] for e in rest["inactiveUsers"]["edges"]] == [str(users[i]) for i in (1, 2, 4)]
    # Only idle ones: with a 60-day window the active three are not idle.
    wide = (await gql(tenant.admin_token, INACTIVE, days=60, first=50)).ok()["inactiveUsers"]
    assert [e["node"]["id"] for e in wide["edges"]] == [str(users[0]), str(users[3])]
    for days in (0, 366):
        assert (await gql(tenant.admin_token, INACTIVE, days=days, first=5)).codes == ["BAD_USER_INPUT"]


async def test_the_queue_target_marks_overdue_users_and_measures_resolutions(
    gql: Gql, db: Database, tenant: Tenant, clock: FakeClock
) -> None:
    await queue_of(db, tenant, ("L1", "ACME"), ("L2", "ACME"), ("L3", "ACME"))
    pending = await queue_of(db, tenant, *((f"P{i}", "ACME") for i in range(4)), minutes=10)
    assert (await status(gql, tenant, pending[0]))["pending"] == {
        "reason": "OVER_LIMIT",
        "dueAt": None,
        "overdue": False,
    }
    await settings(gql, tenant, t=2, l=6)
    clock.now = START + timedelta(minutes=11, hours=2)
    first = await status(gql, tenant, pending[0])
    assert first["pending"]["dueAt"] == (START + timedelta(minutes=10, hours=2)).isoformat()
    assert first["pending"]["overdue"] is True
    assert (await status(gql, tenant, pending[3]))["pending"]["overdue"] is False
    # Resolve two (one within the target, as the clock says at the write) and look at the metrics.
    approve = "mutation($ids: [ID!]!) { approvePendingUsers(input: {userIds: $ids}) { errors { code } } }"
    async with db.write() as s:
        await actions.approve(s, admin(tenant.account_id), [pending[1]], START + timedelta(minutes=71))
    assert (await gql(tenant.admin_token, approve, ids=[str(pending[0])])).ok()["approvePendingUsers"][
        "errors"
    ] == []
    clock.now = START + timedelta(minutes=12, hours=2)  # P2 is due now
    metrics = (
        await gql(
            tenant.admin_token,
            "{ queueMetrics { resolvedCount p90ResolutionSeconds overdueCount withinTargetRatio } }",
        )
    ).ok()["queueMetrics"]
    assert metrics == {
        "resolvedCount": 2,
        "p90ResolutionSeconds": 7260.0,  # nearest rank (ceil(0.9 * 2) = 2nd) of [3600, 7260]
        "overdueCount": 1,  # P2; P3 entered a minute later
        "withinTargetRatio": 0.5,  # 3600 s within the 2 h target, 7260 s not
    }


async def test_a_settings_write_that_lets_the_rule_license_someone_moves_the_queue_version(
    gql: Gql, db: Database, tenant: Tenant
) -> None:
    licensed = await queue_of(db, tenant, ("L1", "ACME"), ("L2", "ACME"))
    await settings(gql, tenant, a="OLDEST_FIRST")
    (await gql(tenant.admin_token, RELEASE, ids=[str(licensed[0])])).ok()
    # The released user waits (the release excluded it); a free license stays free.
    version = (await gql(tenant.admin_token, "{ account { queueVersion } }")).ok()["account"]["queueVersion"]
    # Settings unchanged (still 3), but the write lets the rule fill the free license: who is
    # licensed changed, so a plan made before must not apply.
    after = (await settings(gql, tenant, l=3))["account"]
    assert (await status(gql, tenant, licensed[0]))["status"] == "LICENSED"
    assert after["licensesUsed"] == 2 and after["queueVersion"] != version


async def test_inactive_users_whose_latest_activity_fell_on_different_days(
    gql: Gql, db: Database, clock: FakeClock
) -> None:
    # Each user's latest start is read from its own latest day of activity, not the account's.
    t = await make_tenant(db, licenses=5)
    now = clock.now
    ids = [
        await report(
            db,
            t,
            logon,
            now,
            *((now - timedelta(days=d, hours=h), 60, "excel.exe", "neutral") for d, h in days),
        )
        for logon, days in (
            ("older", [(30, 0), (31, 2)]),
            ("newer", [(20, 5)]),
            ("newest", [(16, 1), (40, 0)]),
        )
    ]
    never = (await arrive(db, t.account_id, "PC-NEVER", "never", now=now)).user_id
    page = (await gql(t.admin_token, INACTIVE, days=14, first=10)).ok()["inactiveUsers"]
    assert [e["node"]["id"] for e in page["edges"]] == [str(never), *map(str, ids)]
    assert [
        e["node"]["id"]
        for e in (await gql(t.admin_token, INACTIVE, days=25, first=10)).ok()["inactiveUsers"]["edges"]
    ] == [str(never), str(ids[0])]
