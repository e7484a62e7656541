"""Seat plans across two ``plm serve`` processes on one PostgreSQL: a plan previewed on one
process is refused with PLAN_CHANGED after an arrival on the other, and of concurrent applies
of one plan through both processes exactly one lands."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.test_postgres_processes import serving_twice
from tests.pg import PostgresServer
from tests.support import ServerProcess, batch_body, plm

Serving = tuple[dict[str, str], list[ServerProcess]]


@pytest.fixture
def two_servers(postgres: PostgresServer) -> Iterator[Serving]:
    # A sync fixture: creating the database runs its own event loop.
    with serving_twice(postgres) as started:
        yield started


PREVIEW = (
    "query($ids: [ID!]!) { previewApproval(userIds: $ids) { approve { id } queueVersion errors { code } } }"
)
APPROVE = """mutation($ids: [ID!]!, $v: String) {
  approvePendingUsers(input: {userIds: $ids, expectedQueueVersion: $v}) { approved { id } errors { code } } }"""


async def test_a_plan_applies_only_while_the_queue_is_unchanged_on_every_process(
    two_servers: Serving,
) -> None:
    env, servers = two_servers
    account = plm(env, "account", "create", "--name", "Acme", "--licenses", "0")
    admin = plm(
        env, "admin", "create", "--account", account["id"], "--email", "a@acme.example", "--name", "A"
    )
    ingest = {"Authorization": f"Bearer {account['ingestKey']}"}
    auth = {"Authorization": f"Bearer {admin['token']}"}
    a, b = (httpx.AsyncClient(base_url=s.url, timeout=30) for s in servers)

    async def gql(client: httpx.AsyncClient, query: str, **variables: Any) -> Any:
        answer = await client.post("/graphql", json={"query": query, "variables": variables}, headers=auth)
        assert answer.status_code == 200, answer.text
        return answer.json()["data"]

    try:
        queued = []
        for i in range(3):
            sent = await a.post("/ingest", json=batch_body(f"PC-{i}", f"u{i}"), headers=ingest)
            assert sent.json()["status"] == "PENDING"
            queued.append(sent.json()["userId"])
        plm(env, "account", "set-limit", "--account", account["id"], "--licenses", "2")

        plan = (await gql(a, PREVIEW, ids=queued[:2]))["previewApproval"]
        assert plan["errors"] == [] and [u["id"] for u in plan["approve"]] == queued[:2]
        # An arrival through the other process: a newcomer takes one of the two free licenses.
        sent = await b.post("/ingest", json=batch_body("PC-NEW", "newcomer"), headers=ingest)
        assert sent.json()["status"] == "LICENSED"
        refused = (await gql(a, APPROVE, ids=queued[:2], v=plan["queueVersion"]))["approvePendingUsers"]
        assert refused == {"approved": [], "errors": [{"code": "PLAN_CHANGED"}]}
        again = (await gql(b, PREVIEW, ids=queued[:2]))["previewApproval"]
        assert again["errors"] == [{"code": "LICENSE_LIMIT_EXCEEDED"}]

        # A fresh plan, applied through both processes at once: exactly one apply lands.
        fresh = (await gql(b, PREVIEW, ids=queued[:1]))["previewApproval"]
        assert fresh["errors"] == [] and fresh["queueVersion"] != plan["queueVersion"]
        answers = await asyncio.gather(
            *(gql(c, APPROVE, ids=queued[:1], v=fresh["queueVersion"]) for c in (a, b, a, b))
        )
        codes = sorted(str([e["code"] for e in x["approvePendingUsers"]["errors"]]) for x in answers)
        assert codes == ["['PLAN_CHANGED']"] * 3 + ["[]"]
        usage = await gql(b, "{ account { licensesUsed pendingCount } }")
        assert usage["account"] == {"licensesUsed": 2, "pendingCount": 2}
    finally:
        await a.aclose()
        await b.aclose()


SETTINGS = """mutation($l: Int, $a: AutoApproveMode) {
  updateAccountSettings(input: {licenseLimit: $l, autoApprove: $a}) { errors { code } } }"""
REMOVE = "mutation($ids: [ID!]!) { removeUsers(input: {userIds: $ids}) { errors { code } } }"


async def test_the_auto_approval_rule_fills_freed_licenses_exactly_across_two_processes(
    two_servers: Serving,
) -> None:
    env, servers = two_servers
    account = plm(env, "account", "create", "--name", "Acme", "--licenses", "10")
    admin = plm(
        env, "admin", "create", "--account", account["id"], "--email", "a@acme.example", "--name", "A"
    )
    ingest = {"Authorization": f"Bearer {account['ingestKey']}"}
    auth = {"Authorization": f"Bearer {admin['token']}"}
    clients = [httpx.AsyncClient(base_url=s.url, timeout=60) for s in servers]

    async def gql(i: int, query: str, **variables: Any) -> Any:
        answer = await clients[i % 2].post(
            "/graphql", json={"query": query, "variables": variables}, headers=auth
        )
        assert answer.status_code == 200, answer.text
        return answer.json()["data"]

    async def arrive(i: int, name: str) -> dict[str, Any]:
        sent = await clients[i % 2].post("/ingest", json=batch_body(name, name), headers=ingest)
        assert sent.status_code == 202, sent.text
        found: dict[str, Any] = sent.json()
        return found

    try:
        first = [await arrive(i, f"pc-{i}") for i in range(30)]
        licensed = [a["userId"] for a in first if a["status"] == "LICENSED"]
        assert len(licensed) == 10
        assert (await gql(0, SETTINGS, a="OLDEST_FIRST"))["updateAccountSettings"]["errors"] == []
        # Removals, newcomers and a raised limit at once, through both processes: the rule
        # fills each freed license in the write that freed it, never past the limit.
        await asyncio.gather(
            *(gql(i, REMOVE, ids=[uid]) for i, uid in enumerate(licensed[:5])),
            *(arrive(i, f"new-{i}") for i in range(10)),
            gql(1, SETTINGS, l=12),
        )
        usage = (await gql(0, "{ account { licenseLimit licensesUsed pendingCount } }"))["account"]
        assert usage == {"licenseLimit": 12, "licensesUsed": 12, "pendingCount": 23}
    finally:
        for c in clients:
            await c.aclose()
