"""Every query of the contract through ``schema.execute``: given a queue, when read, then ..."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

from server.domain.activity import ingestion
from server.domain.activity.batch import Batch, Event
from server.domain.admission import AgentReport
from server.infra.db import Database
from tests.graphql.helpers import ACCOUNT, PENDING_PAGE, Gql, ids
from tests.server.domain import arrive
from tests.support import START, Tenant, make_tenant


async def queue(db: Database, tenant: Tenant, pending: int = 4) -> list[int]:
    """Three licensed users (the limit), then ``pending`` users queued a minute apart."""
    for i in range(3):
        await arrive(db, tenant.account_id, f"LIC{i}", f"lic{i}", name=f"Licensed {i}")
    queued = []
    for i in range(pending):
        a = await arrive(
            db,
            tenant.account_id,
            f"PC{i}",
            f"pend{i}",
            name=f"Pending {chr(ord('z') - i)}",
            now=START + timedelta(minutes=i),
        )
        assert a.status == "PENDING" and a.user_id is not None
        queued.append(a.user_id)
    return queued


async def two_device_queue(db: Database, tenant: Tenant, licensed: int, pending: int) -> None:
    """``licensed`` users (the first to arrive), then ``pending`` users a second apart, each
    with a second device of the same login (two agents), and a minute of PC0's activity."""
    for i in range(licensed):
        await arrive(db, tenant.account_id, f"LIC{i}", f"lic{i}")
    for i in range(pending):
        await arrive(db, tenant.account_id, f"PC{i}", f"p{i}", now=START + timedelta(seconds=i))
        await arrive(db, tenant.account_id, f"PC{i}-B", f"p{i}", now=START + timedelta(seconds=i))
    await report(db, tenant, "PC0", "p0", (1, 60))


async def report(
    db: Database, tenant: Tenant, device: str, logon: str, *starts_and_secs: tuple[int, int]
) -> None:
    events = [
        Event(START + timedelta(hours=h), secs, "excel.exe", None, None, "productive")
        for h, secs in starts_and_secs
    ]
    async with db.write() as s:
        await ingestion.ingest(
            s,
            tenant.account_id,
            Batch(f"b-{device}-{len(events)}", AgentReport(device, "ACME", logon, logon), events),
            START,
        )


async def test_me_is_the_token_owner(gql: Gql, tenant: Tenant) -> None:
    me = (await gql(tenant.viewer_token, "{ me { id email name role notifyOnPending } }")).ok()["me"]
    assert me == {
        "id": str(tenant.viewer_id),
        "email": "viewer@acme.example",
        "name": "Acme Viewer",
        "role": "VIEWER",
        "notifyOnPending": True,
    }


async def test_account_shows_license_usage(gql: Gql, db: Database, tenant: Tenant) -> None:
    await queue(db, tenant, pending=2)
    account = (await gql(tenant.admin_token, ACCOUNT)).ok()["account"]
    assert account == {
        "id": str(tenant.account_id),
        "name": "Acme",
        "licenseLimit": 3,
        "licensesUsed": 3,
        "licensesAvailable": 0,
        "pendingCount": 2,
        "manualReview": False,
        "retentionDays": 30,
    }


async def test_pending_users_oldest_first_with_keyset_pages(gql: Gql, db: Database, tenant: Tenant) -> None:
    queued = await queue(db, tenant, pending=5)
    seen: list[str] = []
    after = None
    while True:
        page = (await gql(tenant.admin_token, PENDING_PAGE, first=2, after=after)).ok()["pendingUsers"]
        assert page["totalCount"] == 5
        seen += ids(page)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [str(i) for i in queued]


async def test_pending_users_orders_and_filters(gql: Gql, db: Database, tenant: Tenant) -> None:
    queued = await queue(db, tenant, pending=4)
    newest = (await gql(tenant.admin_token, PENDING_PAGE, first=10, orderBy="ENTERED_DESC")).ok()[
        "pendingUsers"
    ]
    assert ids(newest) == [str(i) for i in reversed(queued)]
    by_name = (await gql(tenant.admin_token, PENDING_PAGE, first=3, orderBy="NAME_ASC")).ok()["pendingUsers"]
    # Names run "Pending z", "Pending y", ... in arrival order.
    assert ids(by_name) == [str(i) for i in reversed(queued)][:3]
    rest = (
        await gql(
            tenant.admin_token,
            PENDING_PAGE,
            first=3,
            orderBy="NAME_ASC",
            after=by_name["pageInfo"]["endCursor"],
        )
    ).ok()["pendingUsers"]
    assert ids(rest) == [str(queued[0])]
    over = (await gql(tenant.admin_token, PENDING_PAGE, first=10, reason="OVER_LIMIT")).ok()["pendingUsers"]
    assert over["totalCount"] == 4
    manual = (await gql(tenant.admin_token, PENDING_PAGE, first=10, reason="MANUAL_REVIEW")).ok()[
        "pendingUsers"
    ]
    assert manual["totalCount"] == 0 and manual["edges"] == []


async def test_name_order_pages_through_names_outside_ascii(gql: Gql, db: Database, tenant: Tenant) -> None:
    """A NAME_ASC cursor holds the last name: written as UTF-8 JSON, it pages on as one
    written with escapes (as cursors were before this was orjson) does."""
    for i in range(3):
        await arrive(db, tenant.account_id, f"LIC{i}", f"lic{i}")
    names = ["Zoë", "Émile", "Łukasz", "Ødegaard", "孔子"]
    for i, name in enumerate(names):
        await arrive(db, tenant.account_id, f"PC{i}", f"p{i}", name=name, now=START + timedelta(minutes=i))

    async def page(after: str | None) -> dict[str, Any]:
        found = await gql(tenant.admin_token, PENDING_PAGE, first=1, orderBy="NAME_ASC", after=after)
        return found.ok()["pendingUsers"]  # type: ignore[no-any-return]

    seen, after = [], None
    while True:
        current = await page(after)
        seen += [edge["node"]["displayName"] for edge in current["edges"]]
        if not current["pageInfo"]["hasNextPage"]:
            break
        after = current["pageInfo"]["endCursor"]
    assert seen == sorted(names, key=str.lower)
    first = (await page(None))["pageInfo"]["endCursor"]
    raw = base64.urlsafe_b64decode(first + "=" * (-len(first) % 4))
    assert "zoë".encode() in raw  # the first name, lowered: UTF-8, not escaped
    escaped = base64.urlsafe_b64encode(json.dumps(json.loads(raw), separators=(",", ":")).encode())
    assert b"zo\\u00eb" in base64.urlsafe_b64decode(escaped)
    assert (await page(escaped.decode().rstrip("="))) == (await page(first))


async def test_search_is_case_insensitive_over_name_logon_and_device(
    gql: Gql, db: Database, tenant: Tenant
) -> None:
    queued = await queue(db, tenant, pending=3)
    for term, expected in [
        ("PENDING Y", [queued[1]]),
        ("PEND2", [queued[2]]),
        ("pc0", [queued[0]]),
        ("%", []),
    ]:
        page = (await gql(tenant.admin_token, PENDING_PAGE, first=10, search=term)).ok()["pendingUsers"]
        assert ids(page) == [str(i) for i in expected], term
        assert page["totalCount"] == len(expected)


async def test_pending_info_is_computed_from_retained_events(gql: Gql, db: Database, tenant: Tenant) -> None:
    queued = await queue(db, tenant, pending=1)
    await report(db, tenant, "PC0", "pend0", (2, 60), (1, 30), (5, 10))
    node = (await gql(tenant.admin_token, PENDING_PAGE, first=1)).ok()["pendingUsers"]["edges"][0]["node"]
    assert node["id"] == str(queued[0]) and node["status"] == "PENDING" and node["licensedAt"] is None
    assert node["agents"][0]["deviceName"] == "PC0" and node["agents"][0]["user"]["id"] == str(queued[0])
    oldest = START + timedelta(hours=1)
    assert node["pending"] == {
        "reason": "OVER_LIMIT",
        "enteredAt": START.isoformat(),
        "retainedEventCount": 3,
        "retainedActiveSeconds": 100,
        "oldestRetainedAt": oldest.isoformat(),
        "dataExpiresAt": (oldest + timedelta(days=30)).isoformat(),
    }


async def test_list_arguments_out_of_range_are_bad_user_input(gql: Gql, db: Database, tenant: Tenant) -> None:
    await queue(db, tenant, pending=1)
    for first in (0, 501, 100000, -1):
        result = await gql(tenant.admin_token, PENDING_PAGE, first=first)
        assert result.codes == ["BAD_USER_INPUT"], first
        assert "1 to 500" in result.errors[0]["message"]
    for query in (
        "{ users(first: 501) { totalCount } }",
        "{ agents(first: 0) { totalCount } }",
        "{ auditLog(first: 1000) { totalCount } }",
        "{ queueMetrics(days: 0) { pendingCount } }",
        "{ queueMetrics(days: 366) { pendingCount } }",
        '{ activityReport(from: "2026-11-27", to: "2026-11-26") { from } }',
    ):
        assert (await gql(tenant.admin_token, query)).codes == ["BAD_USER_INPUT"], query


async def test_a_foreign_or_forged_cursor_is_bad_user_input(gql: Gql, db: Database, tenant: Tenant) -> None:
    await queue(db, tenant, pending=3)
    page = (await gql(tenant.admin_token, PENDING_PAGE, first=1)).ok()["pendingUsers"]
    users_query = "query($after: String) { users(first: 1, after: $after) { totalCount } }"
    assert (await gql(tenant.admin_token, users_query, after=page["pageInfo"]["endCursor"])).codes == [
        "BAD_USER_INPUT"
    ]
    for forged in ("nonsense", "W10", "WyJwZW5kaW5nOmVudGVyZWQiLDEsMl0"):
        assert (await gql(tenant.admin_token, PENDING_PAGE, first=1, after=forged)).codes == [
            "BAD_USER_INPUT"
        ]


async def test_users_lists_everyone_by_name_with_status_filter(
    gql: Gql, db: Database, tenant: Tenant
) -> None:
    await queue(db, tenant, pending=2)
    query = "query($s: UserStatus) { users(first: 50, status: $s) { totalCount edges { node { displayName status } } } }"
    everyone = (await gql(tenant.admin_token, query)).ok()["users"]
    assert everyone["totalCount"] == 5
    names = [e["node"]["displayName"] for e in everyone["edges"]]
    assert names == sorted(names, key=str.lower)
    licensed = (await gql(tenant.admin_token, query, s="LICENSED")).ok()["users"]
    assert {e["node"]["status"] for e in licensed["edges"]} == {"LICENSED"} and licensed["totalCount"] == 3


async def test_user_by_id_is_null_when_missing_malformed_or_foreign(
    gql: Gql, db: Database, tenant: Tenant
) -> None:
    queued = await queue(db, tenant, pending=1)
    other = await make_tenant(db, name="Other")
    foreign = await arrive(db, other.account_id, "X1", "x1")
    query = "query($id: ID!) { user(id: $id) { id displayName pending { reason } agents { logonName } } }"
    mine = (await gql(tenant.admin_token, query, id=str(queued[0]))).ok()["user"]
    assert mine["pending"] == {"reason": "OVER_LIMIT"} and mine["agents"] == [{"logonName": "pend0"}]
    for bad in (str(foreign.user_id), "999999", "abc", "-1", "1e3", "9" * 40, ""):
        assert (await gql(tenant.admin_token, query, id=bad)).ok()["user"] is None, bad


async def test_agents_search_includes_the_owner_name(gql: Gql, db: Database, tenant: Tenant) -> None:
    await queue(db, tenant, pending=1)
    query = "query($s: String) { agents(first: 50, search: $s) { totalCount edges { node { logonName user { displayName } } } } }"
    assert (await gql(tenant.admin_token, query)).ok()["agents"]["totalCount"] == 4
    found = (await gql(tenant.admin_token, query, s="licensed 1")).ok()["agents"]
    assert [e["node"]["logonName"] for e in found["edges"]] == ["lic1"]


async def test_activity_report_shows_licensed_users_only(gql: Gql, db: Database, tenant: Tenant) -> None:
    await queue(db, tenant, pending=1)
    await report(db, tenant, "LIC0", "lic0", (1, 120))
    await report(db, tenant, "PC0", "pend0", (1, 500))
    query = """{ activityReport(from: "2026-11-26", to: "2026-11-26") {
        from to rows { user { displayName } activeSeconds productiveSeconds unproductiveSeconds topApps { app activeSeconds } } } }"""
    got = (await gql(tenant.viewer_token, query)).ok()["activityReport"]
    assert got["from"] == "2026-11-26" and len(got["rows"]) == 3
    assert got["rows"][0] == {
        "user": {"displayName": "Licensed 0"},
        "activeSeconds": 120,
        "productiveSeconds": 120,
        "unproductiveSeconds": 0,
        "topApps": [{"app": "excel.exe", "activeSeconds": 120}],
    }


async def test_audit_log_newest_first_with_actor(gql: Gql, db: Database, tenant: Tenant, clock) -> None:  # type: ignore[no-untyped-def]
    queued = await queue(db, tenant, pending=2)
    clock.advance(hours=1)
    approve = "mutation($ids: [ID!]!) { removeUsers(input: {userIds: $ids}) { errors { code } } }"
    assert (await gql(tenant.admin_token, approve, ids=[str(queued[0])])).ok()["removeUsers"]["errors"] == []
    query = """query($after: String) { auditLog(first: 2, after: $after) { totalCount pageInfo { hasNextPage endCursor }
        edges { node { id at action userId userDisplayName detail actor { id email } } } } }"""
    first = (await gql(tenant.viewer_token, query)).ok()["auditLog"]
    assert first["totalCount"] == 3
    top = first["edges"][0]["node"]
    assert (
        top["action"] == "REMOVED"
        and top["userId"] == str(queued[0])
        and top["actor"]["id"] == str(tenant.admin_id)
    )
    assert top["detail"].startswith("removed (PENDING)")
    assert first["edges"][1]["node"]["actor"] is None  # the system queued them
    rest = (await gql(tenant.viewer_token, query, after=first["pageInfo"]["endCursor"])).ok()["auditLog"]
    assert [e["node"]["action"] for e in rest["edges"]] == ["ENTERED"] and not rest["pageInfo"]["hasNextPage"]


async def test_queue_metrics_from_the_audit_trail(gql: Gql, db: Database, tenant: Tenant, clock) -> None:  # type: ignore[no-untyped-def]
    queued = await queue(db, tenant, pending=4)
    query = """{ queueMetrics(days: 7) { pendingCount oldestPendingSince resolvedCount averageResolutionSeconds
        medianResolutionSeconds resolvedByAction { action count } } }"""
    empty = (await gql(tenant.admin_token, query)).ok()["queueMetrics"]
    assert (
        empty["pendingCount"] == 4
        and empty["resolvedCount"] == 0
        and empty["averageResolutionSeconds"] is None
    )
    assert empty["oldestPendingSince"] == START.isoformat()
    clock.now = START + timedelta(minutes=10)
    remove = "mutation($ids: [ID!]!) { removeUsers(input: {userIds: $ids}) { errors { code } } }"
    assert (await gql(tenant.admin_token, remove, ids=[str(queued[0])])).ok()["removeUsers"]["errors"] == []
    assign = "mutation($p: ID!, $t: ID!) { assignPendingUser(input: {pendingUserId: $p, targetUserId: $t}) { errors { code } } }"
    assert (await gql(tenant.admin_token, assign, p=str(queued[1]), t="1")).ok()["assignPendingUser"][
        "errors"
    ] == []
    got = (await gql(tenant.admin_token, query)).ok()["queueMetrics"]
    # Entered at +0 and +1 minute, resolved at +10: 600 s and 540 s.
    assert got["pendingCount"] == 2 and got["resolvedCount"] == 2
    assert got["averageResolutionSeconds"] == 570 and got["medianResolutionSeconds"] == 570
    assert {r["action"]: r["count"] for r in got["resolvedByAction"]} == {
        "APPROVED": 0,
        "ASSIGNED": 1,
        "MERGED": 0,
        "REMOVED": 1,
    }
    clock.now = START + timedelta(days=8)
    assert (await gql(tenant.admin_token, query)).ok()["queueMetrics"]["resolvedCount"] == 0


async def test_settings_history_says_who_changed_what(gql: Gql, db: Database, tenant: Tenant, clock) -> None:  # type: ignore[no-untyped-def]
    from tests.support import make_tenant

    other = await make_tenant(db, name="Other")
    await queue(db, tenant, pending=0)  # fills the 3 licenses
    settings = "mutation($input: UpdateAccountSettingsInput!) { updateAccountSettings(input: $input) { errors { code } } }"
    assert (await gql(tenant.admin_token, settings, input={"manualReview": True})).ok()
    clock.advance(minutes=5)
    assert (await gql(tenant.admin_token, settings, input={"licenseLimit": 1})).ok()
    assert (await gql(tenant.admin_token, settings, input={"licenseLimit": 1})).ok()  # no change: no entry
    assert (await gql(other.admin_token, settings, input={"licenseLimit": 9})).ok()
    query = """query($after: String) { settingsHistory(first: 1, after: $after) { totalCount pageInfo { hasNextPage endCursor }
        edges { node { at actor { email } manualReview previousManualReview licenseLimit previousLicenseLimit movedToPending } } } }"""
    first = (await gql(tenant.viewer_token, query)).ok()["settingsHistory"]
    assert first["totalCount"] == 2 and first["pageInfo"]["hasNextPage"]
    assert first["edges"][0]["node"] == {
        "at": clock().isoformat(),
        "actor": {"email": "admin@acme.example"},
        "manualReview": True,
        "previousManualReview": True,
        "licenseLimit": 1,
        "previousLicenseLimit": 3,
        "movedToPending": 2,
    }
    rest = (await gql(tenant.viewer_token, query, after=first["pageInfo"]["endCursor"])).ok()[
        "settingsHistory"
    ]
    (older,) = [e["node"] for e in rest["edges"]]
    assert (older["previousManualReview"], older["manualReview"], older["movedToPending"]) == (False, True, 0)
    assert not rest["pageInfo"]["hasNextPage"]
