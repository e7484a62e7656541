"""Several ``plm serve`` processes on one PostgreSQL: the license invariant, the job lease, revocation."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
from collections.abc import Iterator

import httpx
import pytest
import websockets

from tests import pg
from tests.support import ServerProcess, batch_body, plm


@contextlib.contextmanager
def serving_twice(
    postgres: pg.PostgresServer, **extra: str
) -> Iterator[tuple[dict[str, str], list[ServerProcess]]]:
    url = postgres.create_database()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLM_")}
    env.update({"PLM_DATABASE_URL": url, "PLM_LOG_LEVEL": "warning", **extra})
    servers: list[ServerProcess] = []
    try:
        servers = [ServerProcess(env).start(), ServerProcess(env).start()]
        yield env, servers
    finally:
        for s in servers:
            s.stop()
        postgres.drop_database(url)


@pytest.fixture
def two_servers(postgres: pg.PostgresServer) -> Iterator[tuple[dict[str, str], list[ServerProcess]]]:
    with serving_twice(postgres) as started:
        yield started


APPROVE = "mutation($ids: [ID!]!) { approvePendingUsers(input: {userIds: $ids}) { approved { id } errors { code message } } }"


async def test_the_license_invariant_holds_across_two_processes(
    two_servers: tuple[dict[str, str], list[ServerProcess]],
) -> None:
    env, servers = two_servers
    account = plm(env, "account", "create", "--name", "Acme", "--licenses", "25")
    admin = plm(
        env, "admin", "create", "--account", account["id"], "--email", "a@acme.example", "--name", "Ann"
    )
    ingest = {"Authorization": f"Bearer {account['ingestKey']}"}
    clients = [
        httpx.AsyncClient(base_url=s.url, timeout=60, limits=httpx.Limits(max_connections=100))
        for s in servers
    ]
    try:
        # 200 concurrent new agents, split across the two processes.
        responses = await asyncio.gather(
            *(
                clients[i % 2].post(
                    "/ingest", json=batch_body(f"PC-{i}", f"user{i}", events=2), headers=ingest
                )
                for i in range(200)
            )
        )
        assert {r.status_code for r in responses} == {202}
        statuses = [r.json()["status"] for r in responses]
        assert (statuses.count("LICENSED"), statuses.count("PENDING")) == (25, 175)
        pending = [r.json()["userId"] for r in responses if r.json()["status"] == "PENDING"]

        # One more seat; 50 concurrent approvals of 50 different pending users through both.
        plm(env, "account", "set-limit", "--account", account["id"], "--licenses", "26")
        auth = {"Authorization": f"Bearer {admin['token']}"}
        answers = await asyncio.gather(
            *(
                clients[i % 2].post(
                    "/graphql", json={"query": APPROVE, "variables": {"ids": [pending[i]]}}, headers=auth
                )
                for i in range(50)
            )
        )
        assert {a.status_code for a in answers} == {200}
        payloads = [a.json()["data"]["approvePendingUsers"] for a in answers]
        assert sum(len(p["approved"]) for p in payloads) == 1
        refused = [p["errors"][0]["code"] for p in payloads if not p["approved"]]
        assert refused == ["LICENSE_LIMIT_EXCEEDED"] * 49
        usage = await clients[1].post(
            "/graphql", json={"query": "{ account { licensesUsed pendingCount } }"}, headers=auth
        )
        assert usage.json()["data"]["account"] == {"licensesUsed": 26, "pendingCount": 174}
    finally:
        for c in clients:
            await c.aclose()


TICK = re.compile(r"job notifications: tick (runs in (?P<holder>\S+)|skipped)")


def test_each_job_tick_runs_in_one_process_only(postgres: pg.PostgresServer) -> None:
    """Both processes schedule the digest job every few seconds; only the lease holder runs it."""
    with serving_twice(postgres, PLM_LOG_LEVEL="debug") as (_env, servers):
        deadline = time.monotonic() + 60
        while True:
            ticks = [[m for m in TICK.finditer(s.output())] for s in servers]
            ran = [[m["holder"] for m in t if m["holder"]] for t in ticks]
            skipped = [sum(1 for m in t if not m["holder"]) for t in ticks]
            # Two scheduled ticks in each process: every one either ran or skipped.
            if all(len(t) >= 2 for t in ticks):
                break
            assert time.monotonic() < deadline, f"too few ticks in a minute: {ticks}"
            time.sleep(0.2)
    # One process holds the lease and runs every tick; the other skips every tick.
    runner = 0 if ran[0] else 1
    assert ran[1 - runner] == [] and skipped[runner] == 0, (ran, skipped)
    assert len(set(ran[runner])) == 1 and skipped[1 - runner] >= 2, (ran, skipped)


async def test_a_revoked_token_stops_on_every_process_and_its_sockets_close_within_two_seconds(
    two_servers: tuple[dict[str, str], list[ServerProcess]],
) -> None:
    """Sockets on both processes; the CLI revokes; both close theirs, both refuse the token."""
    env, servers = two_servers
    account = plm(env, "account", "create", "--name", "Acme", "--licenses", "2")
    admin = plm(
        env, "admin", "create", "--account", account["id"], "--email", "a@acme.example", "--name", "Ann"
    )
    auth = {"Authorization": f"Bearer {admin['token']}"}
    sockets = [await subscribed(s.url, admin["token"]) for s in servers]
    async with httpx.AsyncClient(timeout=10) as http:
        assert [
            (await http.post(f"{s.url}/graphql", json=ME, headers=auth)).status_code for s in servers
        ] == [
            200,
            200,
        ]
        plm(env, "admin", "revoke", "--account", account["id"], "--email", "a@acme.example")
        revoked_at = time.monotonic()
        # At once, on both: no cache stands between a request and the token's row.
        assert [
            (await http.post(f"{s.url}/graphql", json=ME, headers=auth)).status_code for s in servers
        ] == [
            401,
            401,
        ]
        codes = await asyncio.gather(*(close_code(ws) for ws in sockets))
        assert codes == [4403, 4403] and time.monotonic() - revoked_at < 2.0

        rotated = plm(env, "admin", "rotate-token", "--account", account["id"], "--email", "a@acme.example")
        fresh = {"Authorization": f"Bearer {rotated['token']}"}
        assert [
            (await http.post(f"{s.url}/graphql", json=ME, headers=fresh)).status_code for s in servers
        ] == [
            200,
            200,
        ]


ME = {"query": "{ me { id } }"}


async def subscribed(url: str, token: str) -> websockets.ClientConnection:
    ws = await websockets.connect(
        url.replace("http", "ws") + "/graphql", subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
    )
    await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
    assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
    query = "subscription { pendingQueueChanged { action } }"
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
    return ws


async def close_code(ws: websockets.ClientConnection) -> int | None:
    with contextlib.suppress(websockets.ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), 10)
    return ws.close_code
