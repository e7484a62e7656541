"""A database that goes away never yields a 500 (docs/behaviour.md: an unavailable database).

A real ``plm serve`` on a PostgreSQL of its own, which each test stops, freezes (SIGSTOP on
every PostgreSQL process, as a paused VM) or keeps down at start, then brings back. Every
route must answer 503 with ``Retry-After`` within seconds (GraphQL: HTTP 503 and
``SERVICE_UNAVAILABLE``; websockets: close 1013), ``/healthz`` stays 200 (liveness),
``/readyz`` says 503, and the server recovers by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from server.infra.broadcast import LOST_EVENT_STREAM
from server.infra.db import Database
from tests import pg
from tests.support import ServerProcess, Tenant, batch_body, make_tenant

# Short timeouts keep the test fast; the defaults are documented in the README.
FAST = {
    "PLM_REQUEST_TIMEOUT_SECONDS": "4",
    "PLM_DB_CONNECT_TIMEOUT_SECONDS": "2",
    "PLM_DB_POOL_TIMEOUT_SECONDS": "2",
    "PLM_DB_STATEMENT_TIMEOUT_SECONDS": "2",
}
# Long enough for any answer the server owes within its request timeout, short enough that a
# server hanging for the length of the outage fails the test.
CLIENT_TIMEOUT = 15.0
ACCOUNT = "{ account { id licensesUsed pendingCount } }"


@pytest.fixture(scope="module")
def outage_pg() -> Iterator[pg.PostgresServer]:
    """A PostgreSQL of this module's own: the tests stop and freeze it."""
    server = pg.PostgresServer()
    yield server
    server.stop()


class Served:
    def __init__(self, proc: ServerProcess, tenant: Tenant, cold_key: str) -> None:
        self.proc = proc
        self.tenant = tenant
        # An ingest key the server has never seen, so it is not in its key cache.
        self.cold_key = cold_key
        self.http = httpx.Client(base_url=proc.url, timeout=CLIENT_TIMEOUT)

    def ingest(self, key: str, device: str, **kw: Any) -> httpx.Response:
        return self.http.post(
            "/ingest",
            json=batch_body(device, device.lower(), **kw),
            headers={"Authorization": f"Bearer {key}"},
        )

    def graphql(self, query: str = ACCOUNT) -> httpx.Response:
        return self.http.post(
            "/graphql", json={"query": query}, headers={"Authorization": f"Bearer {self.tenant.admin_token}"}
        )

    def ws_close_code(self) -> tuple[int | None, str]:
        """Open a websocket, send connection_init, and return how the server closed it."""

        async def run() -> tuple[int | None, str]:
            ws = await websockets.connect(
                self.proc.url.replace("http", "ws") + "/graphql",
                subprotocols=[websockets.Subprotocol("graphql-transport-ws")],
                open_timeout=CLIENT_TIMEOUT,
            )
            init = {
                "type": "connection_init",
                "payload": {"Authorization": f"Bearer {self.tenant.admin_token}"},
            }
            await ws.send(json.dumps(init))
            with contextlib.suppress(websockets.ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), CLIENT_TIMEOUT)
            return ws.close_code, ws.close_reason or ""

        return asyncio.run(run())

    def until(self, ok: Any, what: str, within: float = 30.0) -> None:
        """Poll ``ok()`` (an agent retrying) until it holds."""
        deadline = time.monotonic() + within
        while not ok():
            assert time.monotonic() < deadline, (
                f"the server did not recover: {what}\n{self.proc.output()[-3000:]}"
            )
            time.sleep(0.2)


def assert_unavailable(response: httpx.Response, graphql: bool = False) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) >= 1
    if graphql:
        body = response.json()
        assert body["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE", body
        assert response.headers["X-Request-ID"]


def assert_clean_log(proc: ServerProcess) -> None:
    """No 500 answered, no traceback logged for any of it."""
    output = proc.output()
    assert "Traceback" not in output, output[-4000:]
    assert not re.search(r'HTTP/1.1" 500', output), output[-4000:]


@pytest.fixture
def served(outage_pg: pg.PostgresServer) -> Iterator[Served]:
    url = outage_pg.create_database()

    async def tenants() -> tuple[Tenant, Tenant]:
        db = Database(url)
        try:
            return await make_tenant(db, licenses=2), await make_tenant(db, name="Cold")
        finally:
            await db.dispose()

    tenant, cold = asyncio.run(tenants())
    proc = ServerProcess({"PLM_DATABASE_URL": url, **FAST}).start()
    s = Served(proc, tenant, cold.ingest_key)
    try:
        yield s
    finally:
        s.http.close()
        # Whatever the test did to the database, bring it back before the next one.
        if outage_pg.proc.poll() is None:
            outage_pg.resume()
        else:
            outage_pg.start()
        proc.stop()
        outage_pg.drop_database(url)


def test_a_stopped_database_is_a_503_everywhere_and_the_server_recovers(
    served: Served, outage_pg: pg.PostgresServer
) -> None:
    key = served.tenant.ingest_key
    assert served.ingest(key, "PC-1").status_code == 202  # the key is now cached
    assert served.graphql().status_code == 200

    outage_pg.halt()
    assert_unavailable(served.ingest(key, "PC-2"))
    assert_unavailable(served.ingest(served.cold_key, "PC-3"))  # the key lookup itself
    assert_unavailable(served.graphql(), graphql=True)  # authentication itself
    assert served.ws_close_code()[0] == 1013
    assert served.http.get("/healthz").status_code == 200
    assert_unavailable(served.http.get("/readyz"))

    outage_pg.start()
    served.until(lambda: served.ingest(key, "PC-2").status_code == 202, "ingest")
    served.until(lambda: served.graphql().status_code == 200, "graphql")
    served.until(lambda: served.http.get("/readyz").status_code == 200, "readyz")
    assert served.ingest(served.cold_key, "PC-3").status_code == 202
    assert served.graphql().json()["data"]["account"]["licensesUsed"] == 2
    assert_clean_log(served.proc)


def test_a_paused_database_gives_503s_within_seconds_and_nothing_is_stored_twice(
    served: Served, outage_pg: pg.PostgresServer
) -> None:
    key = served.tenant.ingest_key
    assert served.ingest(key, "PC-1").status_code == 202
    outage_pg.pause()
    # Many agents at once while it is frozen: every one is told to retry, none waits forever.
    bodies = [batch_body(f"PC-{i}", f"u{i}", batch_id=f"paused-{i}", events=20) for i in range(40)]

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=served.proc.url, timeout=CLIENT_TIMEOUT) as client:
            return await asyncio.gather(
                *(client.post("/ingest", json=b, headers={"Authorization": f"Bearer {key}"}) for b in bodies)
            )

    for response in asyncio.run(burst()):
        assert_unavailable(response)
    assert_unavailable(served.graphql(), graphql=True)
    assert served.ws_close_code()[0] == 1013
    assert served.http.get("/healthz").status_code == 200
    assert_unavailable(served.http.get("/readyz"))

    outage_pg.resume()

    # The agents retry the same batches: each is stored once, whatever happened to it before.
    def all_stored() -> bool:
        return all(
            served.http.post("/ingest", json=b, headers={"Authorization": f"Bearer {key}"}).status_code == 202
            for b in bodies
        )

    served.until(all_stored, "ingest after the pause")
    counts = served.graphql("{ account { licensesUsed pendingCount } }").json()["data"]["account"]
    assert counts["licensesUsed"] + counts["pendingCount"] == 41
    assert_clean_log(served.proc)


def spawn_waiting(proc: ServerProcess) -> None:
    """Start ``plm serve`` and return once it logs that it waits for its database."""
    proc.spawn()
    deadline = time.monotonic() + 30
    while "waiting for the database" not in proc.output():
        assert proc.proc is not None and proc.proc.poll() is None, proc.output()
        assert time.monotonic() < deadline, proc.output()
        time.sleep(0.1)


def test_plm_serve_waits_for_a_database_that_is_down_at_start(outage_pg: pg.PostgresServer) -> None:
    url = outage_pg.create_database()
    outage_pg.halt()
    proc = ServerProcess({"PLM_DATABASE_URL": url, **FAST})
    try:
        spawn_waiting(proc)
        assert "Traceback" not in proc.output()
        outage_pg.start()
        proc.wait_healthy()
        with httpx.Client(base_url=proc.url) as http:
            assert http.get("/readyz").status_code == 200
    finally:
        if outage_pg.proc.poll() is not None:
            outage_pg.start()
        proc.stop()
        outage_pg.drop_database(url)


def test_plm_serve_waiting_for_its_database_stops_on_sigterm(outage_pg: pg.PostgresServer) -> None:
    url = outage_pg.create_database()
    outage_pg.halt()
    proc = ServerProcess({"PLM_DATABASE_URL": url, **FAST})
    try:
        spawn_waiting(proc)
        proc.stop()  # fails the test if SIGTERM is ignored for 10 s
        assert proc.proc is not None and proc.proc.returncode == 0, proc.output()
    finally:
        outage_pg.start()
        outage_pg.drop_database(url)


def test_subscribers_hear_why_when_the_event_stream_is_lost(
    outage_pg: pg.PostgresServer,
) -> None:
    """Told "lost its connection to the database's event stream", not "fell behind"."""
    url = outage_pg.create_database()

    async def tenant() -> Tenant:
        db = Database(url)
        try:
            return await make_tenant(db)
        finally:
            await db.dispose()

    t = asyncio.run(tenant())
    broadcast = url.replace("postgresql+asyncpg://", "postgres://")
    proc = ServerProcess({"PLM_DATABASE_URL": url, "PLM_BROADCAST_URL": broadcast, **FAST}).start()

    async def run() -> tuple[int | None, str]:
        ws = await websockets.connect(
            proc.url.replace("http", "ws") + "/graphql",
            subprotocols=[websockets.Subprotocol("graphql-transport-ws")],
        )
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {t.admin_token}"}})
        )
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        sub = {"query": "subscription { pendingQueueChanged { action } }"}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": sub}))
        # Subscribed once an arrival reaches it.
        async with httpx.AsyncClient(base_url=proc.url) as http:
            body = batch_body("PC-1", "u1")
            for attempt in range(50):
                body["batchId"] = f"probe-{attempt}"
                body["agent"]["logonName"] = f"u{attempt}"
                await http.post("/ingest", json=body, headers={"Authorization": f"Bearer {t.ingest_key}"})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ws.recv(), 0.5)
                    break
        await outage_pg.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"
        )
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), CLIENT_TIMEOUT)
        return ws.close_code, ws.close_reason or ""

    try:
        code, reason = asyncio.run(run())
        assert (code, reason) == (4410, LOST_EVENT_STREAM)
    finally:
        proc.stop()
        outage_pg.drop_database(url)
