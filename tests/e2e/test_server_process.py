"""End to end against ``plm serve`` in a child process: concurrency, crash safety, the CLI."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support import REPO, ServerProcess, batch_body, plm, server_process, sqlite_url


def base_env(tmp_path: Path) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("PLM_")}
    env["PLM_DATABASE_URL"] = sqlite_url(tmp_path / "plm.db")
    env["PLM_LOG_LEVEL"] = "warning"
    return env


async def test_200_concurrent_new_agents_at_limit_25(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    account = plm(env, "account", "create", "--name", "Acme", "--licenses", "25")
    headers = {"Authorization": f"Bearer {account['ingestKey']}"}
    with server_process(env) as server:
        async with httpx.AsyncClient(
            base_url=server.url, timeout=60, limits=httpx.Limits(max_connections=200)
        ) as http:
            responses = await asyncio.gather(
                *(
                    http.post("/ingest", json=batch_body(f"PC-{i}", f"user{i}", events=3), headers=headers)
                    for i in range(200)
                )
            )
    assert sorted({r.status_code for r in responses}) == [202]
    statuses = [r.json()["status"] for r in responses]
    assert statuses.count("LICENSED") == 25 and statuses.count("PENDING") == 175
    with sqlite3.connect(tmp_path / "plm.db") as conn:
        rows = dict(conn.execute("SELECT status, count(*) FROM user GROUP BY status").fetchall())
    assert rows == {"LICENSED": 25, "PENDING": 175}


async def test_every_acknowledged_batch_survives_kill_9_and_none_is_stored_twice(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    account = plm(env, "account", "create", "--name", "Acme", "--licenses", "10")
    headers = {"Authorization": f"Bearer {account['ingestKey']}"}
    server = ServerProcess(env).start()
    acked: dict[str, int] = {}
    bodies = {}
    killed = asyncio.Event()
    enough = asyncio.Event()

    async def client(n: int, http: httpx.AsyncClient) -> None:
        for j in range(10_000):
            if killed.is_set():
                return
            batch_id = f"c{n}-b{j}"
            body = batch_body(f"PC-{n % 30}", f"user{n % 30}", batch_id=batch_id, events=20, app=batch_id)
            bodies[batch_id] = body
            try:
                r = await http.post("/ingest", json=body, headers=headers)
            except httpx.HTTPError:
                return
            if r.status_code == 202:
                acked[batch_id] = len(body["events"])
                if len(acked) >= 300:
                    enough.set()

    async def killer() -> None:
        await enough.wait()
        server.kill()
        killed.set()

    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            await asyncio.gather(killer(), *(client(n, http) for n in range(16)))
    finally:
        server.kill()
    assert len(acked) >= 300

    with server_process(env) as again, sqlite3.connect(tmp_path / "plm.db") as conn:
        stored = dict(
            conn.execute("SELECT app, sum(event_count) FROM activity_rollup GROUP BY app").fetchall()
        )
        for batch_id, n in acked.items():
            assert stored.get(batch_id) == n, f"acknowledged batch {batch_id} lost or partial"
        assert all(stored[b] == len(bodies[b]["events"]) for b in stored), "a batch was half-stored"
        # Replaying everything (as agents do after a crash) stores nothing twice.
        async with httpx.AsyncClient(base_url=again.url, timeout=30) as http:
            for batch_id, body in bodies.items():
                r = await http.post("/ingest", json=body, headers=headers)
                assert r.status_code == 202
                assert r.json()["duplicate"] is (batch_id in stored)
        after = dict(
            conn.execute("SELECT app, sum(event_count) FROM activity_rollup GROUP BY app").fetchall()
        )
    assert after == {b: len(bodies[b]["events"]) for b in bodies}


def test_cli_provisioning_and_a_bad_setting(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    account = plm(
        env,
        "account",
        "create",
        "--name",
        "Acme",
        "--licenses",
        "2",
        "--manual-review",
        "--retention-days",
        "10",
    )
    assert set(account) == {"id", "ingestKey"}
    admin = plm(
        env,
        "admin",
        "create",
        "--account",
        account["id"],
        "--email",
        "a@acme.example",
        "--name",
        "Ann",
        "--role",
        "viewer",
    )
    assert set(admin) == {"id", "token"} and admin["token"].startswith("plm_")
    limit = plm(env, "account", "set-limit", "--account", account["id"], "--licenses", "1")
    assert limit["licenseLimit"] == 1
    with sqlite3.connect(tmp_path / "plm.db") as conn:
        row = conn.execute("SELECT manual_review, retention_days, license_limit FROM account").fetchone()
        role, token_hash = conn.execute("SELECT role, token_hash FROM admin").fetchone()
    assert row == (1, 10, 1) and role == "VIEWER"
    assert admin["token"] not in token_hash  # only a hash is stored
    bad = subprocess.run(
        [sys.executable, "-m", "server.cli", "serve"],
        env={**env, "PLM_NOTIFY_DIGEST_SECONDS": "soon"},
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "PLM_NOTIFY_DIGEST_SECONDS" in bad.stderr
    dup = subprocess.run(
        [
            sys.executable,
            "-m",
            "server.cli",
            "admin",
            "create",
            "--account",
            account["id"],
            "--email",
            "A@acme.example",
            "--name",
            "x",
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert dup.returncode == 1 and "CONFLICT" in dup.stderr


def test_a_retention_of_zero_days_is_refused_not_replaced_by_the_default(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    zero = subprocess.run(
        [
            sys.executable,
            "-m",
            "server.cli",
            "account",
            "create",
            "--name",
            "Acme",
            "--licenses",
            "2",
            "--retention-days",
            "0",
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert zero.returncode == 1 and "retention days must be from 1 to 3650" in zero.stderr
    with sqlite3.connect(tmp_path / "plm.db") as conn:
        assert conn.execute("SELECT count(*) FROM account").fetchone() == (0,)
