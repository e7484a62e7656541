"""The client's API object: one pooled HTTP connection, and nothing opened once it is closed."""

from __future__ import annotations

import asyncio

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.typing import Subprotocol

from tests.tui.conftest import LiveServer
from tui_client.api import ConnectionLost, PlmApi


async def test_a_closed_api_opens_no_new_connection(live: LiveServer) -> None:
    """A worker that starts while the app shuts down must not leave a socket nobody closes."""
    api = PlmApi(live.graphql_url, live.tenant.admin_token)
    assert (await api.account()).license_limit == 3
    await api.close()
    with pytest.raises(ConnectionLost):
        await api.account()
    assert api._client is None and api._session is None
    await api.close()  # twice is fine


async def test_a_live_connection_cancelled_before_its_ack_is_closed() -> None:
    """Quitting while the server has not acknowledged the live connection yet closes the socket.

    gql's ``async with client`` closes nothing when the connect itself is interrupted, so the
    socket stayed open until the garbage collector found it (a ``ResourceWarning`` in whatever
    ran next). The server here accepts the websocket and never acknowledges it.
    """
    got_init, closed = asyncio.Event(), asyncio.Event()

    async def never_ack(ws: ServerConnection) -> None:
        await ws.recv()  # connection_init
        got_init.set()
        await ws.wait_closed()
        closed.set()

    async with serve(never_ack, "127.0.0.1", 0, subprotocols=[Subprotocol("graphql-transport-ws")]) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        api = PlmApi(f"http://127.0.0.1:{port}/graphql", "token")
        live = asyncio.create_task(anext(api.queue_events()))
        await asyncio.wait_for(got_init.wait(), 10)
        live.cancel()
        with pytest.raises(asyncio.CancelledError):
            await live
        # Otherwise the client never closes: the server waits until this times out.
        await asyncio.wait_for(closed.wait(), 10)
        await api.close()


async def test_closing_the_api_closes_a_live_connection_its_worker_left_open(live: LiveServer) -> None:
    """The backstop when a worker does not finish in time on exit: ``close`` ends the stream."""
    api = PlmApi(live.graphql_url, live.tenant.admin_token)
    connected = asyncio.Event()
    reader = asyncio.create_task(anext(api.queue_events(on_connected=connected.set)))
    await asyncio.wait_for(connected.wait(), 10)
    await api.close()
    with pytest.raises((StopAsyncIteration, ConnectionLost)):  # the stream ends, one way or the other
        await asyncio.wait_for(reader, 10)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while live.subscribers():  # the server notices the socket closing
        assert loop.time() < deadline, "the server still counts the subscription"
        await asyncio.sleep(0.01)
    with pytest.raises(ConnectionLost):
        await anext(api.queue_events())  # and nothing new opens
