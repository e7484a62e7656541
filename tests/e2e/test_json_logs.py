"""``PLM_LOG_FORMAT=json``: a full run of ``plm serve`` writes JSON lines and never a secret.

Everything an operator would do in a day goes through one real server with the most verbose
log: accounts and admins from the CLI, ingestion, a GraphQL query and mutation, a live
subscription, a digest mailed through an SMTP server that wants a login, a revocation and
rotations. Then the log is read: every line is one JSON object, requests carry their id,
account, route, operation, status and duration, and no credential, password or query
string used along the way appears anywhere in it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from tests.e2e.test_server_process import base_env
from tests.jobs.conftest import Mailbox
from tests.support import ServerProcess, batch_body, free_port, plm

SMTP_PASSWORD = "Sm7p-pa55word-never-logged"
MARKER = "query-string-marker-9f3a"


class Logins:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        self.seen.append((auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(success=auth_data.password.decode() == SMTP_PASSWORD)


@pytest.fixture
def smtp() -> Iterator[tuple[int, Mailbox, Logins]]:
    port, mailbox, logins = free_port(), Mailbox(), Logins()
    controller = Controller(
        mailbox, hostname="127.0.0.1", port=port, authenticator=logins, auth_require_tls=False
    )
    controller.start()
    try:
        yield port, mailbox, logins
    finally:
        controller.stop()


async def test_a_json_log_of_a_full_run_holds_no_secret(
    tmp_path: Path, smtp: tuple[int, Mailbox, Logins]
) -> None:
    port, mailbox, logins = smtp
    env = {
        **base_env(tmp_path),
        "PLM_LOG_FORMAT": "json",
        "PLM_LOG_LEVEL": "debug",
        "PLM_SMTP_HOST": "127.0.0.1",
        "PLM_SMTP_PORT": str(port),
        "PLM_SMTP_USER": "plm-mailer",
        "PLM_SMTP_PASSWORD": SMTP_PASSWORD,
        "PLM_NOTIFY_DIGEST_SECONDS": "1",
    }
    account = plm(env, "account", "create", "--name", "Acme", "--licenses", "1")
    admin = plm(
        env, "admin", "create", "--account", account["id"], "--email", "ann@acme.example", "--name", "Ann"
    )
    secrets = [account["ingestKey"], admin["token"], SMTP_PASSWORD, MARKER]
    server = ServerProcess(env).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            secrets += await day_of_work(env, server.url, http, account, admin)
        # The digest of the arrivals reached the SMTP server, through a login.
        deadline = time.monotonic() + 30
        while not mailbox.to("ann@acme.example"):
            assert time.monotonic() < deadline, "no digest was mailed"
            await asyncio.sleep(0.2)
        assert logins.seen and logins.seen[0] == ("plm-mailer", SMTP_PASSWORD)
    finally:
        server.stop()
    log = server.output()
    leaked = [s for s in secrets if s in log]
    assert leaked == [], f"secrets in the log: {leaked}"
    assert "[redacted]" not in log  # none was even written, so none had to be scrubbed

    lines = [json.loads(line) for line in log.splitlines() if line.strip()]
    assert all(
        isinstance(line, dict) and {"time", "level", "logger", "message"} <= line.keys() for line in lines
    )
    access = [line for line in lines if line["logger"] == "plm.access"]
    mutation = next(line for line in access if line.get("operation") == "Approve")
    assert mutation["operation_type"] == "mutation" and mutation["route"] == "/graphql"
    assert mutation["status"] == 200 and mutation["account_id"] == int(account["id"])
    assert mutation["duration_ms"] >= 0 and len(mutation["request_id"]) == 16
    ingest = next(line for line in access if line["route"] == "/ingest")
    assert (
        ingest["status"] == 202 and ingest["account_id"] == int(account["id"]) and ingest["method"] == "POST"
    )
    assert any(
        line["route"] == "/graphql" and line["method"] == "WS" and line["status"] == 4403 for line in access
    )
    # uvicorn's own lines are JSON too.
    assert any(line["logger"].startswith("uvicorn") for line in lines)


async def day_of_work(
    env: dict[str, str], url: str, http: httpx.AsyncClient, account: dict[str, str], admin: dict[str, str]
) -> list[str]:
    """Every kind of request, with every kind of secret; the secrets made on the way."""
    token = {"Authorization": f"Bearer {admin['token']}"}
    ingest = {"Authorization": f"Bearer {account['ingestKey']}"}
    ws = await websockets.connect(
        url.replace("http", "ws") + f"/graphql?{MARKER}=1",
        subprotocols=[websockets.Subprotocol("graphql-transport-ws")],
    )
    await ws.send(
        json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {admin['token']}"}})
    )
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    subscription = "subscription Live { pendingQueueChanged { action userId } }"
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": subscription}}))
    first = await http.post("/ingest", json=batch_body("PC-1", "ann"), headers=ingest)
    assert first.status_code == 202
    second = await http.post("/ingest", json=batch_body("PC-2", "bob"), headers=ingest)
    assert second.json()["status"] == "PENDING"
    event = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert event["payload"]["data"]["pendingQueueChanged"]["action"] == "ENTERED"

    query = await http.get(
        "/graphql", params={"query": "query Queue { account { pendingCount } }", MARKER: "1"}, headers=token
    )
    assert query.status_code == 200
    assert (await http.get("/healthz", params={MARKER: admin["token"]})).status_code == 200
    approve = (
        "mutation Approve($ids: [ID!]!) { approvePendingUsers(input: {userIds: $ids}) { errors { code } } }"
    )
    answer = await http.post(
        "/graphql",
        json={"query": approve, "variables": {"ids": [second.json()["userId"]]}, "operationName": "Approve"},
        headers=token,
    )
    assert answer.json()["data"]["approvePendingUsers"]["errors"] == [{"code": "LICENSE_LIMIT_EXCEEDED"}]
    assert (
        await http.post(
            "/graphql", json={"query": "{ me { id } }"}, headers={"Authorization": "Bearer plm_made-up-token"}
        )
    ).status_code == 401

    plm(env, "admin", "revoke", "--account", account["id"], "--email", "ann@acme.example")
    with_code = None
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 10)
    except websockets.ConnectionClosed:
        with_code = ws.close_code
    assert with_code == 4403
    rotated = plm(env, "admin", "rotate-token", "--account", account["id"], "--email", "ann@acme.example")
    new_key = plm(env, "account", "rotate-ingest-key", "--account", account["id"])
    fresh = {"Authorization": f"Bearer {rotated['token']}"}
    assert (await http.post("/graphql", json={"query": "{ me { id } }"}, headers=fresh)).status_code == 200
    third = await http.post(
        "/ingest", json=batch_body("PC-3", "cy"), headers={"Authorization": f"Bearer {new_key['ingestKey']}"}
    )
    assert third.status_code == 202
    return [rotated["token"], new_key["ingestKey"]]
