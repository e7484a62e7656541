"""The queue page under load: GraphQL against a plain JSON route and hello-world, in one run.

    .venv/bin/python bench/queue_page.py [--seconds 10] [--clients 32] [--writers 8] [--pending 10000]
                                         [--events 1000000] [--search-users 100000]
                                         [--rounds 5] [--no-sqlite] [--no-postgres]

Builds an account with ``--pending`` pending users (one agent each) and ``--events``
activity events spread over them, first in a fresh SQLite file (plain sqlite3 executemany,
then the ``statistics`` job's run: ANALYZE and the search index merged), then, when
PostgreSQL's binaries are installed, in a throwaway PostgreSQL server with default
durability (``tests.pg``, rows loaded with COPY, then VACUUM ANALYZE). For each
database it starts the real app (``create_app`` + uvicorn, as ``plm serve`` runs it) in a
child process with the comparison routes, then drives each target with ``--clients``
keep-alive connections, ``--seconds`` in all, in ``--rounds`` turns (hello, healthz, plain,
..., then again: a shared machine's drift slows them alike):

1. hello:   ``GET /bench/hello``, a Starlette route answering ``{"hello": "world"}`` (behind
            the app's middleware, as every route is);
2. healthz: ``GET /healthz``, liveness (target: within 0.8x of hello);
3. plain:   ``GET /bench/plain``, a Starlette JSON route doing the same reads as the
            GraphQL page (token, page of 50, total, agents, pending info), no cache;
4. graphql: ``POST /graphql`` ``pendingUsers(first: 50)`` with agents and pending info;
5. graphql (executed): the same page plus ``me { id }``, a document the response cache
            never serves, so every request runs the resolvers (target: >= 0.8x plain);
6. varied:  the page with one of 400 ``search`` terms (names, devices, logons), the three
            ``orderBy`` values (``ENTERED_ASC``, ``ENTERED_DESC``, ``NAME_ASC``) and a
            ``first`` of 45 to 55: every request misses the response cache (targets:
            >= 250 req/s, p99 <= 250 ms);
7. graphql + activity: the same page asking each row's ``activity(days: 30)`` (totals,
            ``daily`` and ``topApps``) and ``lastActivityAt`` as well, what a client's
            detail pane reads (never cached: it depends on the clock);
8. graphql + sparkline: the same page asking only ``activity(days: 30) { daily {
            activeSeconds } }`` of each row, what a sparkline column needs (for information);
9. mixed:   the varied page from ``--clients`` connections while ``--writers`` connections
            post 100-event batches to known pending agents: the page's p99 beside ingest's
            events/s (targets: p99 <= 100 ms while ingest >= 20,000 events/s).

Then, in a fresh fixture of ``--search-users`` pending users (no events), the varied page
again: search at that size goes through the trigram index (FTS5 / pg_trgm), not a scan.

Prints req/s, p50, p99 and the server's CPU time per request (steadier than req/s on a
shared machine) per target, both databases side by side, and every target with its ratio;
asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
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
ACTIVITY_FIELDS = PAGE_FIELDS.replace(
    "dataExpiresAt }",
    """dataExpiresAt }
      lastActivityAt
      activity(days: 30) {
        days activeSeconds productiveSeconds unproductiveSeconds
        topApps { app activeSeconds }
        daily { date activeSeconds productiveSeconds unproductiveSeconds }
      }""",
)
GRAPHQL_ACTIVITY = "query QueueActivity { pendingUsers(first: 50) {" + ACTIVITY_FIELDS + "} }"
SPARKLINE_FIELDS = PAGE_FIELDS.replace(
    "dataExpiresAt }", "dataExpiresAt }\n      activity(days: 30) { daily { activeSeconds } }"
)
GRAPHQL_SPARKLINE = "query QueueSparkline { pendingUsers(first: 50) {" + SPARKLINE_FIELDS + "} }"


# ---------------------------------------------------------------------------- fixture data

LICENSED = 100
USER_COLUMNS = (
    "id",
    "account_id",
    "display_name",
    "status",
    "first_seen_at",
    "last_seen_at",
    "licensed_at",
    "pending_reason",
    "pending_since",
)
AGENT_COLUMNS = (
    "id",
    "account_id",
    "user_id",
    "device_name",
    "domain",
    "logon_name",
    "key",
    "login_key",
    "first_seen_at",
    "last_seen_at",
)


def _ts(value: datetime) -> str:
    # How SQLAlchemy stores a UTC timestamp on SQLite (naive, microseconds).
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


async def _provision(url: str) -> tuple[int, str, str]:
    from server.domain import accounts
    from server.domain.models import Role, utcnow
    from server.infra.db import Database

    db = Database(url)
    try:
        await db.migrate()
        async with db.write() as session:
            account = await accounts.create_account(
                session, name="Bench", license_limit=LICENSED, retention_days=30, now=utcnow()
            )
            admin = await accounts.create_admin(
                session,
                account_id=account.id,
                email="bench@bench.example",
                name="Bench",
                role=Role.ADMIN,
                now=utcnow(),
            )
        return account.id, admin.secret, account.secret
    finally:
        await db.dispose()


class Fixture:
    """The same rows for every database: ``LICENSED`` licensed users, ``pending`` pending ones, one
    agent each, and ``events`` activity events dealt round-robin over the pending users (so one
    user's events are spread over the whole table, as interleaved uploads leave them)."""

    def __init__(self, account_id: int, pending: int, events: int) -> None:
        self.account_id, self.pending, self.events = account_id, pending, events
        self.now = datetime.now(UTC)

    def users(self) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = []
        for i in range(LICENSED + self.pending):
            seen = self.now - timedelta(days=2, seconds=i)
            if i < LICENSED:
                rows.append(
                    (i + 1, self.account_id, f"Licensed {i:05d}", "LICENSED", seen, seen, seen, None, None)
                )
            else:
                entered = self.now - timedelta(days=2) + timedelta(seconds=i)
                rows.append(
                    (
                        i + 1,
                        self.account_id,
                        f"Pending {i:05d}",
                        "PENDING",
                        seen,
                        seen,
                        None,
                        "OVER_LIMIT",
                        entered,
                    )
                )
        return rows

    def agents(self) -> list[tuple[Any, ...]]:
        from server.domain.models import agent_key, login_key

        rows = []
        seen = self.now - timedelta(days=2)
        for uid in range(1, LICENSED + self.pending + 1):
            device, domain, logon = f"PC-{uid:05d}", "BENCH", f"user{uid:05d}"
            rows.append(
                (
                    uid,
                    self.account_id,
                    uid,
                    device,
                    domain,
                    logon,
                    agent_key(device, domain, logon),
                    login_key(device, domain, logon),
                    seen,
                    seen,
                )
            )
        return rows

    def event_rows(self) -> Iterator[tuple[Any, ...]]:
        rng = random.Random(7)
        apps = ["excel.exe", "winword.exe", "chrome.exe", "outlook.exe", "teams.exe"]
        kinds = ["productive", "neutral", "unproductive"]
        for n in range(self.events):
            uid = LICENSED + 1 + n % self.pending
            start = self.now - timedelta(seconds=rng.randrange(0, 2 * 86400))
            yield (uid, uid, start, rng.randrange(5, 600), apps[n % 5], None, None, kinds[n % 3])


def _sqlite_values(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(_ts(v) if isinstance(v, datetime) else v for v in row)


def build_sqlite(path: Path, pending: int, events: int) -> tuple[str, str]:
    """The fixture in a fresh SQLite file (plain sqlite3 executemany); returns the admin token
    and the ingest key."""
    account_id, token, ingest_key = asyncio.run(_provision(f"sqlite+aiosqlite:///{path}"))
    fixture = Fixture(account_id, pending, events)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    with conn:
        for table, columns, rows in (
            ("user", USER_COLUMNS, fixture.users()),
            ("agent", AGENT_COLUMNS, fixture.agents()),
        ):
            conn.executemany(
                f'INSERT INTO "{table}" ({", ".join(columns)}) VALUES ({", ".join("?" * len(columns))})',
                (_sqlite_values(r) for r in rows),
            )
    conn.close()
    asyncio.run(_store_events(f"sqlite+aiosqlite:///{path}", fixture))
    asyncio.run(_settle_sqlite(f"sqlite+aiosqlite:///{path}"))
    return token, ingest_key


async def _settle_sqlite(url: str) -> None:
    """What the ``statistics`` job leaves a running server's SQLite file in (as autovacuum
    does PostgreSQL's, below): the planner's statistics, and the search index merged."""
    from server.infra import statistics
    from server.infra.db import Database

    db = Database(url)
    try:
        await statistics.refresh(db)
    finally:
        await db.dispose()


async def _store_events(url: str, fixture: Fixture) -> None:
    """Activity as ingestion stores it (chunks and rollups: server.domain.activity.chunks)."""
    from server.domain.activity import chunks
    from server.domain.activity.batch import Event
    from server.infra.db import Database

    db = Database(url)
    try:
        async with db.write() as session:
            await chunks.store(
                session,
                (
                    (u, a, Event(start, seconds, app, title, url_, kind))
                    for u, a, start, seconds, app, title, url_, kind in fixture.event_rows()
                ),
            )
    finally:
        await db.dispose()


async def _copy_postgres(url: str, fixture: Fixture) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        async with conn.transaction():
            await conn.copy_records_to_table("user", records=fixture.users(), columns=USER_COLUMNS)
            await conn.copy_records_to_table("agent", records=fixture.agents(), columns=AGENT_COLUMNS)
            # Rows came with explicit ids: move the sequences past them, as inserts would have.
            for table in ("user", "agent"):
                await conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), (SELECT max(id) FROM \"{table}\"))"
                )
        # What autovacuum leaves a table in after a while: statistics for the planner and a
        # visibility map, so plans are those of a settled database rather than a fresh load.
    finally:
        await conn.close()
    await _store_events(url, fixture)
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute('VACUUM (ANALYZE) "user", agent, activity_chunk, activity_rollup')
    finally:
        await conn.close()


def build_postgres(url: str, pending: int, events: int) -> tuple[str, str]:
    """The fixture in a fresh PostgreSQL database (COPY); returns the admin token and the ingest key."""
    account_id, token, ingest_key = asyncio.run(_provision(url))
    asyncio.run(_copy_postgres(url, Fixture(account_id, pending, events)))
    return token, ingest_key


# ---------------------------------------------------------------------------- the server


def serve(database_url: str, port: int) -> None:
    """Child process: the real app plus the comparison routes, under uvicorn."""
    import uvicorn

    from server.web.app import tune_gc

    app = bench_app(database_url)
    tune_gc()  # as plm serve does
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def bench_app(database_url: str) -> Any:
    """The real app (``create_app``, as ``plm serve`` makes it) plus the comparison routes:
    ``/bench/hello``, ``/bench/plain`` (the page's reads by hand) and ``/bench/me`` (the
    authentication and read session of any GraphQL request, answering ``{ me { id } }``)."""
    import orjson
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from server.domain import auth
    from server.domain.reads import lists, loads
    from server.infra.settings import Settings
    from server.web import runtime
    from server.web.app import create_app
    from server.web.http import bearer_token

    app = create_app(
        Settings(
            database_url=database_url,
            log_level="warning",
            # The server's speed, not the per-token limits (their checks still run).
            rate_limit_graphql="1000000/second",
            max_ws_per_token=100_000,
        )
    )

    async def hello(_: Request) -> JSONResponse:
        return JSONResponse({"hello": "world"})

    async def signed_in(request: Request, session: Any) -> Any:
        """The request's (admin, account), or None: the token checked in ``session``."""
        token = bearer_token(request.headers.get("authorization"))
        return await auth.authenticate(session, token) if token else None

    async def plain(request: Request) -> Response:
        """The GraphQL page's reads, written by hand: what GraphQL adds is the difference."""
        async with runtime.of(request.app).db.read() as session:
            found = await signed_in(request, session)
            if found is None:
                return JSONResponse({"error": "unauthenticated"}, status_code=401)
            _admin, account = found
            assert account.id is not None
            filt = lists.PendingFilter(account.id)
            page = await lists.pending_page(session, filt, 50, None)
            # As the GraphQL page does: a page that is the whole list is its own count.
            total = page.count if page.count is not None else await lists.pending_count(session, filt)
            user_ids = [u.id for u in page.items if u.id is not None]
            agents = await loads.agents_by_user(session, account.id, user_ids)
            retained = await loads.retained_by_user(session, user_ids)
        edges = []
        for user, cursor in zip(page.items, page.cursors, strict=True):
            assert user.id is not None
            info = loads.pending_info(user, retained.get(user.id, loads.Retained()), account.retention_days)
            edges.append(
                {
                    "cursor": cursor,
                    "node": {
                        "id": str(user.id),
                        "displayName": user.display_name,
                        "status": user.status.value,
                        "firstSeenAt": user.first_seen_at.isoformat(),
                        "lastSeenAt": user.last_seen_at.isoformat(),
                        "licensedAt": None,
                        "agents": [
                            {
                                "id": str(a.id),
                                "deviceName": a.device_name,
                                "domain": a.domain,
                                "logonName": a.logon_name,
                                "firstSeenAt": a.first_seen_at.isoformat(),
                                "lastSeenAt": a.last_seen_at.isoformat(),
                            }
                            for a in agents.get(user.id, [])
                        ],
                        "pending": None
                        if info is None
                        else {
                            "reason": info.reason.value,
                            "enteredAt": info.entered_at.isoformat(),
                            "retainedEventCount": info.retained_event_count,
                            "retainedActiveSeconds": info.retained_active_seconds,
                            "oldestRetainedAt": info.oldest_retained_at.isoformat()
                            if info.oldest_retained_at
                            else None,
                            "dataExpiresAt": info.data_expires_at.isoformat()
                            if info.data_expires_at
                            else None,
                        },
                    },
                }
            )
        body = {
            "pendingUsers": {
                "totalCount": total,
                "pageInfo": {"hasNextPage": page.has_next, "endCursor": page.end_cursor},
                "edges": edges,
            }
        }
        # Encoded as the GraphQL answers are (server.graphql.http: orjson).
        return Response(orjson.dumps({"data": body}), media_type="application/json")

    async def me(request: Request) -> Response:
        """What every GraphQL request does before its fields: the token, in a read session."""
        async with runtime.of(request.app).db.read() as session:
            found = await signed_in(request, session)
        if found is None:
            return JSONResponse({"error": "unauthenticated"}, status_code=401)
        return Response(
            orjson.dumps({"data": {"me": {"id": str(found[0].id)}}}), media_type="application/json"
        )

    app.router.routes[:0] = [
        Route("/bench/hello", hello),
        Route("/bench/plain", plain),
        Route("/bench/me", me),
    ]
    return app


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


Make = Callable[[int], bytes]
"""The ``i``-th request of a load (``i`` counts across its connections)."""


def same(raw: bytes) -> Make:
    return lambda _i: raw


async def load(
    port: int,
    make: Make,
    clients: int,
    seconds: float,
    ok: int = 200,
    check: bool = True,
    raw: bool = False,
    counter: Iterator[int] | None = None,
) -> dict[str, Any]:
    """The figures of ``clients`` connections sending ``make``'s requests for ``seconds``;
    ``raw``: with the latencies and the elapsed time too (to join slices: :func:`_joined`).
    ``counter`` numbers the requests (``make(i)``): a target's own, kept over its warm-up and
    turns, so a target that never repeats a request (varied) does not repeat one."""
    latencies: list[float] = []
    on_time = [0]  # answers received by the deadline: req/s counts these over the window
    bad: dict[int, int] = {}
    sample: list[bytes] = []
    start = time.perf_counter()
    deadline = start + seconds
    counter = itertools.count() if counter is None else counter

    async def worker() -> None:
        conn = Conn(port)
        try:
            while time.perf_counter() < deadline:
                raw = make(next(counter))
                t = time.perf_counter()
                status, body = await conn.request(raw)
                done = time.perf_counter()
                latencies.append(done - t)
                on_time[0] += done <= deadline
                if status != ok:
                    bad[status] = bad.get(status, 0) + 1
                if not sample:
                    sample.append(body)
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(clients)))
    latencies.sort()
    if bad:
        print(f"    non-{ok} answers: {bad}")
    if check and sample and b'"errors"' in sample[0]:
        print(f"    errors in the answer: {sample[0][:300]!r}")

    # The requests still out at the deadline are answered after it (their latencies count),
    # but not in req/s: the slower the answers, the longer that drain, which is no work.
    figures = _figures(latencies, on_time[0], seconds)
    figures.update(ok=len(latencies) - sum(bad.values()), bytes=len(sample[0]) if sample else 0)
    if raw:
        figures.update(latencies=latencies, on_time=on_time[0], window=seconds)
    return figures


def _figures(latencies: list[float], on_time: int, window: float) -> dict[str, Any]:
    """req/s (``on_time`` answers over ``window`` seconds), p50 and p99 (ms) of the sorted
    ``latencies`` (s), and their number."""

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {"rps": on_time / window, "p50": pct(0.50), "p99": pct(0.99), "n": len(latencies)}


def _slice(
    proc: subprocess.Popen[bytes], port: int, make: Make, counter: Iterator[int], clients: int, seconds: float
) -> dict[str, Any]:
    """One turn of a target: its figures, latencies and server CPU."""
    return _measured(proc, lambda: asyncio.run(load(port, make, clients, seconds, raw=True, counter=counter)))


def _joined(slices: list[dict[str, Any]]) -> dict[str, float]:
    """One target's figures over its slices: every request's latency, the slices' time and
    server CPU added up."""
    latencies = sorted(x for r in slices for x in r["latencies"])
    joined = _figures(latencies, sum(r["on_time"] for r in slices), sum(r["window"] for r in slices))
    cpu = sum(r["cpu_ms"] * r["n"] for r in slices)
    joined.update(
        ok=sum(r["ok"] for r in slices),
        bytes=slices[-1]["bytes"],
        cpu_ms=cpu / joined["n"] if joined["n"] else float("nan"),
    )
    return joined


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


def _cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) the process has used so far; ``None`` where /proc is absent."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------- the variants

VARIED_QUERY = (
    """query Queue($first: Int!, $search: String, $orderBy: PendingOrder) {
  pendingUsers(first: $first, search: $search, orderBy: $orderBy) {"""
    + PAGE_FIELDS
    + "} }"
)
ORDERS = ("ENTERED_ASC", "ENTERED_DESC", "NAME_ASC")


def search_terms(pending: int) -> list[str]:
    """400 terms over the fixture's names (Pending 00123), devices (PC-00123) and logons
    (user00123): most find ten rows or so, every fourth a few hundred."""
    terms = []
    for k in range(400):
        n = LICENSED + (k * 7919) % max(pending // 10, 1)
        terms.append((f"ng {n:04d}", f"pc-{n:04d}", f"USER{n:04d}", f"{k % 1000:03d}")[k % 4])
    return terms


def varied(token: str, pending: int) -> Make:
    """A different page every time (a term, an order, a size): the response cache never serves one."""
    terms = search_terms(pending)

    def make(i: int) -> bytes:
        variables = {
            "search": terms[i % len(terms)],
            "orderBy": ORDERS[i % len(ORDERS)],
            "first": 45 + (i // (len(terms) * len(ORDERS))) % 11,
        }
        return post("/graphql", {"query": VARIED_QUERY, "variables": variables}, token)

    return make


def ingest_batches(ingest_key: str, pending: int, now: datetime) -> Make:
    """100-event batches to known pending agents (the fixture's PC-xxxxx / userxxxxx), each new."""
    events = json.dumps(
        [
            {
                "start": _iso(now - timedelta(minutes=30) + timedelta(seconds=i)),
                "durationSeconds": 5,
                "app": "excel.exe",
                "title": "Budget.xlsx",
                "url": None,
                "productivity": "productive",
            }
            for i in range(100)
        ]
    )
    nonce = time.time_ns()

    def make(i: int) -> bytes:
        uid = LICENSED + 1 + (i * 7919) % pending
        agent = json.dumps({"deviceName": f"PC-{uid:05d}", "domain": "BENCH", "logonName": f"user{uid:05d}"})
        payload = f'{{"batchId": "mix-{nonce}-{i}", "agent": {agent}, "events": {events}}}'.encode()
        head = (
            f"POST /ingest HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {ingest_key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        )
        return head.encode() + payload

    return make


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


TARGETS = (
    "hello-world route",
    "GET /healthz",
    "plain JSON route",
    "GraphQL pendingUsers(first: 50)",
    "GraphQL, executed every time",
    "GraphQL varied (search, orders)",
    "GraphQL + activity(days: 30), last",
    "GraphQL + daily activeSeconds only",
)
MIXED = "mixed: varied page + ingest"
SEARCH_ONLY = ("GraphQL varied (search, orders)",)


def _start(database_url: str) -> tuple[subprocess.Popen[bytes], int]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLM_")}
    proc = subprocess.Popen([sys.executable, __file__, "--serve", database_url, str(port)], cwd=REPO, env=env)
    asyncio.run(wait_healthy(port, proc))
    return proc, port


def _measured(proc: subprocess.Popen[bytes], run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    cpu0 = _cpu_seconds(proc.pid)
    r = run()
    cpu1 = _cpu_seconds(proc.pid)
    # Server CPU per request: on a shared machine a steadier figure than req/s.
    r["cpu_ms"] = (cpu1 - cpu0) * 1000 / r["n"] if cpu0 is not None and cpu1 is not None else float("nan")
    return r


def _print(name: str, r: dict[str, float]) -> None:
    print(
        f"  {name:34s} {r['rps']:8.0f} req/s   p50 {r['p50']:6.1f} ms   p99 {r['p99']:6.1f} ms"
        f"   server CPU {r['cpu_ms']:5.2f} ms/req   ({r['bytes']:,} bytes)",
        flush=True,
    )


def run_targets(
    database_url: str,
    keys: tuple[str, str],
    pending: int,
    clients: int,
    seconds: float,
    targets: tuple[str, ...] = TARGETS,
    mixed_writers: int = 0,
    rounds: int = 5,
) -> dict[str, dict[str, float]]:
    """Serve ``database_url`` in a child process and load the targets, taking turns."""
    token, ingest_key = keys
    requests: dict[str, Make] = dict(
        zip(
            TARGETS,
            (
                same(get("/bench/hello", token)),
                same(get("/healthz", token)),
                same(get("/bench/plain", token)),
                same(post("/graphql", {"query": GRAPHQL_PAGE}, token)),
                same(post("/graphql", {"query": GRAPHQL_EXECUTED}, token)),
                varied(token, pending),
                same(post("/graphql", {"query": GRAPHQL_ACTIVITY}, token)),
                same(post("/graphql", {"query": GRAPHQL_SPARKLINE}, token)),
            ),
            strict=True,
        )
    )
    results: dict[str, dict[str, float]] = {}
    proc, port = _start(database_url)
    try:
        counters = {name: itertools.count() for name in targets}
        for name in targets:
            asyncio.run(load(port, requests[name], clients, 1.0, counter=counters[name]))
        # The targets take turns, ``rounds`` times ``seconds / rounds`` each: a machine whose
        # speed drifts over the run (a shared one does) slows them alike, and the ratios
        # between them (GraphQL / plain, healthz / hello) compare like with like.
        slices: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
        for _ in range(rounds):
            for name in targets:
                slices[name].append(
                    _slice(proc, port, requests[name], counters[name], clients, seconds / rounds)
                )
        for name in targets:
            results[name] = _joined(slices[name])
            _print(name, results[name])
        if mixed_writers:
            cpu0 = _cpu_seconds(proc.pid)
            # The varied page's requests go on from its own: none repeats one (a cache hit).
            counter = counters.get(SEARCH_ONLY[0], itertools.count())
            page, ingest = _mixed(
                port, varied(token, pending), counter, ingest_key, pending, clients, mixed_writers, seconds
            )
            cpu1 = _cpu_seconds(proc.pid)
            # Both loads' CPU over the page requests: it overstates what a page costs.
            page["cpu_ms"] = (
                (cpu1 - cpu0) * 1000 / page["n"] if cpu0 is not None and cpu1 is not None else float("nan")
            )
            results[MIXED], results[MIXED + " (ingest)"] = page, ingest
            _print(MIXED + " (page)", page)
            print(
                f"  {'mixed: ingest alongside':34s} {ingest['events']:8,.0f} events/s  p99 {ingest['p99']:6.1f} ms"
                f"   ({mixed_writers} writers, 100-event batches to known pending agents)",
                flush=True,
            )
    finally:
        proc.terminate()
        proc.wait(10)
    return results


def _mixed(
    port: int,
    page: Make,
    counter: Iterator[int],
    ingest_key: str,
    pending: int,
    clients: int,
    writers: int,
    seconds: float,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The varied page and ingest at once: (the page's figures, ingest's, with events/s)."""

    async def both() -> tuple[dict[str, Any], dict[str, Any]]:
        batches = ingest_batches(ingest_key, pending, datetime.now(UTC))
        return await asyncio.gather(
            load(port, page, clients, seconds, counter=counter),
            load(port, batches, writers, seconds, ok=202, check=False),
        )

    read, write = asyncio.run(both())
    write["events"] = write["rps"] * 100 * (write["ok"] / write["n"] if write["n"] else 0)
    return read, write


def _databases(
    args: argparse.Namespace, pending: int, events: int
) -> Iterator[tuple[str, str, tuple[str, str]]]:
    """(name, url, keys) of a fresh fixture in each database asked for, torn down after use."""
    fixture = f"{pending:,} pending users, {events:,} events"
    if not args.no_sqlite:
        workdir = Path(tempfile.mkdtemp(prefix="plm-bench-"))
        try:
            t = time.perf_counter()
            keys = build_sqlite(workdir / "bench.db", pending, events)
            print(
                f"SQLite (WAL, synchronous=FULL): {fixture}, built in {time.perf_counter() - t:.1f} s",
                flush=True,
            )
            yield "SQLite", f"sqlite+aiosqlite:///{workdir / 'bench.db'}", keys
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    from tests import pg

    if not args.no_postgres and pg.binaries() is not None:
        server = pg.PostgresServer(durable=True)
        try:
            url = server.create_database()
            t = time.perf_counter()
            keys = build_postgres(url, pending, events)
            print(
                f"PostgreSQL (fsync on, synchronous_commit on): {fixture}, built in "
                f"{time.perf_counter() - t:.1f} s",
                flush=True,
            )
            yield "PostgreSQL", url, keys
        finally:
            server.stop()
    elif not args.no_postgres:
        print("PostgreSQL: server binaries not found, skipped")


def _verdict(figure: float, target: float, higher_is_better: bool = True) -> str:
    ratio = figure / target if higher_is_better else target / figure if figure else float("inf")
    return f"{ratio:5.2f}x of target {'ok' if ratio >= 1 else 'MISSED'}"


def report(
    results: dict[str, dict[str, dict[str, float]]], big: dict[str, dict[str, float]], users: int
) -> None:
    print()
    print(f"{'':34s}" + "".join(f" | {name:^38s}" for name in results))
    print(
        f"{'target':34s}"
        + f" | {'req/s':>7s} {'p50 ms':>7s} {'p99 ms':>7s} {'CPU ms/req':>13s}" * len(results)
    )
    for target in (*TARGETS, MIXED):
        print(
            f"{target:34s}"
            + "".join(
                f" | {r[target]['rps']:7.0f} {r[target]['p50']:7.1f} {r[target]['p99']:7.1f} {r[target]['cpu_ms']:13.2f}"
                for r in results.values()
                if target in r
            )
        )
    for name, r in results.items():
        hello, healthz, plain, gql, executed, var, activity, _sparkline = (r[t] for t in TARGETS)
        mixed, ingest = r[MIXED], r[MIXED + " (ingest)"]
        print(f"{name}: against the targets (2 cores, shared machine: req/s is noisy, CPU ms/req steadier)")
        lines = [
            ("varied page >= 250 req/s", _verdict(var["rps"], 250)),
            ("varied page p99 <= 250 ms", _verdict(var["p99"], 250, higher_is_better=False)),
            (
                "GraphQL executed >= 0.8x plain",
                f"{executed['rps'] / plain['rps']:.2f}x plain by req/s, "
                f"{plain['cpu_ms'] / executed['cpu_ms']:.2f}x by CPU ms/req: "
                + _verdict(executed["rps"] / plain["rps"], 0.8),
            ),
            ("mixed: page p99 <= 100 ms", _verdict(mixed["p99"], 100, higher_is_better=False)),
            (
                "mixed: ingest >= 20,000 events/s",
                f"{ingest['events']:,.0f} events/s, " + _verdict(ingest["events"], 20_000),
            ),
            (
                "/healthz >= 0.8x hello-world",
                f"{healthz['rps'] / hello['rps']:.2f}x hello, "
                + _verdict(healthz["rps"] / hello["rps"], 0.8),
            ),
            (
                "activity(days: 30) page",
                f"{activity['rps']:.0f} req/s, {activity['rps'] / executed['rps']:.2f}x executed",
            ),
            ("cached page / hello", f"{gql['rps'] / hello['rps']:.2f}x"),
        ]
        if name in big:
            b = big[name]
            lines.append(
                (
                    f"varied search, {users:,} users",
                    f"{b['rps']:.0f} req/s, p99 {b['p99']:.0f} ms, {b['cpu_ms']:.2f} CPU ms/req, "
                    f"{b['rps'] / var['rps']:.2f}x the {10_000:,}-user figure; "
                    + _verdict(b["p99"], 250, False),
                )
            )
        for label, text in lines:
            print(f"  {label:34s} {text}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5, help="turns the targets take, --seconds in all")
    parser.add_argument("--writers", type=int, default=8, help="ingest connections in the mixed variant")
    parser.add_argument("--pending", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument(
        "--search-users", type=int, default=100_000, help="users of the large search run (0: skip)"
    )
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite run")
    parser.add_argument("--no-postgres", action="store_true", help="skip the throwaway PostgreSQL run")
    parser.add_argument("--serve", nargs=2, metavar=("DATABASE_URL", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return

    print(
        f"{args.clients} concurrent clients, {args.seconds:g} s per target in {args.rounds} turns"
        " (after a 1 s warm-up each)"
    )
    results: dict[str, dict[str, dict[str, float]]] = {}
    for name, url, keys in _databases(args, args.pending, args.events):
        results[name] = run_targets(
            url,
            keys,
            args.pending,
            args.clients,
            args.seconds,
            mixed_writers=args.writers,
            rounds=args.rounds,
        )
    big: dict[str, dict[str, float]] = {}
    if args.search_users:
        for name, url, keys in _databases(args, args.search_users, 0):
            big[name] = run_targets(url, keys, args.search_users, args.clients, args.seconds, SEARCH_ONLY)[
                SEARCH_ONLY[0]
            ]
    if results:
        report(results, big, args.search_users)


if __name__ == "__main__":
    main()
