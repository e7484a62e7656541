"""Undo across two ``plm serve`` processes on one PostgreSQL: two admins undoing the same entry at
once, through both processes, leave exactly one success; and an undo racing new arrivals never
breaks the license invariant."""

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

REMOVE = "mutation($ids: [ID!]!) { removeUsers(input: {userIds: $ids}) { errors { code } } }"
RELEASE = "mutation($ids: [ID!]!) { releaseLicenses(input: {userIds: $ids}) { errors { code } } }"
UNDO = """mutation($ids: [ID!]!) { undoActions(input: {auditEntryIds: $ids}) {
  users { id status } errors { code } } }"""
AUDIT = "{ auditLog(first: 50) { edges { node { id action userId undoableUntil } } } }"
USAGE = "{ account { licenseLimit licensesUsed pendingCount } }"


@pytest.fixture
def two_servers(postgres: PostgresServer) -> Iterator[Serving]:
    with serving_twice(postgres) as started:
        yield started


class Api:
    def __init__(self, servers: list[ServerProcess], tokens: list[str], ingest_key: str) -> None:
        self.clients = [httpx.AsyncClient(base_url=s.url, timeout=60) for s in servers]
        self.tokens = tokens
        self.ingest_key = ingest_key

    async def gql(self, i: int, query: str, **variables: Any) -> Any:
        answer = await self.clients[i % 2].post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {self.tokens[i % len(self.tokens)]}"},
        )
        assert answer.status_code == 200, answer.text
        return answer.json()["data"]

    async def arrive(self, i: int, name: str) -> dict[str, Any]:
        sent = await self.clients[i % 2].post(
            "/ingest", json=batch_body(name, name), headers={"Authorization": f"Bearer {self.ingest_key}"}
        )
        assert sent.status_code == 202, sent.text
        found: dict[str, Any] = sent.json()
        return found

    async def entries(self, action: str) -> list[str]:
        edges = (await self.gql(0, AUDIT))["auditLog"]["edges"]
        return [e["node"]["id"] for e in edges if e["node"]["action"] == action]

    async def close(self) -> None:
        for c in self.clients:
            await c.aclose()


def setup(env: dict[str, str], servers: list[ServerProcess], licenses: int) -> Api:
    account = plm(env, "account", "create", "--name", "Acme", "--licenses", str(licenses))
    tokens = [
        plm(
            env,
            "admin",
            "create",
            "--account",
            account["id"],
            "--email",
            f"{who}@acme.example",
            "--name",
            who,
        )["token"]
        for who in ("ann", "bob")
    ]
    return Api(servers, tokens, account["ingestKey"])


async def test_two_admins_undoing_one_entry_at_once_leave_exactly_one_success(two_servers: Serving) -> None:
    env, servers = two_servers
    api = setup(env, servers, licenses=0)
    try:
        queued = [(await api.arrive(i, f"pc-{i}"))["userId"] for i in range(2)]
        assert (await api.gql(0, REMOVE, ids=queued))["removeUsers"]["errors"] == []
        removals = await api.entries("REMOVED")
        # Ann and Bob, through both processes, each twice, at once.
        answers = await asyncio.gather(*(api.gql(i, UNDO, ids=removals) for i in range(4)))
        codes = sorted(str([e["code"] for e in a["undoActions"]["errors"]]) for a in answers)
        assert codes == ["['NOT_UNDOABLE']"] * 3 + ["[]"]
        assert len(await api.entries("UNDONE")) == 2
        assert (await api.gql(1, USAGE))["account"] == {
            "licenseLimit": 0,
            "licensesUsed": 0,
            "pendingCount": 2,
        }
    finally:
        await api.close()


async def test_undoing_releases_while_newcomers_arrive_never_passes_the_limit(two_servers: Serving) -> None:
    env, servers = two_servers
    api = setup(env, servers, licenses=6)
    try:
        licensed = [(await api.arrive(i, f"pc-{i}"))["userId"] for i in range(6)]
        for uid in licensed:
            assert (await api.gql(0, RELEASE, ids=[uid]))["releaseLicenses"]["errors"] == []
        releases = await api.entries("RELEASED")
        # Six undos, one per release, against six newcomers taking the freed licenses.
        undos, newcomers = await asyncio.gather(
            asyncio.gather(*(api.gql(i, UNDO, ids=[entry]) for i, entry in enumerate(releases))),
            asyncio.gather(*(api.arrive(i, f"new-{i}") for i in range(6))),
        )
        assert all(a["undoActions"]["errors"] == [] for a in undos)
        back = [u["status"] for a in undos for u in a["undoActions"]["users"]]
        # Whoever came back without a free license came back pending, and the payload says so.
        assert back.count("LICENSED") + [n["status"] for n in newcomers].count("LICENSED") == 6
        usage = (await api.gql(1, USAGE))["account"]
        assert usage == {"licenseLimit": 6, "licensesUsed": 6, "pendingCount": 6}
    finally:
        await api.close()
