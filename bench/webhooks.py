"""Webhook delivery: 1,000 queue events to 5 endpoints, one of them slow.

    .venv/bin/python bench/webhooks.py [--events 1000] [--endpoints 5] [--slow-seconds 1.0]
                                       [--concurrency 20] [--rate 0]

Starts the real app (``create_app`` + uvicorn, as ``plm serve`` runs it, webhook job
included) on a fresh SQLite database in a child process, with ``PLM_WEBHOOK_ALLOW_HTTP`` and
``PLM_WEBHOOK_ALLOW_PRIVATE`` on so it may call this process's receivers: one uvicorn app
on a free port serving ``--endpoints`` STANDARD webhooks, the last of which answers only
after ``--slow-seconds``. Then ``--events`` new agents report over ``POST /ingest``
(``--concurrency`` at a time, as fast as they can or ``--rate`` a second) on an account
with no license free, so each one is an
ENTERED queue event delivered to every endpoint.

Commit-to-receipt: the child wraps its broadcaster's ``committed()`` (called right after the
transaction that wrote the event and its deliveries commits) and writes ``time.time()`` per
event to a file; each receiver notes ``time.time()`` when a request arrives (same machine,
same clock). Prints p50/p99/max latency for the fast endpoints and for the slow one, the
fast endpoints' delivery throughput, and duplicates or missing deliveries; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def serve(database_url: str, port: int, stamps: str) -> None:
    """Child process: the real app, stamping each event as its transaction commits."""
    import uvicorn

    from bench._http import stamp_commits
    from server.infra.settings import Settings
    from server.web.app import create_app, tune_gc

    settings = Settings(
        database_url=database_url, log_level="warning", webhook_allow_http=True, webhook_allow_private=True
    )
    app = create_app(settings)
    stamp_commits(app, stamps, lambda e, now: f"{e.user_id} {now}\n")
    tune_gc()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


async def provision(url: str, endpoints: list[str]) -> str:
    """An account with no license free and a STANDARD webhook per endpoint; its ingest key."""
    from server.domain import accounts
    from server.domain.changes import Actor
    from server.domain.models import Role, utcnow
    from server.domain.webhooks import manage, urls
    from server.domain.webhooks.tables import WebhookFormat
    from server.infra.db import Database

    db = Database(url)
    try:
        await db.migrate()
        async with db.write() as session:
            account = await accounts.create_account(
                session, name="Bench", license_limit=0, retention_days=30, now=utcnow()
            )
            admin = await accounts.create_admin(
                session,
                account_id=account.id,
                email="admin@bench.example",
                name="Bench Admin",
                role=Role.ADMIN,
                now=utcnow(),
            )
        policy = urls.UrlPolicy(allow_http=True, allow_private=True)
        actor = Actor(account.id, admin.id, Role.ADMIN)
        for endpoint in endpoints:
            vetted = await urls.vet(endpoint, policy)
            async with db.write() as session:
                await manage.create(session, actor, vetted, WebhookFormat.STANDARD, None, utcnow())
        return account.secret
    finally:
        await db.dispose()


class Receipts:
    def __init__(self, expected: int) -> None:
        # (path, userId, webhook-id, time)
        self.hits: list[tuple[str, str, str, float]] = []
        self.expected = expected
        self.done = asyncio.Event()


def receiver_app(receipts: Receipts, slow_path: str, slow_seconds: float):  # type: ignore[no-untyped-def]
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def hook(request: Request) -> Response:
        now = time.time()
        path = request.path_params["path"]
        body = json.loads(await request.body())
        receipts.hits.append((path, body["data"]["userId"], request.headers["webhook-id"], now))
        if len(receipts.hits) >= receipts.expected:
            receipts.done.set()
        if path == slow_path:
            await asyncio.sleep(slow_seconds)
        return Response(status_code=204)

    return Starlette(routes=[Route("/{path:path}", hook, methods=["POST"])])


def start_server(url: str, port: int, stamps: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, __file__, "--serve", url, str(port), stamps],
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def read_commits(stamps: str) -> dict[str, float]:
    """userId -> when the transaction that recorded its event committed."""
    commits: dict[str, float] = {}
    for line in Path(stamps).read_text().splitlines():
        user_id, at = line.split()
        commits.setdefault(user_id, float(at))
    return commits


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentiles(values: list[float]) -> str:
    if not values:
        return "no data"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"p50 {statistics.median(ordered) * 1000:7.1f} ms   p99 {p99 * 1000:7.1f} ms   "
        f"max {ordered[-1] * 1000:7.1f} ms"
    )


async def main(args: argparse.Namespace) -> None:
    import httpx
    import uvicorn

    tmp = Path(tempfile.mkdtemp(prefix="plm-bench-webhooks-"))
    url = f"sqlite+aiosqlite:///{tmp / 'plm.db'}"
    stamps = str(tmp / "stamps.txt")
    paths = [f"ep{i}" for i in range(args.endpoints)]
    slow = paths[-1]
    receipts = Receipts(args.events * args.endpoints)

    receiver_port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            receiver_app(receipts, slow, args.slow_seconds), port=receiver_port, log_level="warning"
        )
    )
    receiving = asyncio.create_task(server.serve())
    ingest_key = await provision(url, [f"http://127.0.0.1:{receiver_port}/{p}" for p in paths])

    port = free_port()
    child = start_server(url, port, stamps)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            for _ in range(300):
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
            headers = {"Authorization": f"Bearer {ingest_key}"}
            queue: asyncio.Queue[int] = asyncio.Queue()
            for n in range(args.events):
                queue.put_nowait(n)

            async def reporter() -> None:
                while not queue.empty():
                    n = queue.get_nowait()
                    if args.rate:  # paced: event n is reported at n / rate seconds
                        await asyncio.sleep(max(0.0, started + n / args.rate - time.time()))
                    body = {
                        "batchId": f"b-{n}",
                        "agent": {"deviceName": f"PC-{n}", "domain": "ACME", "logonName": f"user{n}"},
                        "events": [],
                    }
                    (await http.post("/ingest", json=body, headers=headers)).raise_for_status()

            started = time.time()
            await asyncio.gather(*(reporter() for _ in range(args.concurrency)))
            committed = time.time()
            print(f"{args.events} events committed in {committed - started:.1f} s")
            try:
                await asyncio.wait_for(receipts.done.wait(), args.timeout)
            except TimeoutError:
                print(f"timed out after {args.timeout} s waiting for every delivery")
            finished = time.time()
    finally:
        child.terminate()
        # Off the event loop: the child's last sends are waiting for this process's receivers.
        await asyncio.to_thread(child.wait, 30)
        server.should_exit = True
        await receiving

    commits = read_commits(stamps)
    latency: dict[str, list[float]] = {p: [] for p in paths}
    last_fast = 0.0
    for path, user_id, _msg, at in receipts.hits:
        latency[path].append(at - commits[user_id])
        if path != slow:
            last_fast = max(last_fast, float(at))
    repeats = sum(n - 1 for n in Counter((p, m) for p, _u, m, _t in receipts.hits).values())
    missing = args.events * args.endpoints - len({(p, u) for p, u, _m, _t in receipts.hits})

    print(f"\n{args.endpoints} endpoints; {slow} answers after {args.slow_seconds:g} s")
    fast = [v for p in paths if p != slow for v in latency[p]]
    print(f"fast endpoints ({len(fast):,} deliveries)  commit->receipt {percentiles(fast)}")
    print(f"slow endpoint  ({len(latency[slow]):,} deliveries)  commit->receipt {percentiles(latency[slow])}")
    fast_span = last_fast - started
    print(
        f"fast endpoints' throughput: {len(fast) / fast_span:,.0f} deliveries/s (first report to last receipt)"
    )
    print(f"slow endpoint's throughput: {len(latency[slow]) / (finished - started):,.1f} deliveries/s")
    print(f"repeated deliveries: {repeats}; missing: {missing}; wall time {finished - started:.1f} s")
    server_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    own_cpu = resource.getrusage(resource.RUSAGE_SELF)
    print(
        f"CPU: server {server_cpu.ru_utime + server_cpu.ru_stime:.1f} s, this process (agents and "
        f"receivers) {own_cpu.ru_utime + own_cpu.ru_stime:.1f} s; load average {os.getloadavg()[0]:.1f}"
    )


def cli() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--endpoints", type=int, default=5)
    parser.add_argument("--slow-seconds", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--rate", type=float, default=0, help="events per second (0: as fast as possible)")
    asyncio.run(main(parser.parse_args()))


if __name__ == "__main__":
    cli()
