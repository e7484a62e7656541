"""Every mutation through ``schema.execute``: the effect, the payload, and its expected failures."""

from __future__ import annotations

from server.domain.models import AgentAlias, DoNotTrack, User
from server.infra.db import Database
from tests.graphql.helpers import ACCOUNT, Gql
from tests.graphql.test_queries import queue
from tests.server.domain import agents_of, arrive, count, snapshot
from tests.support import Tenant

APPROVE = """mutation($ids: [ID!]!) { approvePendingUsers(input: {userIds: $ids}) {
  approved { id status licensedAt pending { reason } } account { licensesUsed licensesAvailable pendingCount }
  errors { code message field } } }"""
ASSIGN = """mutation($p: ID!, $t: ID!) { assignPendingUser(input: {pendingUserId: $p, targetUserId: $t}) {
  user { id agents { logonName } } account { pendingCount } errors { code message field } } }"""
MERGE = """mutation($p: ID!, $t: ID!) { mergePendingUser(input: {pendingUserId: $p, targetAgentId: $t}) {
  agent { id logonName user { id } } account { pendingCount } errors { code message field } } }"""
REMOVE = """mutation($ids: [ID!]!, $dnt: Boolean! = false) { removeUsers(input: {userIds: $ids, doNotTrack: $dnt}) {
  removedUserIds account { licensesUsed pendingCount } errors { code message field } } }"""
SETTINGS = """mutation($m: Boolean, $l: Int) { updateAccountSettings(input: {manualReview: $m, licenseLimit: $l}) {
  account { licenseLimit licensesUsed pendingCount manualReview } errors { code message field } } }"""
NOTIFY = """mutation($n: Boolean!) { updateNotificationSettings(input: {notifyOnPending: $n}) {
  me { id notifyOnPending } errors { code message field } } }"""


async def test_approve_licenses_all_or_nothing(gql: Gql, db: Database, tenant: Tenant) -> None:
    queued = await queue(db, tenant, pending=3)
    assert (await gql(tenant.admin_token, SETTINGS, l=5)).ok()["updateAccountSettings"]["errors"] == []
    before = await snapshot(db, tenant.account_id)
    refused = (await gql(tenant.admin_token, APPROVE, ids=[str(i) for i in queued])).ok()[
        "approvePendingUsers"
    ]
    assert refused["approved"] == [] and refused["account"]["licensesAvailable"] == 2
    (error,) = refused["errors"]
    assert error["code"] == "LICENSE_LIMIT_EXCEEDED" and error["field"] == "userIds"
    assert "3 license(s) requested but only 2 available" in error["message"]
    assert await snapshot(db, tenant.account_id) == before

    done = (await gql(tenant.admin_token, APPROVE, ids=[str(queued[0]), str(queued[2])])).ok()[
        "approvePendingUsers"
    ]
    assert done["errors"] == [] and [u["id"] for u in done["approved"]] == [str(queued[0]), str(queued[2])]
    assert all(
        u["status"] == "LICENSED" and u["pending"] is None and u["licensedAt"] for u in done["approved"]
    )
    assert done["account"] == {"licensesUsed": 5, "licensesAvailable": 0, "pendingCount": 1}


async def test_approve_expected_failures(gql: Gql, db: Database, tenant: Tenant) -> None:
    queued = await queue(db, tenant, pending=1)
    before = await snapshot(db, tenant.account_id)
    for ids, code in [
        (["1"], "NOT_PENDING"),
        (["424242"], "NOT_FOUND"),
        (["abc"], "NOT_FOUND"),
        ([], "INVALID_INPUT"),
        ([str(queued[0]), "x"], "NOT_FOUND"),
    ]:
        payload = (await gql(tenant.admin_token, APPROVE, ids=ids)).ok()["approvePendingUsers"]
        assert [e["code"] for e in payload["errors"]] == [code], ids
        assert payload["account"]["pendingCount"] == 1
    too_many = await gql(tenant.admin_token, APPROVE, ids=[str(i) for i in range(1, 502)])
    assert too_many.codes == ["BAD_USER_INPUT"] and "at most 500" in too_many.errors[0]["message"]
    assert await snapshot(db, tenant.account_id) == before


async def test_assign_moves_agents_to_the_target(gql: Gql, db: Database, tenant: Tenant) -> None:
    queued = await queue(db, tenant, pending=2)
    payload = (await gql(tenant.admin_token, ASSIGN, p=str(queued[0]), t="1")).ok()["assignPendingUser"]
    assert payload["errors"] == [] and payload["user"]["id"] == "1"
    assert sorted(a["logonName"] for a in payload["user"]["agents"]) == ["lic0", "pend0"]
    assert payload["account"]["pendingCount"] == 1
    before = await snapshot(db, tenant.account_id)
    for p, t, code, field in [
        (queued[1], queued[1], "CONFLICT", "targetUserId"),
        (queued[0], 1, "NOT_FOUND", "pendingUserId"),
        (1, 2, "NOT_PENDING", "pendingUserId"),
        (queued[1], 999, "NOT_FOUND", "targetUserId"),
    ]:
        got = (await gql(tenant.admin_token, ASSIGN, p=str(p), t=str(t))).ok()["assignPendingUser"]
        assert got["user"] is None and [(e["code"], e["field"]) for e in got["errors"]] == [(code, field)]
    assert await snapshot(db, tenant.account_id) == before


async def test_merge_folds_the_agent_and_leaves_an_alias(gql: Gql, db: Database, tenant: Tenant) -> None:
    queued = await queue(db, tenant, pending=2)
    target_agent = (await agents_of(db, 1))[0]
    payload = (await gql(tenant.admin_token, MERGE, p=str(queued[0]), t=str(target_agent.id))).ok()[
        "mergePendingUser"
    ]
    assert payload["errors"] == []
    assert payload["agent"] == {"id": str(target_agent.id), "logonName": "lic0", "user": {"id": "1"}}
    assert await count(db, AgentAlias) == 1 and await count(db, User, User.id == queued[0]) == 0
    own_agent = (await agents_of(db, queued[1]))[0]
    got = (await gql(tenant.admin_token, MERGE, p=str(queued[1]), t=str(own_agent.id))).ok()[
        "mergePendingUser"
    ]
    assert [e["code"] for e in got["errors"]] == ["CONFLICT"] and got["agent"] is None
    got = (await gql(tenant.admin_token, MERGE, p=str(queued[1]), t="nope")).ok()["mergePendingUser"]
    assert [(e["code"], e["field"]) for e in got["errors"]] == [("NOT_FOUND", "targetAgentId")]


async def test_remove_with_do_not_track(gql: Gql, db: Database, tenant: Tenant) -> None:
    queued = await queue(db, tenant, pending=2)
    payload = (await gql(tenant.admin_token, REMOVE, ids=["1", str(queued[0])], dnt=True)).ok()["removeUsers"]
    assert payload["errors"] == [] and payload["removedUserIds"] == ["1", str(queued[0])]
    assert payload["account"] == {"licensesUsed": 2, "pendingCount": 1}
    assert await count(db, DoNotTrack) == 2
    again = (await gql(tenant.admin_token, REMOVE, ids=["1"])).ok()["removeUsers"]
    assert [e["code"] for e in again["errors"]] == ["NOT_FOUND"] and again["removedUserIds"] == []


async def test_update_account_settings(gql: Gql, db: Database, tenant: Tenant) -> None:
    await queue(db, tenant, pending=1)
    lowered = (await gql(tenant.admin_token, SETTINGS, m=True, l=1)).ok()["updateAccountSettings"]
    assert lowered == {
        "account": {"licenseLimit": 1, "licensesUsed": 1, "pendingCount": 3, "manualReview": True},
        "errors": [],
    }
    bad = (await gql(tenant.admin_token, SETTINGS, l=-1)).ok()["updateAccountSettings"]
    assert [(e["code"], e["field"]) for e in bad["errors"]] == [("INVALID_INPUT", "licenseLimit")]
    assert bad["account"]["licenseLimit"] == 1
    assert (await gql(tenant.admin_token, ACCOUNT)).ok()["account"]["licenseLimit"] == 1


async def test_update_notification_settings_is_the_callers_own(gql: Gql, tenant: Tenant) -> None:
    for token, admin_id in ((tenant.admin_token, tenant.admin_id), (tenant.viewer_token, tenant.viewer_id)):
        payload = (await gql(token, NOTIFY, n=False)).ok()["updateNotificationSettings"]
        assert payload == {"me": {"id": str(admin_id), "notifyOnPending": False}, "errors": []}
        assert (await gql(token, "{ me { notifyOnPending } }")).ok()["me"]["notifyOnPending"] is False


async def test_payload_shows_the_state_after_the_write(gql: Gql, db: Database, tenant: Tenant) -> None:
    """The payload is read after the commit, not from the request's first snapshot."""
    queued = await queue(db, tenant, pending=1)
    await arrive(db, tenant.account_id, "LIC0B", "lic0b")  # another user queued meanwhile
    query = f"""mutation {{
      a: assignPendingUser(input: {{pendingUserId: "{queued[0]}", targetUserId: "2"}}) {{ user {{ agents {{ logonName }} }} }}
    }}"""
    got = (await gql(tenant.admin_token, query)).ok()["a"]["user"]["agents"]
    assert sorted(a["logonName"] for a in got) == ["lic1", "pend0"]
