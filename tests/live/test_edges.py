"""Hostile or malformed requests at ``/graphql`` get a clean refusal, never a 500 (docs/api.md).

A real uvicorn, real sockets. Each case was a 500, a traceback per request in the log, an
abrupt close (1006), or an unbounded resource before the hardening issue.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re

import pytest

from server.graphql.http import MAX_BODY_BYTES, MAX_DOCUMENT_BYTES, MAX_FRAME_BYTES
from server.infra.db import Database
from tests.live.helpers import LiveServer, closed_with, init, raw_socket
from tests.support import make_tenant

ACCOUNT = "{ account { id name } }"


def no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, [r.getMessage() for r in bad]


async def post_raw(server: LiveServer, body: bytes, token: str) -> tuple[int, str]:
    response = await server.http.post(
        "/graphql",
        content=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    return response.status_code, response.text


async def test_bodies_that_are_not_a_json_object_are_a_400_without_a_traceback(
    server: LiveServer, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    tenant = await make_tenant(db)
    deep = b"[" * 2000 + b"]" * 2000
    # Before authentication (any token), and after it.
    for token in ("x", tenant.viewer_token):
        status, text = await post_raw(server, deep, token)
        assert status == 400, text
    for body in (b"1", b"true", b"null", b'"x"', b"1.5"):
        status, text = await post_raw(server, body, tenant.viewer_token)
        assert status == 400, (body, text)
        assert "JSON object" in text
    no_errors_logged(caplog)
    # The server is fine afterwards.
    assert (await server.gql(tenant.viewer_token, ACCOUNT))["account"]["name"] == "Acme"


async def test_documents_and_bodies_over_their_caps_are_refused_before_parsing(
    server: LiveServer, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    tenant = await make_tenant(db)
    headers = {"Authorization": f"Bearer {tenant.viewer_token}"}
    # A comment is not a token: only a size cap stops it.
    padded = "#" + "x" * MAX_DOCUMENT_BYTES + "\n" + ACCOUNT
    response = await server.http.post("/graphql", json={"query": padded}, headers=headers)
    assert response.status_code == 413, response.text
    big = {"query": ACCOUNT, "variables": {"pad": "x" * MAX_BODY_BYTES}}
    response = await server.http.post("/graphql", json=big, headers=headers)
    assert response.status_code == 413, response.text
    # Just under the document cap still works.
    fits = "#" + "x" * (MAX_DOCUMENT_BYTES - len(ACCOUNT) - 10) + "\n" + ACCOUNT
    response = await server.http.post("/graphql", json={"query": fits}, headers=headers)
    assert response.status_code == 200 and response.json()["data"]["account"]["name"] == "Acme"
    no_errors_logged(caplog)


async def test_a_subscription_over_http_is_refused_with_a_400(
    server: LiveServer, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    tenant = await make_tenant(db)
    response = await server.http.post(
        "/graphql",
        json={"query": "subscription { pendingQueueChanged { action } }"},
        headers={"Authorization": f"Bearer {tenant.viewer_token}"},
    )
    assert response.status_code == 400
    assert "websockets" in response.text
    no_errors_logged(caplog)


async def test_a_deeply_nested_websocket_message_closes_with_4400(
    server: LiveServer, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    tenant = await make_tenant(db)
    ws = await raw_socket(server)
    await init(ws, tenant.viewer_token)
    await ws.send("[" * 100_000 + "]" * 100_000)
    assert await closed_with(ws) == 4400
    no_errors_logged(caplog)


async def test_a_websocket_message_over_the_cap_closes_with_1009(server: LiveServer, db: Database) -> None:
    tenant = await make_tenant(db)
    ws = await raw_socket(server, max_size=None)
    await init(ws, tenant.viewer_token)
    query = "#" + "x" * MAX_FRAME_BYTES + "\n" + ACCOUNT
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
    assert await closed_with(ws) == 1009


async def test_a_null_connection_init_payload_is_a_missing_token_4403(server: LiveServer) -> None:
    ws = await raw_socket(server)
    await ws.send(json.dumps({"type": "connection_init", "payload": None}))
    assert await closed_with(ws) == 4403
    ws = await raw_socket(server)
    await ws.send(json.dumps({"type": "connection_init"}))
    assert await closed_with(ws) == 4403


async def test_graphiql_persists_no_token_and_runs_under_a_strict_policy(server: LiveServer) -> None:
    response = await server.http.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    page = response.text
    assert "shouldPersistHeaders: false" in page and "shouldPersistHeaders: true" not in page
    assert response.headers["X-Frame-Options"] == "DENY"
    policy = response.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy)
    assert nonce is not None
    assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
    assert "'unsafe-inline'" not in policy.split("script-src", 1)[1].split(";", 1)[0]
    # Every script, inline ones included, carries this response's nonce.
    scripts = re.findall(r"<script\b[^>]*>", page)
    assert scripts and all(f'nonce="{nonce.group(1)}"' in tag for tag in scripts)
    again = await server.http.get("/graphql", headers={"Accept": "text/html"})
    assert again.headers["Content-Security-Policy"] != policy  # a fresh nonce each time


async def test_a_trailing_slash_redirects_relatively_whatever_the_host_header(server: LiveServer) -> None:
    for path in ("/graphql/", "/healthz/", "/readyz/"):
        response = await server.http.get(path, headers={"Host": "evil.example"})
        assert response.status_code == 307
        assert response.headers["Location"] == path.rstrip("/")
    response = await server.http.get("/graphql/?query=x", headers={"Host": "evil.example"})
    assert response.headers["Location"] == "/graphql?query=x"


async def test_an_oversized_document_over_a_socket_fails_that_operation_only(
    server: LiveServer, db: Database
) -> None:
    tenant = await make_tenant(db)
    ws = await raw_socket(server)
    await init(ws, tenant.viewer_token)
    padded = "#" + "x" * MAX_DOCUMENT_BYTES + "\n" + ACCOUNT
    await ws.send(json.dumps({"id": "big", "type": "subscribe", "payload": {"query": padded}}))
    message = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert message["id"] == "big" and message["type"] == "error", message
    assert str(MAX_DOCUMENT_BYTES) in message["payload"][0]["message"]
    await ws.send(json.dumps({"id": "ok", "type": "subscribe", "payload": {"query": ACCOUNT}}))
    message = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert message["type"] == "next" and message["payload"]["data"]["account"]["name"] == "Acme"
    await ws.close()


@pytest.mark.parametrize(
    "payload",
    [
        None,
        1,
        {"query": 1},
        {"query": "{ me { id } }", "variables": [1]},
        {"query": "{ me { id } }", "operationName": 2},
    ],
)
async def test_a_malformed_subscribe_message_closes_with_4400(
    server: LiveServer, db: Database, payload: object, caplog: pytest.LogCaptureFixture
) -> None:
    tenant = await make_tenant(db)
    ws = await raw_socket(server)
    await init(ws, tenant.viewer_token)
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
    assert await closed_with(ws) == 4400
    no_errors_logged(caplog)
