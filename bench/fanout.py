"""Live queue fan-out: many subscribers of one account over real websockets.

    .venv/bin/python bench/fanout.py [--subscribers 500] [--events 200] [--interval 0.05] [--compression]

Starts the real app (``create_app`` + uvicorn with ``websockets-sansio``, as ``plm serve``
runs it) on a fresh SQLite database in a child process, opens ``--subscribers`` raw
graphql-transport-ws connections from this process (``websockets``; a gql client each would
cost this process more than the server), each subscribed to ``pendingQueueChanged`` with the
admin client's own document (``tui_client.operations.PENDING_QUEUE_CHANGED``: the user with
agents and pending info, the account usage, the actor). Then it makes ``--events`` queue
events one action at a time, ``--interval`` seconds apart: half arrivals over ``POST
/ingest`` on a manual-review account (ENTERED), half ``approvePendingUsers`` mutations of
those users (APPROVED).

Commit-to-receipt: the child wraps its broadcaster's ``committed()`` — called right after
the transaction commits, before any delivery — and writes ``time.time()`` per event to a
file; each client notes ``time.time()`` when a message arrives (same machine, same clock).
Events lost: expected deliveries (events x subscribers) never received, counted after the
run has gone quiet. A warm-up event, not counted, proves every subscription registered.

Prints p50/p99/max latency (and, to tell rendering from fan-out, the same for the first
subscriber to receive each event), events lost, and the wall time; asserts nothing.
Targets on the 2-core development machine: p99 <= 100 ms, 0 lost. Both processes share the
machine's cores, so other load on it shows directly in the tail (check ``uptime``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


# ---------------------------------------------------------------------------- the server


def serve(database_url: str, port: int, stamps: str) -> None:
    """Child process: the real app, stamping each event as its transaction commits."""
    import uvicorn

    from bench._http import stamp_commits
    from server.infra.settings import Settings
    from server.web.app import create_app, tune_gc

    app = create_app(
        Settings(
            database_url=database_url,
            log_level="warning",
            # The server's speed, not the per-token limits (their checks still run).
            rate_limit_graphql="1000000/second",
            max_ws_per_token=100_000,
        )
    )
    stamp_commits(app, stamps, lambda e, now: f"{e.action.value} {e.user_id} {now}\n")
    tune_gc()  # as plm serve does
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", ws="websockets-sansio")


async def provision(url: str) -> tuple[str, str]:
    from server.domain import accounts
    from server.domain.models import Role, utcnow
    from server.infra.db import Database

    db = Database(url)
    try:
        await db.migrate()
        async with db.write() as session:
            account = await accounts.create_account(
                session,
                name="Bench",
                license_limit=10_000,
                manual_review=True,
                retention_days=30,
                now=utcnow(),
            )
            admin = await accounts.create_admin(
                session,
                account_id=account.id,
                email="admin@bench.example",
                name="Bench Admin",
                role=Role.ADMIN,
                now=utcnow(),
            )
        return account.secret, admin.secret
    finally:
        await db.dispose()


# ---------------------------------------------------------------------------- the clients


class Receipts:
    def __init__(self) -> None:
        # (action, userId) -> arrival times, one per subscriber that got it
        self.times: dict[tuple[str, str], list[float]] = {}
        self.acked = 0
        self.errors: list[str] = []
        # Set on every arrival, for waits that must not poll on a timer.
        self.arrived = asyncio.Event()


async def subscriber(url: str, token: str, query: str, receipts: Receipts, compression: bool) -> None:
    import websockets

    async with websockets.connect(
        url,
        subprotocols=[websockets.Subprotocol("graphql-transport-ws")],
        compression="deflate" if compression else None,
        max_queue=None,
        open_timeout=60,
        ping_interval=None,
    ) as ws:
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        )
        await ws.recv()
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
        receipts.acked += 1
        async for raw in ws:
            now = time.time()
            message = json.loads(raw)
            if message.get("type") != "next":
                receipts.errors.append(str(message)[:200])
                continue
            event = message["payload"]["data"]["pendingQueueChanged"]
            receipts.times.setdefault((event["action"], event["userId"]), []).append(now)
            receipts.arrived.set()


async def run(
    args: argparse.Namespace, port: int, ingest_key: str, token: str
) -> tuple[Receipts, list[tuple[str, str]], float]:
    import httpx

    from tui_client.operations import PENDING_QUEUE_CHANGED

    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        for _ in range(300):
            try:
                if (await http.get("/healthz")).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
        receipts = Receipts()
        ws_url = f"ws://127.0.0.1:{port}/graphql"
        clients = []
        started = time.perf_counter()
        for _ in range(args.subscribers):
            clients.append(
                asyncio.create_task(
                    subscriber(ws_url, token, PENDING_QUEUE_CHANGED, receipts, args.compression)
                )
            )
            await asyncio.sleep(0)
        while receipts.acked < args.subscribers:
            if any(c.done() for c in clients):
                [c.result() for c in clients if c.done()]
            await asyncio.sleep(0.05)
        print(f"{args.subscribers} subscribers connected in {time.perf_counter() - started:.1f} s")

        ingest_headers = {"Authorization": f"Bearer {ingest_key}"}
        gql_headers = {"Authorization": f"Bearer {token}"}

        async def arrive(n: int) -> str:
            body = {
                "batchId": f"b-{n}",
                "agent": {
                    "deviceName": f"PC-{n}",
                    "domain": "ACME",
                    "logonName": f"user{n}",
                    "displayName": f"User {n}",
                },
                "events": [],
            }
            response = await http.post("/ingest", json=body, headers=ingest_headers)
            response.raise_for_status()
            return str(response.json()["userId"])

        # Warm-up: once every subscriber heard this one, every subscription is registered.
        warm = await arrive(-1)
        while len(receipts.times.get(("ENTERED", warm), ())) < args.subscribers:
            receipts.arrived.clear()
            await asyncio.wait_for(receipts.arrived.wait(), 60)

        approve = "mutation($ids: [ID!]!) { approvePendingUsers(input: {userIds: $ids}) { errors { code } } }"
        expected: list[tuple[str, str]] = []
        arrived: list[str] = []
        started = time.perf_counter()
        for n in range(args.events):
            if n % 2 == 0 or not arrived:
                user_id = await arrive(n)
                arrived.append(user_id)
                expected.append(("ENTERED", user_id))
            else:
                user_id = arrived.pop(0)
                response = await http.post(
                    "/graphql", json={"query": approve, "variables": {"ids": [user_id]}}, headers=gql_headers
                )
                assert not response.json()["data"]["approvePendingUsers"]["errors"], response.text
                expected.append(("APPROVED", user_id))
            await asyncio.sleep(args.interval)
        elapsed = time.perf_counter() - started

        # Quiet: wait until deliveries stop growing (or everything arrived).
        want = len(expected) * args.subscribers
        last, still = -1, 0
        while still < 20:
            got = sum(len(receipts.times.get(k, ())) for k in expected)
            if got >= want:
                break
            still = still + 1 if got == last else 0
            last = got
            await asyncio.sleep(0.1)
        for c in clients:
            c.cancel()
        await asyncio.gather(*clients, return_exceptions=True)
    return receipts, expected, elapsed


def report(
    args: argparse.Namespace,
    stamps: Path,
    receipts: Receipts,
    expected: list[tuple[str, str]],
    elapsed: float,
) -> None:
    committed: dict[tuple[str, str], float] = {}
    for line in stamps.read_text().splitlines():
        action, user_id, at = line.split()
        committed[(action, user_id)] = float(at)
    latencies: list[float] = []
    firsts: list[float] = []
    lost = 0
    for key in expected:
        times = receipts.times.get(key, [])
        lost += args.subscribers - len(times)
        latencies.extend((t - committed[key]) * 1000 for t in times)
        if times:
            firsts.append((min(times) - committed[key]) * 1000)
    latencies.sort()
    q = statistics.quantiles(latencies, n=100)
    qf = statistics.quantiles(firsts, n=100)
    print(
        f"{len(expected)} events x {args.subscribers} subscribers in {elapsed:.1f} s "
        f"({len(expected) / elapsed:.0f} events/s), websocket compression {'on' if args.compression else 'off'}"
    )
    print(f"commit-to-receipt: p50 {q[49]:.1f} ms  p99 {q[98]:.1f} ms  max {latencies[-1]:.1f} ms")
    print(f"  first subscriber to receive each event: p50 {qf[49]:.1f} ms  p99 {qf[98]:.1f} ms")
    print(f"events lost: {lost} of {len(expected) * args.subscribers}")
    if receipts.errors:
        print(f"non-event messages: {len(receipts.errors)}, e.g. {receipts.errors[0]}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, default=500)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between actions")
    parser.add_argument("--compression", action="store_true", help="negotiate permessage-deflate")
    parser.add_argument(
        "--serve", nargs=3, metavar=("DATABASE_URL", "PORT", "STAMPS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), args.serve[2])
        return
    tmp = Path(tempfile.mkdtemp(prefix="plm-fanout-"))
    url = f"sqlite+aiosqlite:///{tmp / 'plm.db'}"
    stamps = tmp / "stamps.txt"
    ingest_key, token = asyncio.run(provision(url))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PLM_LOG_LEVEL": "warning"}
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", url, str(port), str(stamps)], cwd=REPO, env=env
    )
    try:
        receipts, expected, elapsed = asyncio.run(run(args, port, ingest_key, token))
    finally:
        proc.terminate()
        proc.wait(30)
    report(args, stamps, receipts, expected, elapsed)


if __name__ == "__main__":
    main()
