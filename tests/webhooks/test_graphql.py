"""The webhook queries and mutations: who may do what, secrets shown once, limits, deliveries,
and delivery end to end through a real server (docs/api.md, Webhooks)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from standardwebhooks import Webhook as Verifier

from server.domain import retention
from server.domain.models import QueueAction
from server.domain.webhooks.tables import Webhook
from server.web.app import create_app
from server.web.runtime import Services
from tests.graphql.helpers import Gql
from tests.support import FakeClock, Tenant, batch_body, make_tenant, serve_app
from tests.webhooks.conftest import Receiver, deliveries, send_due

CREATE = """mutation($url: String!, $format: WebhookFormat! = STANDARD, $actions: [QueueAction!]) {
  createWebhook(input: {url: $url, format: $format, actions: $actions}) {
    webhook { id url format actions enabled disabledReason } secret errors { code message field } } }"""
UPDATE = """mutation($id: ID!, $url: String, $actions: [QueueAction!], $enabled: Boolean) {
  updateWebhook(input: {id: $id, url: $url, actions: $actions, enabled: $enabled}) {
    webhook { id url actions enabled disabledReason } errors { code message field } } }"""
DELETE = "mutation($id: ID!) { deleteWebhook(input: {id: $id}) { deletedId errors { code message } } }"
ROTATE = """mutation($id: ID!) { rotateWebhookSecret(input: {id: $id}) {
  webhook { id } secret errors { code message field } } }"""
TEST = """mutation($id: ID!) { sendTestWebhook(input: {id: $id}) {
  delivery { id action userId status attempts } errors { code message } } }"""
HOOKS = """query($first: Int! = 20, $after: String) { webhooks { id url format actions enabled createdAt
  deliveries(first: $first, after: $after) { totalCount pageInfo { hasNextPage endCursor }
    edges { node { id action userId status attempts lastResponseCode lastError deliveredAt nextAttemptAt } } } } }"""

# Every action, those added later included (a hook created with none gets them all).
ALL_ACTIONS = [a.value for a in QueueAction]


@pytest.fixture
def gql(svc: Services) -> Gql:
    return Gql(svc)


@pytest.fixture
async def tenant(svc: Services) -> Tenant:
    return await make_tenant(svc.db, licenses=0)


async def create(gql: Gql, tenant: Tenant, url: str, **variables: Any) -> dict[str, Any]:
    payload: dict[str, Any] = (await gql(tenant.admin_token, CREATE, url=url, **variables)).ok()[
        "createWebhook"
    ]
    return payload


async def test_an_admin_creates_a_webhook_and_sees_its_secret_once(
    gql: Gql, tenant: Tenant, receiver: Receiver
) -> None:
    made = await create(gql, tenant, receiver.url("hook"))
    assert made["errors"] == [] and made["secret"].startswith("whsec_")
    assert made["webhook"] == {
        "id": made["webhook"]["id"],
        "url": receiver.url("hook"),
        "format": "STANDARD",
        "actions": ALL_ACTIONS,
        "enabled": True,
        "disabledReason": None,
    }
    listed = (await gql(tenant.admin_token, HOOKS)).ok()["webhooks"]
    assert [h["id"] for h in listed] == [made["webhook"]["id"]]
    # No type carries the secret: it is only in the payload that made it
    fields = (await gql(tenant.viewer_token, '{ __type(name: "Webhook") { fields { name } } }')).ok()
    assert "secret" not in {f["name"] for f in fields["__type"]["fields"]}


async def test_a_viewer_reads_webhooks_without_secrets_in_urls_and_may_not_manage_them(
    gql: Gql, tenant: Tenant, receiver: Receiver, svc: Services
) -> None:
    made = await create(gql, tenant, receiver.url("in/abc?token=s3cret"))
    slack = await create(gql, tenant, receiver.url("services/T0/B0/key"), format="SLACK")
    assert slack["secret"] is None
    viewed = (await gql(tenant.viewer_token, HOOKS)).ok()["webhooks"]
    assert [v["url"] for v in viewed] == [receiver.url("in/abc"), f"{receiver.base}/…"]

    hook_id = made["webhook"]["id"]
    async with svc.db.read() as session:
        before = (await session.execute(sa.select(*Webhook.__table__.c))).all()
    for query, variables in [
        (CREATE, {"url": receiver.url("x")}),
        (UPDATE, {"id": hook_id, "enabled": False}),
        (DELETE, {"id": hook_id}),
        (ROTATE, {"id": hook_id}),
        (TEST, {"id": hook_id}),
    ]:
        result = await gql(tenant.viewer_token, query, **variables)
        assert result.data is None and result.codes == ["FORBIDDEN"], query
    async with svc.db.read() as session:
        assert (await session.execute(sa.select(*Webhook.__table__.c))).all() == before
    assert await deliveries(svc.db) == []


async def test_another_accounts_webhook_is_not_found(
    gql: Gql, tenant: Tenant, receiver: Receiver, svc: Services
) -> None:
    hook_id = (await create(gql, tenant, receiver.url("hook")))["webhook"]["id"]
    other = await make_tenant(svc.db, name="Other")
    for query, name in [
        (UPDATE, "updateWebhook"),
        (DELETE, "deleteWebhook"),
        (ROTATE, "rotateWebhookSecret"),
    ]:
        payload = (await gql(other.admin_token, query, id=hook_id, enabled=False)).ok()[name]
        assert [e["code"] for e in payload["errors"]] == ["NOT_FOUND"], name
    payload = (await gql(other.admin_token, TEST, id=hook_id)).ok()["sendTestWebhook"]
    assert payload == {
        "delivery": None,
        "errors": [{"code": "NOT_FOUND", "message": f"no webhook with id {hook_id}"}],
    }
    assert (await gql(other.viewer_token, HOOKS)).ok()["webhooks"] == []
    assert (await gql(tenant.viewer_token, HOOKS)).ok()["webhooks"][0]["enabled"] is True


async def test_refusals_come_back_as_invalid_input(
    gql: Gql, tenant: Tenant, receiver: Receiver, svc: Services
) -> None:
    # A server with the default settings (no private addresses, https only)
    strict = Gql(Services(svc.settings.with_overrides(webhook_allow_private=False), svc.db, svc.clock))
    localhost = await create(strict, tenant, "https://localhost/hook")
    assert localhost["webhook"] is None and localhost["secret"] is None
    (error,) = localhost["errors"]
    assert error["code"] == "INVALID_INPUT" and error["field"] == "url"
    assert "a loopback address" in error["message"]
    assert (await create(gql, tenant, "https://no-such-host.invalid/x"))["errors"][0][
        "code"
    ] == "INVALID_INPUT"
    # At most ten per account
    for i in range(10):
        assert (await create(gql, tenant, receiver.url(f"h{i}")))["errors"] == []
    eleventh = await create(gql, tenant, receiver.url("h10"))
    assert eleventh["errors"] == [
        {
            "code": "INVALID_INPUT",
            "message": "an account has at most 10 webhooks; delete one first",
            "field": None,
        }
    ]
    # A Slack webhook has no secret to rotate
    slack_tenant = await make_tenant(gql.services.db, name="Slacky")
    slack = (await gql(slack_tenant.admin_token, CREATE, url=receiver.url("s"), format="SLACK")).ok()
    rotated = (await gql(slack_tenant.admin_token, ROTATE, id=slack["createWebhook"]["webhook"]["id"])).ok()
    assert rotated["rotateWebhookSecret"]["errors"][0]["code"] == "INVALID_INPUT"


async def test_update_delete_and_the_deliveries_list(
    gql: Gql, tenant: Tenant, receiver: Receiver, svc: Services, clock: FakeClock
) -> None:
    hook_id = (await create(gql, tenant, receiver.url("a"), actions=["APPROVED"]))["webhook"]["id"]
    updated = (await gql(tenant.admin_token, UPDATE, id=hook_id, url=receiver.url("b"), actions=[])).ok()
    assert updated["updateWebhook"]["webhook"]["url"] == receiver.url("b")
    assert updated["updateWebhook"]["webhook"]["actions"] == ALL_ACTIONS

    for _ in range(3):
        sent = (await gql(tenant.admin_token, TEST, id=hook_id)).ok()["sendTestWebhook"]
        assert sent["errors"] == [] and sent["delivery"]["action"] is None
        assert sent["delivery"]["userId"] is None and sent["delivery"]["status"] == "PENDING"
        clock.advance(seconds=1)
    await send_due(svc)
    assert [h.path for h in receiver.hits] == ["b", "b", "b"]

    page = (await gql(tenant.viewer_token, HOOKS, first=2)).ok()["webhooks"][0]["deliveries"]
    assert page["totalCount"] == 3 and page["pageInfo"]["hasNextPage"] is True
    nodes = [e["node"] for e in page["edges"]]
    assert [int(n["id"]) for n in nodes] == sorted((int(n["id"]) for n in nodes), reverse=True)
    assert {(n["status"], n["attempts"], n["lastResponseCode"], n["nextAttemptAt"]) for n in nodes} == {
        ("DELIVERED", 1, 204, None)
    }
    rest = (await gql(tenant.viewer_token, HOOKS, first=2, after=page["pageInfo"]["endCursor"])).ok()
    assert len(rest["webhooks"][0]["deliveries"]["edges"]) == 1
    assert (await gql(tenant.viewer_token, HOOKS, first=0)).codes == ["BAD_USER_INPUT"]

    # History is kept for 7 days (the retention job)
    clock.advance(days=7, seconds=1)
    await retention.purge(svc.db, clock())
    assert await deliveries(svc.db) == []

    deleted = (await gql(tenant.admin_token, DELETE, id=hook_id)).ok()["deleteWebhook"]
    assert deleted == {"deletedId": hook_id, "errors": []}
    assert (await gql(tenant.admin_token, HOOKS)).ok()["webhooks"] == []


@pytest.fixture
async def server(svc: Services) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(svc.settings, db=svc.db, clock=svc.clock)
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        yield client


async def test_through_a_real_server_an_ingested_arrival_reaches_the_receiver_without_a_tick(
    server: httpx.AsyncClient, tenant: Tenant, receiver: Receiver, clock: FakeClock
) -> None:
    auth = {"Authorization": f"Bearer {tenant.admin_token}"}
    made = await server.post(
        "/graphql", json={"query": CREATE, "variables": {"url": receiver.url("live")}}, headers=auth
    )
    secret = made.json()["data"]["createWebhook"]["secret"]
    answer = await server.post(
        "/ingest",
        json=batch_body("PC-1", "jane", start=clock() - timedelta(minutes=5)),
        headers={"Authorization": f"Bearer {tenant.ingest_key}"},
    )
    assert answer.status_code == 202 and answer.json()["status"] == "PENDING"
    # Woken by the commit: no scheduled tick is awaited here
    (hit,) = await receiver.wait_for(1, "live")
    assert Verifier(secret).verify(hit.body, hit.headers)["data"]["userId"] == answer.json()["userId"]
