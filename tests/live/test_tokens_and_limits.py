"""/graphql over a real uvicorn and real websockets: rate limits, the socket cap, revocation."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets

from server.domain import accounts
from server.infra.db import Database
from server.infra.settings import Settings
from server.web.app import create_app
from tests.live.helpers import WAIT, LiveServer, closed_with, init, raw_socket
from tests.support import FakeClock, Tenant, serve_app

ME = "query Me { me { id } }"


@pytest.fixture
async def server(db: Database, db_url: str, clock: FakeClock) -> AsyncIterator[LiveServer]:
    settings = Settings(
        database_url=db_url,
        rate_limit_graphql="3/minute",
        rate_limit_unauthenticated="2/minute",
        max_ws_per_token=2,
    )
    app = create_app(settings, db=db, clock=clock)
    async with serve_app(app) as base, LiveServer.open(app, base) as live:
        yield live


async def post(server: LiveServer, token: str | None, query: str = ME) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await server.http.post("/graphql", json={"query": query}, headers=headers)


async def test_over_the_tokens_limit_graphql_answers_429_rate_limited(
    server: LiveServer, tenant: Tenant
) -> None:
    answers = [await post(server, tenant.admin_token) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    refused = await post(server, tenant.admin_token, "{ account { id } }")  # cacheable: counted too
    assert refused.status_code == 429
    seconds = int(refused.headers["retry-after"])
    assert 1 <= seconds <= 60 and refused.headers["x-request-id"]
    (error,) = refused.json()["errors"]
    assert error["extensions"] == {"code": "RATE_LIMITED", "retryAfter": seconds}
    # Per token: the viewer of the same account is not slowed down.
    assert (await post(server, tenant.viewer_token)).status_code == 200


async def test_failed_sign_ins_are_limited_per_address(server: LiveServer, tenant: Tenant) -> None:
    statuses = [(await post(server, token)).status_code for token in (None, "plm_wrong", None)]
    assert statuses == [401, 401, 429]
    assert (await post(server, tenant.admin_token)).status_code == 200


async def test_a_socket_operation_over_the_limit_gets_an_error_and_the_socket_stays(
    server: LiveServer, tenant: Tenant
) -> None:
    ws = await raw_socket(server)
    await init(ws, tenant.admin_token)
    for n in range(4):
        await ws.send(json.dumps({"id": str(n), "type": "subscribe", "payload": {"query": ME}}))
    answers = [json.loads(await asyncio.wait_for(ws.recv(), WAIT)) for _ in range(7)]
    by_id = {a["id"]: a for a in answers if a["type"] != "complete"}
    assert [by_id[str(n)]["type"] for n in range(4)] == ["next", "next", "next", "error"]
    # me over a socket: answered from the socket's context, who signed in on it.
    assert by_id["0"]["payload"] == {"data": {"me": {"id": str(tenant.admin_id)}}}
    assert by_id["3"]["payload"][0]["extensions"]["code"] == "RATE_LIMITED"
    await ws.send(json.dumps({"type": "ping"}))
    assert json.loads(await asyncio.wait_for(ws.recv(), WAIT))["type"] == "pong"
    await ws.close()


async def test_one_socket_over_the_tokens_cap_is_closed_with_4429(server: LiveServer, tenant: Tenant) -> None:
    first, second = [await raw_socket(server) for _ in range(2)]
    for ws in (first, second):
        await init(ws, tenant.admin_token)
    third = await raw_socket(server)
    await third.send(
        json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {tenant.admin_token}"}})
    )
    assert await closed_with(third) == 4429
    # Another token has its own share; a closed socket frees its place.
    other = await raw_socket(server)
    await init(other, tenant.viewer_token)
    await first.close()
    await asyncio.wait_for(server.graphql.sockets.wait_for_count(2), WAIT)
    again = await raw_socket(server)
    await init(again, tenant.admin_token)
    for ws in (second, other, again):
        await ws.close()


async def test_revoking_a_token_closes_its_sockets_with_4403_within_two_seconds(
    server: LiveServer, db: Database, tenant: Tenant, clock: FakeClock
) -> None:
    admin_ws, viewer_ws = await raw_socket(server), await raw_socket(server)
    await init(admin_ws, tenant.admin_token)
    await init(viewer_ws, tenant.viewer_token)
    await admin_ws.send(
        json.dumps(
            {
                "id": "live",
                "type": "subscribe",
                "payload": {"query": "subscription { pendingQueueChanged { action } }"},
            }
        )
    )
    await asyncio.wait_for(server.broker.wait_for_subscribers(tenant.account_id, 1), WAIT)
    async with db.write() as session:
        await accounts.revoke_admin(session, tenant.account_id, "admin@acme.example", clock())
    revoked_at = time.monotonic()
    assert await closed_with(admin_ws) == 4403
    assert time.monotonic() - revoked_at < 2.0
    assert admin_ws.close_reason == "the token was revoked or rotated"
    assert (await post(server, tenant.admin_token)).status_code == 401
    # The viewer's socket is untouched.
    await viewer_ws.send(json.dumps({"type": "ping"}))
    assert json.loads(await asyncio.wait_for(viewer_ws.recv(), WAIT))["type"] == "pong"
    await viewer_ws.close()
    with pytest.raises(websockets.ConnectionClosed):
        await admin_ws.send("{}")
