"""``plm serve`` as operators run it: what its log keeps, what its websockets accept."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import httpx
import websockets

from server.graphql.http import MAX_FRAME_BYTES
from tests.e2e.test_server_process import base_env
from tests.support import plm, server_process

SECRET = "plm_" + "s3cr3t" * 7


def test_query_strings_never_reach_the_access_log(tmp_path: Path) -> None:
    """A token put in a URL is refused, and must not be written down on the way either."""
    env = {**base_env(tmp_path), "PLM_LOG_LEVEL": "info"}
    with server_process(env) as server:
        with httpx.Client(base_url=server.url) as http:
            assert (
                http.get(f"/graphql?token={SECRET}", headers={"Accept": "application/json"}).status_code
                == 401
            )
            assert http.get("/healthz", params={"token": SECRET}).status_code == 200

        async def socket() -> None:
            with contextlib.suppress(websockets.WebSocketException, OSError):
                async with websockets.connect(
                    f"{server.url.replace('http', 'ws')}/graphql?token={SECRET}",
                    subprotocols=[websockets.Subprotocol("graphql-transport-ws")],
                ) as ws:
                    await ws.close()

        asyncio.run(socket())
    log = server.output()
    # The access log is on (one line per request: the route, never the path's query string).
    assert "GET /graphql 401 " in log and "GET /healthz 200 " in log
    assert "WebSocket /graphql" in log
    assert SECRET not in log and "token=" not in log


def test_plm_serve_refuses_websocket_messages_over_the_cap(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    plm(env, "account", "create", "--name", "Acme", "--licenses", "1")
    with server_process(env) as server:

        async def send_big() -> int | None:
            async with websockets.connect(
                f"{server.url.replace('http', 'ws')}/graphql",
                subprotocols=[websockets.Subprotocol("graphql-transport-ws")],
                max_size=None,
            ) as ws:
                await ws.send(
                    json.dumps({"type": "connection_init", "payload": {"pad": "x" * 4 * MAX_FRAME_BYTES}})
                )
                with contextlib.suppress(websockets.ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 10)
                return ws.close_code

        assert asyncio.run(send_big()) == 1009
        # The server is fine afterwards.
        assert httpx.get(f"{server.url}/healthz").status_code == 200
