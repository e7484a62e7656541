"""A websocket never holds a database connection or a snapshot between its messages (docs/api.md).

Regression: each socket kept the read session it authenticated with, and every query over
the socket (and every shared subscription reading suggestions) began a transaction on it
that nothing ended. Sixteen idle sockets exhausted the read pool (8 + 8), after which
/healthz, other tenants' requests and new sockets waited out the pool timeout; a later
query on the same socket still saw its first snapshot; and the open read transactions
kept SQLite's WAL from checkpointing.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import websockets

from server.infra.db import Database
from tests.live.helpers import LiveServer, Subscriber, init, raw_socket
from tests.support import make_tenant

# More sockets than the read pool has connections (pool_size 8 + max_overflow 8).
SOCKETS = 20
ACCOUNT = "{ account { id licensesUsed pendingCount } }"


async def _query(ws: websockets.ClientConnection, op_id: str, query: str) -> dict[str, Any]:
    """Run one operation on the socket and wait for its ``complete``; its data."""
    await ws.send(json.dumps({"id": op_id, "type": "subscribe", "payload": {"query": query}}))
    data: dict[str, Any] | None = None
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert message.get("id") == op_id, message
        if message["type"] == "next":
            assert "errors" not in message["payload"], message
            data = message["payload"]["data"]
        elif message["type"] == "complete":
            assert data is not None
            return data
        else:
            raise AssertionError(message)


def checked_out(db: Database) -> int:
    """Read connections lent out right now."""
    return int(db.read_engine.pool.checkedout())  # type: ignore[attr-defined]


async def none_lent(db: Database) -> None:
    """Every read connection comes back to the pool. The client may hold an answer before the
    connection that served it is back (on PostgreSQL, returning it is a rollback round trip),
    so this waits for it; a socket that kept its connection keeps it, and this fails."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while checked_out(db):
        assert loop.time() < deadline, f"{checked_out(db)} read connection(s) still lent out"
        await asyncio.sleep(0.01)


async def test_idle_sockets_that_ran_a_query_hold_no_connection_and_see_new_commits(
    server: LiveServer, db: Database
) -> None:
    tenant = await make_tenant(db, licenses=1)
    other = await make_tenant(db, name="Other")
    await server.ingest(tenant.ingest_key, "PC-0", "first")  # takes the only license
    sockets = [await raw_socket(server) for _ in range(SOCKETS)]
    try:
        for ws in sockets:
            await init(ws, tenant.viewer_token)
        # Every socket runs a query and stays open.
        for i, ws in enumerate(sockets):
            data = await _query(ws, f"q{i}", ACCOUNT)
            assert data["account"]["pendingCount"] == 0
        await none_lent(db)

        # Others are served: another tenant over HTTP, a new socket, the health check.
        assert (await server.gql(other.admin_token, ACCOUNT))["account"]["licensesUsed"] == 0
        async with Subscriber(server, other.admin_token, other.account_id):
            pass
        assert (await server.http.get("/healthz")).status_code == 200

        # A later query on the same socket sees what committed since its first one.
        await server.ingest(tenant.ingest_key, "PC-1", "second")  # over the limit: pending
        again = await _query(sockets[0], "again", ACCOUNT)
        assert again["account"]["pendingCount"] == 1
        await none_lent(db)
    finally:
        for ws in sockets:
            await ws.close()


async def test_subscriptions_that_read_suggestions_hold_no_connection_between_events(
    server: LiveServer, db: Database
) -> None:
    tenant = await make_tenant(db, licenses=1)
    # A local account (its domain is its device), later seen on re-imaged laptops.
    await server.ingest(tenant.ingest_key, "LAPTOP-7", "jdoe", domain="LAPTOP-7", display="Jane Doe")
    # Distinct documents, so each is its own shared rendering with its own context.
    subscribers = [
        Subscriber(
            server,
            tenant.admin_token,
            tenant.account_id,
            f"subscription S{i} {{ pendingQueueChanged {{ action user {{ id suggestions {{ score }} }} }} }}",
        )
        for i in range(SOCKETS)
    ]
    for sub in subscribers:
        await sub.__aenter__()
    try:
        assert server.graphql.live_hub.rendering_count() == SOCKETS
        # A re-imaged laptop: pending, with a likely match that each rendering reads.
        await server.ingest(tenant.ingest_key, "LAPTOP-7B", "jdoe", domain="LAPTOP-7B", display="Jane Doe")
        for sub in subscribers:
            event = await sub.next()
            assert event["user"]["suggestions"], event
        await none_lent(db)
        # And the next event is read from a fresh snapshot, not the first event's.
        await server.ingest(tenant.ingest_key, "LAPTOP-7C", "jdoe", domain="LAPTOP-7C", display="Jane Doe")
        for sub in subscribers:
            event = await sub.next()
            assert event["user"]["suggestions"], event
        await none_lent(db)
        assert (await server.gql(tenant.viewer_token, ACCOUNT))["account"]["pendingCount"] == 2
    finally:
        for sub in subscribers:
            await sub.__aexit__(None, None, None)
