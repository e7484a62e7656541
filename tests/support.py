"""Test helpers shared by every layer: a controllable clock, provisioning, real servers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from server.domain import accounts
from server.domain.models import Role
from server.infra.db import Database

REPO = Path(__file__).resolve().parent.parent
START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


class FakeClock:
    """An injectable clock: time moves only when a test says so."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@dataclass(frozen=True)
class Tenant:
    account_id: int
    ingest_key: str
    admin_id: int
    admin_token: str
    viewer_id: int
    viewer_token: str


async def make_tenant(
    db: Database,
    *,
    name: str = "Acme",
    licenses: int = 3,
    manual_review: bool = False,
    retention_days: int = 30,
    now: datetime = START,
) -> Tenant:
    async with db.write() as session:
        acct = await accounts.create_account(
            session,
            name=name,
            license_limit=licenses,
            manual_review=manual_review,
            retention_days=retention_days,
            now=now,
        )
        admin = await accounts.create_admin(
            session,
            account_id=acct.id,
            email=f"admin@{name.lower()}.example",
            name=f"{name} Admin",
            role=Role.ADMIN,
            now=now,
        )
        viewer = await accounts.create_admin(
            session,
            account_id=acct.id,
            email=f"viewer@{name.lower()}.example",
            name=f"{name} Viewer",
            role=Role.VIEWER,
            now=now,
        )
    return Tenant(acct.id, acct.secret, admin.id, admin.secret, viewer.id, viewer.secret)


def plm(env: dict[str, str], *args: str) -> dict[str, str]:
    """Run a provisioning command of the ``plm`` CLI; its JSON answer."""
    out = subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, str] = json.loads(out.stdout)
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def batch_body(
    device: str,
    logon: str,
    *,
    domain: str = "ACME",
    display: str | None = None,
    batch_id: str | None = None,
    events: int = 1,
    start: datetime = START,
    duration: int = 60,
    app: str = "excel.exe",
    productivity: str = "productive",
) -> dict[str, Any]:
    return {
        "batchId": batch_id or f"{device}-{logon}-{time.monotonic_ns()}",
        "agent": {
            "deviceName": device,
            "domain": domain,
            "logonName": logon,
            "displayName": display or logon,
        },
        "events": [
            {
                "start": (start + timedelta(seconds=i)).isoformat(),
                "durationSeconds": duration,
                "app": app,
                "title": None,
                "url": None,
                "productivity": productivity,
            }
            for i in range(events)
        ],
    }


@contextlib.asynccontextmanager
async def serve_app(app: Any) -> AsyncIterator[str]:
    """Run ``app`` under a real uvicorn on a free port in this event loop; yields the base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", ws="websockets-sansio")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


class ServerProcess:
    """``plm serve`` in a child process, for crash and multi-process tests."""

    def __init__(self, env: dict[str, str], port: int | None = None) -> None:
        self.port = port or free_port()
        self.env = {**os.environ, **env}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="plm-server-", suffix=".log", delete=False)  # noqa: SIM115

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> ServerProcess:
        self.spawn()
        self.wait_healthy(timeout)
        return self

    def spawn(self) -> None:
        """Start the process without waiting for it to serve."""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--port", str(self.port)],
            env=self.env,
            cwd=REPO,
            # uvicorn's access log goes to stdout: keep it with the rest.
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_healthy(self, timeout: float = 30) -> None:
        """Wait until it serves (``/healthz`` answers once the database is migrated)."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                output = self.output()
                self.log.close()
                raise RuntimeError(f"server exited: {output}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise TimeoutError("server did not become healthy")

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.log.close()

    def stop(self) -> None:
        """SIGTERM, as an operator's service manager sends; the server must be gone in 10 s."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(
                    f"plm serve ignored SIGTERM for 10 s:\n{self.output()[-4000:]}"
                ) from None
        self.log.close()


@contextlib.contextmanager
def server_process(env: dict[str, str]) -> Iterator[ServerProcess]:
    proc = ServerProcess(env).start()
    try:
        yield proc
    finally:
        proc.stop()


async def asgi_post(
    app: Any, path: str, body: bytes, headers: list[tuple[bytes, bytes]]
) -> tuple[int, bytes]:
    """One POST handed straight to an ASGI app (no socket, no uvicorn), its body complete at
    once, as uvicorn hands over a request that arrived whole: the status and the body."""
    return await asgi_request(app, "POST", path, body, headers)


async def asgi_request(
    app: Any, method: str, path: str, body: bytes, headers: list[tuple[bytes, bytes]]
) -> tuple[int, bytes]:
    """:func:`asgi_post` for any method."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [*headers, (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)  # no disconnect while the answer is made
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    status = 0
    parts: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            parts.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(parts)
