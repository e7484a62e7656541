"""Operating ``plm serve`` (SQLite, the CLI beside it): tokens, rate limits, metrics, a bad setting."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.test_server_process import base_env
from tests.support import REPO, batch_body, plm, server_process

SUBSCRIBE = json.dumps(
    {"id": "1", "type": "subscribe", "payload": {"query": "subscription { pendingQueueChanged { action } }"}}
)


def plm_list(env: dict[str, str], *args: str) -> list[dict[str, object]]:
    out = subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    result: list[dict[str, object]] = json.loads(out.stdout)
    return result


async def subscribed(url: str, token: str) -> websockets.ClientConnection:
    ws = await websockets.connect(
        url.replace("http", "ws") + "/graphql", subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
    )
    await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
    assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
    await ws.send(SUBSCRIBE)
    return ws


async def close_code(ws: websockets.ClientConnection) -> int | None:
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), 10)
    return ws.close_code


def me(http: httpx.Client, token: str) -> int:
    return http.post(
        "/graphql", json={"query": "{ me { id } }"}, headers={"Authorization": f"Bearer {token}"}
    ).status_code


async def ame(http: httpx.AsyncClient, token: str) -> int:
    answer = await http.post(
        "/graphql", json={"query": "{ me { id } }"}, headers={"Authorization": f"Bearer {token}"}
    )
    return answer.status_code


async def send(http: httpx.AsyncClient, key: str) -> int:
    answer = await http.post(
        "/ingest", json=batch_body("PC", "u"), headers={"Authorization": f"Bearer {key}"}
    )
    return answer.status_code


def plm_fails(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args], env=env, cwd=REPO, capture_output=True, text=True
    )


async def test_tokens_are_listed_revoked_and_rotated_from_the_cli(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    account = plm(env, "account", "create", "--name", "Acme", "--licenses", "2")
    ann = plm(
        env, "admin", "create", "--account", account["id"], "--email", "ann@acme.example", "--name", "Ann"
    )
    bob = plm(
        env,
        "admin",
        "create",
        "--account",
        account["id"],
        "--email",
        "bob@acme.example",
        "--name",
        "Bob",
        "--role",
        "viewer",
    )
    listed = plm_list(env, "admin", "list", "--account", account["id"])
    assert listed == [
        {"id": ann["id"], "email": "ann@acme.example", "name": "Ann", "role": "ADMIN", "revoked": False},
        {"id": bob["id"], "email": "bob@acme.example", "name": "Bob", "role": "VIEWER", "revoked": False},
    ]
    assert ann["token"] not in json.dumps(listed)
    with server_process(env) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            await revoke_rotate_and_rekey(env, server.url, http, account, ann, bob)
    missing = plm_fails(env, "admin", "revoke", "--account", account["id"], "--email", "x@y.z")
    assert missing.returncode == 1 and "NOT_FOUND" in missing.stderr


async def revoke_rotate_and_rekey(
    env: dict[str, str],
    url: str,
    http: httpx.AsyncClient,
    account: dict[str, str],
    ann: dict[str, str],
    bob: dict[str, str],
) -> None:
    ws = await subscribed(url, ann["token"])
    other = await subscribed(url, bob["token"])
    # The CLI is another process on the same SQLite file: no broadcaster reaches the
    # server from it, and the socket is closed all the same.
    revoked = plm(env, "admin", "revoke", "--account", account["id"], "--email", "ann@acme.example")
    started = time.monotonic()
    assert revoked == {"id": ann["id"], "email": "ann@acme.example", "revoked": True}
    assert await close_code(ws) == 4403
    assert time.monotonic() - started < 2.0
    assert await ame(http, ann["token"]) == 401 and await ame(http, bob["token"]) == 200
    listed = plm_list(env, "admin", "list", "--account", account["id"])
    assert [a["revoked"] for a in listed] == [True, False]

    rotated = plm(env, "admin", "rotate-token", "--account", account["id"], "--email", "ann@acme.example")
    assert rotated["id"] == ann["id"] and rotated["token"].startswith("plm_")
    assert await ame(http, rotated["token"]) == 200 and await ame(http, ann["token"]) == 401
    listed = plm_list(env, "admin", "list", "--account", account["id"])
    assert [a["revoked"] for a in listed] == [False, False]
    # Bob's socket never noticed.
    await other.send(json.dumps({"type": "ping"}))
    assert json.loads(await asyncio.wait_for(other.recv(), 10))["type"] == "pong"
    await other.close()

    new = plm(env, "account", "rotate-ingest-key", "--account", account["id"])
    assert new["id"] == account["id"] and new["ingestKey"].startswith("plmi_")
    for key in (account["ingestKey"], new["ingestKey"]):  # 24 hours of grace by default
        assert await send(http, key) == 202
    plm(env, "account", "rotate-ingest-key", "--account", account["id"], "--grace-hours", "0")
    # Without grace the key stops at once: a server re-reads a key it knows within a second.
    statuses = []
    for _ in range(30):
        statuses.append(await send(http, new["ingestKey"]))
        if statuses[-1] == 401:
            break
        await asyncio.sleep(0.1)
    assert statuses[-1] == 401 and len(statuses) <= 20, statuses


def test_plm_serve_answers_429_with_retry_after_and_serves_metrics(tmp_path: Path) -> None:
    env = {
        **base_env(tmp_path),
        "PLM_RATE_LIMIT_GRAPHQL": "3/minute",
        "PLM_RATE_LIMIT_INGEST": "2/minute",
        "PLM_METRICS_TOKEN": "scrape-me-0123456789",
    }
    account = plm(env, "account", "create", "--name", "Acme", "--licenses", "2")
    admin = plm(
        env, "admin", "create", "--account", account["id"], "--email", "a@acme.example", "--name", "A"
    )
    with server_process(env) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        assert [me(http, admin["token"]) for _ in range(4)] == [200, 200, 200, 429]
        refused = http.post(
            "/graphql", json={"query": "{ me { id } }"}, headers={"Authorization": f"Bearer {admin['token']}"}
        )
        assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 60
        assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        ingest = {"Authorization": f"Bearer {account['ingestKey']}"}
        statuses = [
            http.post("/ingest", json=batch_body("PC", "u"), headers=ingest).status_code for _ in range(3)
        ]
        assert statuses == [202, 202, 429]
        assert http.get("/metrics").status_code == 401
        text = http.get("/metrics", headers={"Authorization": "Bearer scrape-me-0123456789"}).text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }
    assert samples[("plm_http_requests_total", (("route", "/graphql"), ("status", "429")))] == 2
    assert samples[("plm_ingest_batches_total", (("status", "rate_limited"),))] == 1


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PLM_RATE_LIMIT_GRAPHQL", "lots"),
        ("PLM_RATE_LIMIT_INGEST", "0/second"),
        ("PLM_MAX_WS_PER_TOKEN", "0"),
    ],
)
def test_a_bad_limit_stops_start_up_naming_the_variable(tmp_path: Path, variable: str, value: str) -> None:
    bad = subprocess.run(
        [sys.executable, "-m", "server.cli", "serve", "--port", "1"],
        env={**base_env(tmp_path), variable: value},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and variable in bad.stderr and "bad configuration" in bad.stderr
