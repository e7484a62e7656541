"""Seat plans (docs/behaviour.md, Seat plans): previews that change nothing, and applies that
answer PLAN_CHANGED once the queue moved on, so an admin applies exactly the plan they saw."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from server.domain.activity import ingestion
from server.domain.activity.batch import Batch, Event
from server.domain.admission import AgentReport
from server.infra.db import Database
from tests.graphql.helpers import Gql
from tests.graphql.test_queries import queue
from tests.server.domain import arrive, snapshot
from tests.support import START, Tenant

PLAN_FIELDS = """approve { id displayName status } moveToPending { id displayName status }
  licenseLimit licensesUsedBefore licensesUsedAfter queueVersion errors { code message field }"""
PREVIEW_APPROVAL = f"query($ids: [ID!]!) {{ previewApproval(userIds: $ids) {{ {PLAN_FIELDS} }} }}"
PREVIEW_SETTINGS = f"""query($m: Boolean, $l: Int, $v: String) {{
  previewAccountSettings(input: {{manualReview: $m, licenseLimit: $l, expectedQueueVersion: $v}}) {{ {PLAN_FIELDS} }} }}"""
APPROVE = """mutation($ids: [ID!]!, $v: String) {
  approvePendingUsers(input: {userIds: $ids, expectedQueueVersion: $v}) {
    approved { id } account { licensesUsed queueVersion } errors { code message field } } }"""
SETTINGS = """mutation($m: Boolean, $l: Int, $v: String) {
  updateAccountSettings(input: {manualReview: $m, licenseLimit: $l, expectedQueueVersion: $v}) {
    account { licenseLimit licensesUsed queueVersion } errors { code message field } } }"""
VERSION = "{ account { queueVersion } }"


async def version(gql: Gql, tenant: Tenant) -> str:
    found: str = (await gql(tenant.admin_token, VERSION)).ok()["account"]["queueVersion"]
    return found


async def preview_approval(gql: Gql, token: str, ids: list[Any]) -> dict[str, Any]:
    plan: dict[str, Any] = (await gql(token, PREVIEW_APPROVAL, ids=[str(i) for i in ids])).ok()[
        "previewApproval"
    ]
    return plan


async def ingest(db: Database, tenant: Tenant, device: str, logon: str, seconds: int = 60) -> None:
    """A batch of activity from ``logon`` on ``device`` (a newcomer if that agent is new)."""
    event = Event(START + timedelta(minutes=5), seconds, "excel.exe", None, None, "productive")
    async with db.write() as s:
        await ingestion.ingest(
            s,
            tenant.account_id,
            Batch(f"b-{device}-{seconds}", AgentReport(device, "ACME", logon, logon), [event]),
            START + timedelta(minutes=10),
        )


async def test_an_approval_preview_shows_the_order_and_usage_and_changes_nothing(
    gql: Gql, db: Database, tenant: Tenant
) -> None:
    queued = await queue(db, tenant, pending=4)
    assert (await gql(tenant.admin_token, SETTINGS, l=6)).ok()["updateAccountSettings"]["errors"] == []
    before = await snapshot(db, tenant.account_id)
    chosen = [queued[2], queued[0], queued[3]]

    # VIEWERs may look: a preview is a read.
    plan = await preview_approval(gql, tenant.viewer_token, chosen)
    assert plan["errors"] == []
    assert [u["id"] for u in plan["approve"]] == [str(i) for i in chosen]
    assert all(u["status"] == "PENDING" for u in plan["approve"])
    assert plan["moveToPending"] == []
    assert (plan["licenseLimit"], plan["licensesUsedBefore"], plan["licensesUsedAfter"]) == (6, 3, 6)
    assert plan["queueVersion"] == await version(gql, tenant)
    assert await snapshot(db, tenant.account_id) == before

    done = (await gql(tenant.admin_token, APPROVE, ids=[str(i) for i in chosen], v=plan["queueVersion"])).ok()
    payload = done["approvePendingUsers"]
    assert payload["errors"] == []
    assert [u["id"] for u in payload["approved"]] == [u["id"] for u in plan["approve"]]
    assert payload["account"]["licensesUsed"] == plan["licensesUsedAfter"]
    assert payload["account"]["queueVersion"] != plan["queueVersion"]


async def test_an_approval_preview_answers_the_errors_applying_would(
    gql: Gql, db: Database, tenant: Tenant
) -> None:
    queued = await queue(db, tenant, pending=2)
    await gql(tenant.admin_token, SETTINGS, l=4)
    for ids, code in [
        ([queued[0], queued[1]], "LICENSE_LIMIT_EXCEEDED"),
        (["1"], "NOT_PENDING"),
        (["424242"], "NOT_FOUND"),
        (["not-an-id"], "NOT_FOUND"),
        ([], "INVALID_INPUT"),
    ]:
        plan = await preview_approval(gql, tenant.admin_token, ids)
        applied = (await gql(tenant.admin_token, APPROVE, ids=[str(i) for i in ids])).ok()
        assert [e["code"] for e in plan["errors"]] == [code], (ids, plan)
        assert plan["errors"] == applied["approvePendingUsers"]["errors"]
        assert plan["approve"] == [] and plan["moveToPending"] == []
        assert plan["licensesUsedBefore"] == plan["licensesUsedAfter"] == 3

    too_many = await gql(tenant.admin_token, PREVIEW_APPROVAL, ids=[str(i) for i in range(501)])
    assert too_many.codes == ["BAD_USER_INPUT"]


async def test_a_settings_preview_lists_who_a_lowered_limit_moves_most_recently_licensed_first(
    gql: Gql, db: Database, tenant: Tenant
) -> None:
    await gql(tenant.admin_token, SETTINGS, l=5)
    licensed = [
        (await arrive(db, tenant.account_id, f"PC{i}", f"u{i}", now=START + timedelta(minutes=i))).user_id
        for i in range(5)
    ]
    before = await snapshot(db, tenant.account_id)
    plan = (await gql(tenant.viewer_token, PREVIEW_SETTINGS, l=2)).ok()["previewAccountSettings"]
    assert plan["errors"] == [] and plan["approve"] == []
    assert [u["id"] for u in plan["moveToPending"]] == [str(licensed[i]) for i in (4, 3, 2)]
    assert all(u["status"] == "LICENSED" for u in plan["moveToPending"])
    assert (plan["licenseLimit"], plan["licensesUsedBefore"], plan["licensesUsedAfter"]) == (2, 5, 2)
    assert await snapshot(db, tenant.account_id) == before

    # Previews ignore expectedQueueVersion; a raised limit or a toggle moves nobody.
    same = (await gql(tenant.admin_token, PREVIEW_SETTINGS, l=2, v="stale")).ok()["previewAccountSettings"]
    assert same == plan
    raised = (await gql(tenant.admin_token, PREVIEW_SETTINGS, l=9, m=True)).ok()["previewAccountSettings"]
    assert raised["moveToPending"] == [] and raised["licensesUsedAfter"] == 5 and raised["licenseLimit"] == 9

    bad = (await gql(tenant.admin_token, PREVIEW_SETTINGS, l=-1)).ok()["previewAccountSettings"]
    assert [(e["code"], e["field"]) for e in bad["errors"]] == [("INVALID_INPUT", "licenseLimit")]
    assert bad["moveToPending"] == [] and bad["licenseLimit"] == 5

    applied = (await gql(tenant.admin_token, SETTINGS, l=2, v=plan["queueVersion"])).ok()
    assert applied["updateAccountSettings"]["errors"] == []
    users = (await gql(tenant.admin_token, "{ pendingUsers { edges { node { id } } } }")).ok()
    assert {e["node"]["id"] for e in users["pendingUsers"]["edges"]} == {
        u["id"] for u in plan["moveToPending"]
    }


async def test_an_arrival_between_preview_and_apply_answers_plan_changed_and_changes_nothing(
    gql: Gql, db: Database, tenant: Tenant
) -> None:
    queued = await queue(db, tenant, pending=2)
    await gql(tenant.admin_token, SETTINGS, l=5)
    plan = await preview_approval(gql, tenant.admin_token, queued)
    settings_plan = (await gql(tenant.admin_token, PREVIEW_SETTINGS, l=3)).ok()["previewAccountSettings"]
    assert plan["errors"] == [] and plan["queueVersion"] == settings_plan["queueVersion"]

    await arrive(db, tenant.account_id, "NEW-PC", "newcomer")  # takes one of the two free licenses
    before = await snapshot(db, tenant.account_id)
    for document, variables, name in [
        (APPROVE, {"ids": [str(i) for i in queued]}, "approvePendingUsers"),
        (SETTINGS, {"l": 3}, "updateAccountSettings"),
    ]:
        answer = (await gql(tenant.admin_token, document, v=plan["queueVersion"], **variables)).ok()[name]
        (error,) = answer["errors"]
        assert (error["code"], error["field"]) == ("PLAN_CHANGED", "expectedQueueVersion")
        assert "nothing was applied" in error["message"]
        assert await snapshot(db, tenant.account_id) == before
    # The fresh plan shows why: one license is left for two users.
    fresh = await preview_approval(gql, tenant.admin_token, queued)
    assert [e["code"] for e in fresh["errors"]] == ["LICENSE_LIMIT_EXCEEDED"]
    assert fresh["queueVersion"] != plan["queueVersion"]


async def test_the_version_moves_with_the_queue_and_usage_but_not_with_retained_activity(
    gql: Gql, db: Database, tenant: Tenant
) -> None:
    queued = await queue(db, tenant, pending=2)
    v0 = await version(gql, tenant)
    await ingest(db, tenant, "PC0", "pend0")  # a pending user's activity grows
    await ingest(db, tenant, "LIC0", "lic0")  # a licensed user's too
    assert await version(gql, tenant) == v0, "activity alone must not make plans unappliable"

    # Every write a plan depends on moves it: an arrival, a newcomer taking a free license,
    # settings, each action.
    seen = {v0}

    async def moved() -> None:
        now = await version(gql, tenant)
        assert now not in seen
        seen.add(now)

    await arrive(db, tenant.account_id, "Q-PC", "queued")
    await moved()
    await gql(tenant.admin_token, SETTINGS, l=4)
    await moved()
    await ingest(db, tenant, "FREE-PC", "free")  # a newcomer takes the free license
    await moved()
    await gql(tenant.admin_token, SETTINGS, m=True)
    await moved()
    unchanged = (await gql(tenant.admin_token, SETTINGS, m=True)).ok()["updateAccountSettings"]
    assert unchanged["account"]["queueVersion"] == await version(gql, tenant), "a no-op changes no plan"
    await gql(tenant.admin_token, SETTINGS, l=5)
    await gql(tenant.admin_token, APPROVE, ids=[str(queued[0])])
    await moved()
    remove = "mutation($ids: [ID!]!) { removeUsers(input: {userIds: $ids}) { errors { code } } }"
    assert (await gql(tenant.admin_token, remove, ids=[str(queued[1])])).ok()["removeUsers"]["errors"] == []
    await moved()


async def test_concurrent_applies_of_one_plan_leave_exactly_one_applied(
    gql: Gql, db: Database, tenant: Tenant
) -> None:
    queued = await queue(db, tenant, pending=4)
    await gql(tenant.admin_token, SETTINGS, l=10)
    plan = await preview_approval(gql, tenant.admin_token, queued[:1])
    others = [await preview_approval(gql, tenant.admin_token, [i]) for i in queued[1:]]
    assert {p["queueVersion"] for p in others} == {plan["queueVersion"]}
    answers = await asyncio.gather(
        *(gql(tenant.admin_token, APPROVE, ids=[str(i)], v=plan["queueVersion"]) for i in queued)
    )
    codes = [[e["code"] for e in a.ok()["approvePendingUsers"]["errors"]] for a in answers]
    assert sorted(codes) == [[], ["PLAN_CHANGED"], ["PLAN_CHANGED"], ["PLAN_CHANGED"]]
    account = (await gql(tenant.admin_token, "{ account { licensesUsed } }")).ok()["account"]
    assert account["licensesUsed"] == 4
