"""Several ``plm serve`` processes on one PostgreSQL: the license invariant across processes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests import pg
from tests.support import REPO, ServerProcess, batch_body


def plm(env: dict[str, str], *args: str) -> dict[str, str]:
    out = subprocess.run([sys.executable, "-m", "server.cli", *args], env=env, cwd=REPO,
                         capture_output=True, text=True, check=True)
    result: dict[str, str] = json.loads(out.stdout)
    return result


@pytest.fixture
def two_servers(postgres: pg.PostgresServer) -> Iterator[tuple[dict[str, str], list[ServerProcess]]]:
    url = postgres.create_database()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLM_")}
    env.update(PLM_DATABASE_URL=url, PLM_LOG_LEVEL="warning")
    servers = [ServerProcess(env).start(), ServerProcess(env).start()]
    try:
        yield env, servers
    finally:
        for s in servers:
            s.stop()
        postgres.drop_database(url)


APPROVE = "mutation($ids: [ID!]!) { approvePendingUsers(input: {userIds: $ids}) { approved { id } errors { code message } } }"


async def test_the_license_invariant_holds_across_two_processes(
    two_servers: tuple[dict[str, str], list[ServerProcess]],
) -> None:
    env, servers = two_servers
    account = plm(env, "account", "create", "--name", "Acme", "--licenses", "25")
    admin = plm(env, "admin", "create", "--account", account["id"], "--email", "a@acme.example", "--name", "Ann")
    ingest = {"Authorization": f"Bearer {account['ingestKey']}"}
    clients = [httpx.AsyncClient(base_url=s.url, timeout=60, limits=httpx.Limits(max_connections=100)) for s in servers]
    try:
        # 200 concurrent new agents, split across the two processes.
        responses = await asyncio.gather(*(
            clients[i % 2].post("/ingest", json=batch_body(f"PC-{i}", f"user{i}", events=2), headers=ingest)
            for i in range(200)
        ))
        assert {r.status_code for r in responses} == {202}
        statuses = [r.json()["status"] for r in responses]
        assert (statuses.count("LICENSED"), statuses.count("PENDING")) == (25, 175)
        pending = [r.json()["userId"] for r in responses if r.json()["status"] == "PENDING"]

        # One more seat; 50 concurrent approvals of 50 different pending users through both.
        plm(env, "account", "set-limit", "--account", account["id"], "--licenses", "26")
        auth = {"Authorization": f"Bearer {admin['token']}"}
        answers = await asyncio.gather(*(
            clients[i % 2].post("/graphql", json={"query": APPROVE, "variables": {"ids": [pending[i]]}}, headers=auth)
            for i in range(50)
        ))
        assert {a.status_code for a in answers} == {200}
        payloads = [a.json()["data"]["approvePendingUsers"] for a in answers]
        assert sum(len(p["approved"]) for p in payloads) == 1
        refused = [p["errors"][0]["code"] for p in payloads if not p["approved"]]
        assert refused == ["LICENSE_LIMIT_EXCEEDED"] * 49
        usage = await clients[1].post("/graphql", json={"query": "{ account { licensesUsed pendingCount } }"}, headers=auth)
        assert usage.json()["data"]["account"] == {"licensesUsed": 26, "pendingCount": 174}
    finally:
        for c in clients:
            await c.aclose()
