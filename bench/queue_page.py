"""The queue page under load: GraphQL against a plain JSON route and hello-world, in one run.

    .venv/bin/python bench/queue_page.py [--seconds 10] [--clients 32] [--pending 10000] [--events 1000000]

Builds an account with ``--pending`` pending users (one agent each) and ``--events``
activity events spread over them (SQLite, written with plain sqlite3 executemany), starts
the real app (``create_app`` + uvicorn, as ``plm serve`` runs it) in a child process with
two extra routes, then drives each target with ``--clients`` keep-alive connections:

1. hello:   ``GET /bench/hello``, a Starlette route answering ``{"hello": "world"}``;
2. plain:   ``GET /bench/plain``, a Starlette JSON route doing the same reads as the
            GraphQL page (token, page of 50, total, agents, pending info), no cache;
3. graphql: ``POST /graphql`` ``pendingUsers(first: 50)`` with agents and pending info;
4. graphql (executed): the same page plus ``me { id }``, a document the response cache
            never serves, so every request runs the resolvers (for information).

Prints req/s, p50 and p99 per target and the ratios; asserts nothing. Targets on the
2-core development machine: graphql ≥ 1,000 req/s, p99 ≤ 100 ms, graphql ≥ 0.8x plain.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

PAGE_FIELDS = """
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node {
      id displayName status firstSeenAt lastSeenAt licensedAt
      agents { id deviceName domain logonName firstSeenAt lastSeenAt }
      pending { reason enteredAt retainedEventCount retainedActiveSeconds oldestRetainedAt dataExpiresAt }
    } }
"""
GRAPHQL_PAGE = "query Queue { pendingUsers(first: 50) {" + PAGE_FIELDS + "} }"
GRAPHQL_EXECUTED = "query QueueAndMe { me { id } pendingUsers(first: 50) {" + PAGE_FIELDS + "} }"


# ---------------------------------------------------------------------------- fixture data


def _ts(value: datetime) -> str:
    # How SQLAlchemy stores a UTC timestamp on SQLite (naive, microseconds).
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


async def _provision(url: str) -> tuple[int, str]:
    from server import accounts
    from server.db import Database
    from server.models import Role, utcnow

    db = Database(url)
    try:
        await db.migrate()
        async with db.write() as session:
            account = await accounts.create_account(
                session, name="Bench", license_limit=100, retention_days=30, now=utcnow()
            )
            admin = await accounts.create_admin(
                session, account_id=account.id, email="bench@bench.example", name="Bench", role=Role.ADMIN,
                now=utcnow(),
            )
        return account.id, admin.secret
    finally:
        await db.dispose()


def build_fixture(path: Path, pending: int, events: int) -> tuple[int, str]:
    from server.models import agent_key, login_key

    account_id, token = asyncio.run(_provision(f"sqlite+aiosqlite:///{path}"))
    rng = random.Random(7)
    now = datetime.now(UTC)
    licensed = 100
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    with conn:
        users = []
        for i in range(licensed + pending):
            seen = _ts(now - timedelta(days=2, seconds=i))
            if i < licensed:
                users.append((i + 1, account_id, f"Licensed {i:05d}", "LICENSED", seen, seen, seen, None, None))
            else:
                entered = _ts(now - timedelta(days=2) + timedelta(seconds=i))
                users.append((i + 1, account_id, f"Pending {i:05d}", "PENDING", seen, seen, None, "OVER_LIMIT", entered))
        conn.executemany("INSERT INTO user VALUES (?,?,?,?,?,?,?,?,?)", users)
        agents = []
        for uid, *_ in users:
            device, domain, logon = f"PC-{uid:05d}", "BENCH", f"user{uid:05d}"
            seen = _ts(now - timedelta(days=2))
            agents.append(
                (uid, account_id, uid, device, domain, logon, agent_key(device, domain, logon),
                 login_key(device, domain, logon), seen, seen)
            )
        conn.executemany("INSERT INTO agent VALUES (?,?,?,?,?,?,?,?,?,?)", agents)
        apps = ["excel.exe", "winword.exe", "chrome.exe", "outlook.exe", "teams.exe"]
        kinds = ["productive", "neutral", "unproductive"]

        def rows() -> Any:
            for n in range(events):
                uid = licensed + 1 + n % pending
                start = now - timedelta(seconds=rng.randrange(0, 2 * 86400))
                yield (uid, uid, _ts(start), rng.randrange(5, 600), apps[n % 5], None, None, kinds[n % 3])

        conn.executemany(
            "INSERT INTO activity_event (user_id, agent_id, start, duration_seconds, app, title, url, productivity)"
            " VALUES (?,?,?,?,?,?,?,?)",
            rows(),
        )
    conn.execute("ANALYZE")
    conn.close()
    return account_id, token


# ---------------------------------------------------------------------------- the server


def serve(database_url: str, port: int) -> None:
    """Child process: the real app plus the two comparison routes, under uvicorn."""
    import uvicorn
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from server import queries, services
    from server.app import create_app
    from server.http_util import bearer_token
    from server.settings import Settings

    app = create_app(Settings(database_url=database_url, log_level="warning"))

    async def hello(_: Request) -> JSONResponse:
        return JSONResponse({"hello": "world"})

    async def plain(request: Request) -> JSONResponse:
        """The GraphQL page's reads, written by hand: what GraphQL adds is the difference."""
        svc = services.of(request.app)
        token = bearer_token(request.headers.get("authorization"))
        async with svc.db.read() as session:
            found = await queries.authenticate(session, token) if token else None
            if found is None:
                return JSONResponse({"error": "unauthenticated"}, status_code=401)
            _admin, account = found
            assert account.id is not None
            filt = queries.PendingFilter(account.id)
            page = await queries.pending_page(session, filt, 50, None)
            total = await queries.pending_count(session, filt)
            user_ids = [u.id for u in page.items if u.id is not None]
            agents = await queries.agents_by_user(session, account.id, user_ids)
            retained = await queries.retained_by_user(session, user_ids)
        edges = []
        for user, cursor in zip(page.items, page.cursors, strict=True):
            assert user.id is not None
            info = queries.pending_info(user, retained.get(user.id, queries.Retained()), account.retention_days)
            edges.append({
                "cursor": cursor,
                "node": {
                    "id": str(user.id), "displayName": user.display_name, "status": user.status.value,
                    "firstSeenAt": user.first_seen_at.isoformat(), "lastSeenAt": user.last_seen_at.isoformat(),
                    "licensedAt": None,
                    "agents": [
                        {"id": str(a.id), "deviceName": a.device_name, "domain": a.domain, "logonName": a.logon_name,
                         "firstSeenAt": a.first_seen_at.isoformat(), "lastSeenAt": a.last_seen_at.isoformat()}
                        for a in agents.get(user.id, [])
                    ],
                    "pending": None if info is None else {
                        "reason": info.reason.value, "enteredAt": info.entered_at.isoformat(),
                        "retainedEventCount": info.retained_event_count,
                        "retainedActiveSeconds": info.retained_active_seconds,
                        "oldestRetainedAt": info.oldest_retained_at.isoformat() if info.oldest_retained_at else None,
                        "dataExpiresAt": info.data_expires_at.isoformat() if info.data_expires_at else None,
                    },
                },
            })
        body = {"pendingUsers": {"totalCount": total, "pageInfo": {"hasNextPage": page.has_next,
                                                                   "endCursor": page.end_cursor}, "edges": edges}}
        return JSONResponse({"data": body})

    app.router.routes[:0] = [Route("/bench/hello", hello), Route("/bench/plain", plain)]
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


# ---------------------------------------------------------------------------- the load


class Conn:
    """One keep-alive HTTP/1.1 connection; requests are pre-encoded bytes (a cheap client)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(raw)
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def get(path: str, token: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\r\n".encode()


def post(path: str, body: dict[str, Any], token: str) -> bytes:
    payload = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


async def load(port: int, raw: bytes, clients: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    bad: dict[int, int] = {}
    sample: list[bytes] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        conn = Conn(port)
        try:
            while time.perf_counter() < deadline:
                t = time.perf_counter()
                status, body = await conn.request(raw)
                latencies.append(time.perf_counter() - t)
                if status != 200:
                    bad[status] = bad.get(status, 0) + 1
                if not sample:
                    sample.append(body)
        finally:
            conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    elapsed = time.perf_counter() - start
    latencies.sort()
    if bad:
        print(f"    non-200 answers: {bad}")
    if sample and b'"errors"' in sample[0]:
        print(f"    errors in the answer: {sample[0][:300]!r}")

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {"rps": len(latencies) / elapsed, "p50": pct(0.50), "p99": pct(0.99), "n": len(latencies),
            "bytes": len(sample[0]) if sample else 0}


async def wait_healthy(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the server exited")
        try:
            conn = Conn(port)
            status, _ = await conn.request(b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n")
            conn.close()
            if status == 200:
                return
        except OSError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--pending", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--serve", nargs=2, metavar=("DATABASE_URL", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return

    workdir = Path(tempfile.mkdtemp(prefix="plm-bench-"))
    db_path = workdir / "bench.db"
    t = time.perf_counter()
    _account_id, token = build_fixture(db_path, args.pending, args.events)
    print(f"fixture: {args.pending:,} pending users, {args.events:,} events in {time.perf_counter() - t:.1f} s")

    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLM_")}
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", f"sqlite+aiosqlite:///{db_path}", str(port)], cwd=REPO, env=env
    )
    try:
        asyncio.run(wait_healthy(port, proc))
        targets: list[tuple[str, Callable[[], bytes]]] = [
            ("hello-world route", lambda: get("/bench/hello", token)),
            ("plain JSON route", lambda: get("/bench/plain", token)),
            ("GraphQL pendingUsers(first: 50)", lambda: post("/graphql", {"query": GRAPHQL_PAGE}, token)),
            ("GraphQL, executed every time", lambda: post("/graphql", {"query": GRAPHQL_EXECUTED}, token)),
        ]
        results: dict[str, dict[str, float]] = {}
        print(f"{args.clients} concurrent clients, {args.seconds:g} s per target (after a 1 s warm-up)")
        for name, raw in targets:
            asyncio.run(load(port, raw(), args.clients, 1.0))
            r = asyncio.run(load(port, raw(), args.clients, args.seconds))
            results[name] = r
            print(f"  {name:34s} {r['rps']:8.0f} req/s   p50 {r['p50']:6.1f} ms   p99 {r['p99']:6.1f} ms"
                  f"   ({r['bytes']:,} bytes)")
        hello, plain, gql, executed = (results[n] for n, _ in targets)
        print(f"ratios: GraphQL/plain {gql['rps'] / plain['rps']:.2f}x   GraphQL/hello {gql['rps'] / hello['rps']:.2f}x"
              f"   executed GraphQL/plain {executed['rps'] / plain['rps']:.2f}x")
        print(f"targets: >= 1,000 req/s: {gql['rps']:.0f}; p99 <= 100 ms: {gql['p99']:.1f}; "
              f">= 0.8x plain: {gql['rps'] / plain['rps']:.2f}x")
    finally:
        proc.terminate()
        proc.wait(10)
        for p in workdir.iterdir():
            p.unlink()
        workdir.rmdir()


if __name__ == "__main__":
    main()
