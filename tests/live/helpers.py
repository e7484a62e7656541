"""Drivers for live-queue tests: a real server, gql subscribers, raw websockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import websockets
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute

from server.graphql.http import GraphQLApp
from server.infra.broadcast import MemoryBroker
from server.web.runtime import Services
from tests.support import batch_body

PROTOCOL = WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL  # "graphql-transport-ws"

EVENT = """
subscription Live {
  pendingQueueChanged {
    action userId at
    user {
      id displayName status licensedAt
      agents { id deviceName domain logonName user { id status } }
      pending { reason enteredAt retainedEventCount retainedActiveSeconds }
    }
    account { id name licenseLimit licensesUsed licensesAvailable pendingCount manualReview }
    actor { id name role }
    target { id status agents { logonName } pending { retainedEventCount } }
  }
}
"""

WAIT = 10.0


@dataclass
class LiveServer:
    app: Starlette
    base: str
    http: httpx.AsyncClient

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, app: Starlette, base: str) -> AsyncIterator[LiveServer]:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            yield cls(app, base, http)

    @property
    def ws_url(self) -> str:
        return self.base.replace("http://", "ws://") + "/graphql"

    @property
    def port(self) -> int:
        return int(self.base.rsplit(":", 1)[1])

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    @property
    def broker(self) -> MemoryBroker:
        return self.services.db.broadcaster.broker

    @property
    def graphql(self) -> GraphQLApp:
        route = next(r for r in self.app.routes if isinstance(r, WebSocketRoute))
        assert isinstance(route.app, GraphQLApp)
        return route.app

    async def gql(self, token: str, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
        )
        body: dict[str, Any] = response.json()
        assert response.status_code == 200 and not body.get("errors"), body
        data: dict[str, Any] = body["data"]
        return data

    async def ingest(self, key: str, device: str, logon: str, **kw: Any) -> dict[str, Any]:
        response = await self.http.post(
            "/ingest", json=batch_body(device, logon, **kw), headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status_code == 202, response.text
        body: dict[str, Any] = response.json()
        return body


class Subscriber:
    """A gql client subscribed over graphql-transport-ws; events collect on a queue.

    Entering returns only once the server registered the subscription with the broker,
    so a test can act right away without sleeping.
    """

    def __init__(self, server: LiveServer, token: str, account_id: int, query: str = EVENT) -> None:
        self.server = server
        self.account_id = account_id
        self.query = query
        self.transport = WebsocketsTransport(
            url=server.ws_url,
            subprotocols=[PROTOCOL],
            init_payload={"Authorization": f"Bearer {token}"},
            connect_timeout=WAIT,
            ack_timeout=WAIT,
            close_timeout=2,
        )
        self.events: asyncio.Queue[dict[str, Any] | BaseException] = asyncio.Queue()
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Subscriber:
        before = self.server.broker.subscriber_count(self.account_id)
        client = Client(transport=self.transport, fetch_schema_from_transport=False)
        session = await self._stack.enter_async_context(client)

        async def consume() -> None:
            try:
                async for data in session.subscribe(GraphQLRequest(self.query)):
                    self.events.put_nowait(data["pendingQueueChanged"])
            except Exception as exc:
                self.events.put_nowait(exc)

        task = asyncio.create_task(consume())
        self._stack.push_async_callback(_cancel, task)
        await asyncio.wait_for(self.server.broker.wait_for_subscribers(self.account_id, before + 1), WAIT)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def next(self) -> dict[str, Any]:
        item = await asyncio.wait_for(self.events.get(), WAIT)
        if isinstance(item, BaseException):
            raise item
        return item

    async def take(self, n: int) -> list[dict[str, Any]]:
        return [await self.next() for _ in range(n)]


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def raw_socket(
    server: LiveServer, *, subprotocols: list[str] | None = None, **kwargs: Any
) -> websockets.ClientConnection:
    """A plain websocket to /graphql: for close codes gql does not show, and for misbehaving."""
    return await websockets.connect(
        server.ws_url,
        subprotocols=[websockets.Subprotocol(p) for p in (subprotocols or [PROTOCOL])],
        compression=None,
        open_timeout=WAIT,
        **kwargs,
    )


async def init(ws: websockets.ClientConnection, token: str) -> None:
    await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
    ack = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
    assert ack["type"] == "connection_ack", ack


async def closed_with(ws: websockets.ClientConnection) -> int | None:
    """Read until the server closes; the close code it sent."""
    with contextlib.suppress(websockets.ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), WAIT)
    return ws.close_code


def tiny_receive_buffer(port: int) -> socket.socket:
    """A connected socket whose receive window is a few kB: a client that stops reading
    makes the server's sends block after little data, as a stuck client on a real network."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock
