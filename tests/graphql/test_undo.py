"""``undoActions`` and ``AuditEntry.undoableUntil`` through ``schema.execute``: removed data is
hidden from every read until an undo brings it back; the payload; expected failures."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from server.infra.db import Database
from server.infra.settings import Settings
from server.web.runtime import Services
from tests.graphql.helpers import Gql
from tests.graphql.test_mutations import APPROVE, REMOVE, SETTINGS
from tests.graphql.test_queries import queue, report
from tests.server.domain import arrive
from tests.support import START, FakeClock, Tenant

UNDO = """mutation($ids: [ID!]!) { undoActions(input: {auditEntryIds: $ids}) {
  users { id status pending { reason enteredAt } } account { licensesUsed pendingCount } errors { code message field } } }"""
AUDIT = "{ auditLog(first: 20) { edges { node { id action userId undoableUntil actor { id } detail } } } }"
READS = """query($id: ID!, $d: Date!) {
  account { licensesUsed pendingCount }
  pendingUsers { totalCount }
  users { totalCount }
  agents { totalCount }
  searchedPending: pendingUsers(search: "smith") { totalCount }
  searchedUsers: users(search: "smith") { totalCount }
  searchedAgents: agents(search: "smith") { totalCount }
  user(id: $id) { id agents { deviceName } }
  activityReport(from: $d, to: $d) { rows { user { id } activeSeconds } }
  queueMetrics { pendingCount resolvedCount }
  suggested: pendingUsers(search: "smith") { edges { node { suggestions { user { id } } } } }
}"""


async def audit_log(gql: Gql, token: str) -> list[dict[str, Any]]:
    return [e["node"] for e in (await gql(token, AUDIT)).ok()["auditLog"]["edges"]]


async def test_removed_users_are_hidden_from_every_read_until_undone(
    gql: Gql, db: Database, tenant: Tenant
) -> None:
    queued = await queue(db, tenant, pending=1)
    await report(db, tenant, "LIC0", "lic0", (0, 600))
    lic0 = (await arrive(db, tenant.account_id, "LIC0", "lic0")).user_id
    ann = await arrive(db, tenant.account_id, "DESKTOP-1", "asmith", name="Ann Smith")
    # Her local account on the same laptop: likely Ann (a suggestion to assign it to her).
    local = (
        await arrive(db, tenant.account_id, "DESKTOP-1", "asmith", domain="DESKTOP-1", name="Ann Smith")
    ).user_id
    removed = [lic0, ann.user_id, queued[0]]
    reads = {"id": str(ann.user_id), "d": START.date().isoformat()}

    def suggested(data: dict[str, Any]) -> list[str]:
        edges = data["suggested"]["edges"]
        return [s["user"]["id"] for e in edges for s in e["node"]["suggestions"]]

    seen = (await gql(tenant.admin_token, READS, **reads)).ok()
    # Both queued duplicates show each other (likely matches hold both ways).
    assert sorted(suggested(seen)) == sorted([str(ann.user_id), str(local)]) and seen["user"] is not None
    assert str(lic0) in {r["user"]["id"] for r in seen["activityReport"]["rows"]}

    gone = (await gql(tenant.admin_token, REMOVE, ids=[str(i) for i in removed])).ok()["removeUsers"]
    assert gone["errors"] == []
    hidden = (await gql(tenant.admin_token, READS, **reads)).ok()
    assert hidden["user"] is None and suggested(hidden) == []
    assert str(lic0) not in {r["user"]["id"] for r in hidden["activityReport"]["rows"]}
    for field, fewer in [
        ("users", 3),
        ("agents", 3),
        ("pendingUsers", 2),
        ("searchedUsers", 1),
        ("searchedAgents", 1),
        ("searchedPending", 1),
    ]:
        assert hidden[field]["totalCount"] == seen[field]["totalCount"] - fewer, field
    assert hidden["account"] == {
        "licensesUsed": seen["account"]["licensesUsed"] - 1,
        "pendingCount": seen["account"]["pendingCount"] - 2,
    }
    assert hidden["queueMetrics"]["pendingCount"] == seen["queueMetrics"]["pendingCount"] - 2

    log = await audit_log(gql, tenant.admin_token)
    removals = [e for e in log if e["action"] == "REMOVED"]
    assert {e["undoableUntil"] for e in removals} == {(START + timedelta(hours=24)).isoformat()}
    undone = (await gql(tenant.admin_token, UNDO, ids=[e["id"] for e in removals])).ok()["undoActions"]
    assert undone["errors"] == [] and sorted(u["id"] for u in undone["users"]) == sorted(map(str, removed))
    assert (await gql(tenant.admin_token, READS, **reads)).ok() == seen

    log = await audit_log(gql, tenant.admin_token)
    assert [(e["action"], e["undoableUntil"], e["actor"]) for e in log[:3]] == [
        ("UNDONE", None, {"id": str(tenant.admin_id)})
    ] * 3
    assert all(e["undoableUntil"] is None for e in log if e["action"] in ("REMOVED", "ENTERED"))


async def test_the_payload_shows_a_user_that_came_back_pending(
    gql: Gql, db: Database, tenant: Tenant
) -> None:
    queued = await queue(db, tenant, pending=2)
    assert (await gql(tenant.admin_token, SETTINGS, l=4)).ok()["updateAccountSettings"]["errors"] == []
    approved = (await gql(tenant.admin_token, APPROVE, ids=[str(queued[0])])).ok()["approvePendingUsers"]
    assert approved["errors"] == []
    (entry,) = [e for e in await audit_log(gql, tenant.admin_token) if e["action"] == "APPROVED"]
    undone = (await gql(tenant.admin_token, UNDO, ids=[entry["id"]])).ok()["undoActions"]
    assert undone == {
        "users": [
            {
                "id": str(queued[0]),
                "status": "PENDING",
                "pending": {"reason": "OVER_LIMIT", "enteredAt": START.isoformat()},
            }
        ],
        "account": {"licensesUsed": 3, "pendingCount": 2},
        "errors": [],
    }
    again = (await gql(tenant.admin_token, UNDO, ids=[entry["id"]])).ok()["undoActions"]
    assert [e["code"] for e in again["errors"]] == ["NOT_UNDOABLE"] and again["users"] == []
    assert again["account"] == undone["account"]


async def test_expected_failures(gql: Gql, db: Database, tenant: Tenant) -> None:
    await queue(db, tenant, pending=1)
    entered = (await audit_log(gql, tenant.admin_token))[0]
    for ids, code in [
        ([entered["id"]], "NOT_UNDOABLE"),
        (["424242"], "NOT_FOUND"),
        (["x"], "NOT_FOUND"),
        ([], "INVALID_INPUT"),
    ]:
        payload = (await gql(tenant.admin_token, UNDO, ids=ids)).ok()["undoActions"]
        assert [(e["code"], e["field"]) for e in payload["errors"]] == [(code, "auditEntryIds")], ids
    assert (await gql(tenant.viewer_token, UNDO, ids=[entered["id"]])).codes == ["FORBIDDEN"]
    assert (await gql(tenant.admin_token, UNDO, ids=[str(i) for i in range(501)])).codes == ["BAD_USER_INPUT"]


async def test_undo_hours_zero_turns_undo_off(
    db: Database, db_url: str, clock: FakeClock, tenant: Tenant
) -> None:
    gql = Gql(Services(Settings(database_url=db_url, undo_hours=0), db, clock))
    queued = await queue(db, tenant, pending=1)
    assert (await gql(tenant.admin_token, REMOVE, ids=[str(queued[0])])).ok()["removeUsers"]["errors"] == []
    (removal,) = [e for e in await audit_log(gql, tenant.admin_token) if e["action"] == "REMOVED"]
    assert removal["undoableUntil"] is None
    (error,) = (await gql(tenant.admin_token, UNDO, ids=[removal["id"]])).ok()["undoActions"]["errors"]
    assert error["code"] == "NOT_UNDOABLE" and "turned off" in error["message"]


async def test_the_window_follows_the_clock(gql: Gql, db: Database, clock: FakeClock, tenant: Tenant) -> None:
    queued = await queue(db, tenant, pending=1)
    await gql(tenant.admin_token, REMOVE, ids=[str(queued[0])])
    clock.advance(hours=24)
    (removal,) = [e for e in await audit_log(gql, tenant.admin_token) if e["action"] == "REMOVED"]
    assert removal["undoableUntil"] is None
