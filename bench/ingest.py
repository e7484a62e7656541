"""Ingestion throughput: end to end over HTTP against the raw SQLite ceiling, in one run.

    python bench/ingest.py [--seconds 15] [--clients 16] [--database-url URL] [--no-postgres]

Starts ``plm serve`` in a child process on a fresh SQLite database (and then on a throwaway
PostgreSQL with default durability, when its binaries are installed), then:
1. known agents post 100-event batches from concurrent keep-alive clients → events/s;
2. the raw ceiling: the same rows inserted in-process with SQLAlchemy Core executemany in
   100-row transactions, same database settings → events/s, and the ratio;
3. new agents (one heartbeat batch each) → admissions/s.
Prints figures; asserts nothing. Targets (2 cores): ≥ 30,000 events/s, ≥ 0.5x raw, ≥ 300 admissions/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._http import encode_post, run_load
from server.domain.models import ActivityEvent
from server.infra.db import Database

START = datetime(2026, 11, 26, 9, tzinfo=UTC)
AGENTS = 200


def events(n: int, offset: int) -> list[dict[str, object]]:
    return [
        {
            "start": (START + timedelta(seconds=offset + i)).isoformat(),
            "durationSeconds": 30,
            "app": "excel.exe",
            "title": "Budget.xlsx",
            "url": None,
            "productivity": "productive",
        }
        for i in range(n)
    ]


def plm(env: dict[str, str], *args: str) -> dict[str, str]:
    out = subprocess.run(
        [sys.executable, "-m", "server.cli", *args], env=env, capture_output=True, text=True, check=True
    )
    result: dict[str, str] = json.loads(out.stdout)
    return result


def start_server(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


async def raw_ceiling(url: str, seconds: float, user_id: int, agent_id: int) -> float:
    db = Database(url)
    rows = [
        {
            "user_id": user_id,
            "agent_id": agent_id,
            "start": START + timedelta(seconds=i),
            "duration_seconds": 30,
            "app": "excel.exe",
            "title": "Budget.xlsx",
            "url": None,
            "productivity": "productive",
        }
        for i in range(100)
    ]
    n = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        async with db.write_engine.begin() as conn:
            await conn.execute(sa.insert(ActivityEvent.__table__), rows)  # type: ignore[attr-defined]
        n += 100
    elapsed = time.perf_counter() - t0
    await db.dispose()
    return n / elapsed


def run(url: str, seconds: float, clients: int) -> dict[str, float]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PLM_")},
        "PLM_DATABASE_URL": url,
        "PLM_LOG_LEVEL": "warning",
        # The server's throughput, not the per-key limit (its check still runs per batch).
        "PLM_RATE_LIMIT_INGEST": "1000000/second",
    }
    account = plm(env, "account", "create", "--name", f"Bench {time.time_ns()}", "--licenses", "100000")
    headers = {"Authorization": f"Bearer {account['ingestKey']}"}
    port = 18000 + os.getpid() % 1000
    proc = start_server(env, port)
    try:
        # Warm up: admit the known agents.
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            first = None
            for a in range(AGENTS):
                r = http.post(
                    "/ingest",
                    headers=headers,
                    json={
                        "batchId": f"warm-{a}",
                        "agent": {"deviceName": f"PC-{a}", "domain": "BENCH", "logonName": f"u{a}"},
                        "events": [],
                    },
                )
                r.raise_for_status()
                first = first or r.json()
        assert first is not None
        payloads = [events(100, k * 100) for k in range(50)]

        def batch(i: int) -> bytes:
            a = i % AGENTS
            return encode_post(
                "/ingest",
                {
                    "batchId": f"b-{i}",
                    "agent": {"deviceName": f"PC-{a}", "domain": "BENCH", "logonName": f"u{a}"},
                    "events": payloads[i % len(payloads)],
                },
                headers,
            )

        stats, elapsed = asyncio.run(run_load("127.0.0.1", port, batch, clients=clients, seconds=seconds))
        ok = stats.statuses.get(202, 0)
        e2e = ok * 100 / elapsed
        print(
            f"  end to end:   {e2e:10,.0f} events/s  ({ok:,} batches of 100 in {elapsed:.1f}s, "
            f"{clients} clients, p50 {stats.pct(0.5):.1f} ms, p99 {stats.pct(0.99):.1f} ms, statuses {stats.statuses})"
        )

        def newcomer(i: int) -> bytes:
            return encode_post(
                "/ingest",
                {
                    "batchId": "hb",
                    "agent": {"deviceName": f"NEW-{i}", "domain": "BENCH", "logonName": f"n{i}"},
                    "events": [],
                },
                headers,
            )

        stats, elapsed = asyncio.run(
            run_load("127.0.0.1", port, newcomer, clients=clients, seconds=min(seconds, 10))
        )
        admitted = stats.statuses.get(202, 0)
        print(
            f"  admissions:   {admitted / elapsed:10,.0f} new agents/s  ({admitted:,} in {elapsed:.1f}s, "
            f"p99 {stats.pct(0.99):.1f} ms, statuses {stats.statuses})"
        )
    finally:
        proc.terminate()
        proc.wait()

    raw = asyncio.run(raw_ceiling(url, min(seconds, 10), int(first["userId"]), int(first["agentId"])))
    print(f"  raw ceiling:  {raw:10,.0f} events/s  (Core executemany, 100-row transactions, same settings)")
    print(f"  ratio:        {e2e / raw:10.2f} x raw ceiling")
    return {"e2e": e2e, "admissions": admitted / elapsed, "raw": raw}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument(
        "--database-url", default=None, help="only this database (default: fresh SQLite, then PostgreSQL)"
    )
    ap.add_argument("--no-postgres", action="store_true", help="skip the throwaway PostgreSQL run")
    args = ap.parse_args()

    results: dict[str, dict[str, float]] = {}
    if args.database_url:
        print(args.database_url)
        results["given"] = run(args.database_url, args.seconds, args.clients)
    else:
        tmp = Path(tempfile.mkdtemp(prefix="plm-bench-"))
        print("SQLite (WAL, synchronous=FULL)")
        results["SQLite"] = run(f"sqlite+aiosqlite:///{tmp / 'bench.db'}", args.seconds, args.clients)
        from tests import pg

        if not args.no_postgres and pg.binaries() is not None:
            server = pg.PostgresServer(durable=True)
            try:
                print("PostgreSQL (fsync on, synchronous_commit on)")
                results["PostgreSQL"] = run(server.create_database(), args.seconds, args.clients)
            finally:
                server.stop()
    print()
    print(f"{'database':<12} {'events/s':>10} {'raw':>10} {'ratio':>6} {'admissions/s':>13}")
    for name, r in results.items():
        print(
            f"{name:<12} {r['e2e']:>10,.0f} {r['raw']:>10,.0f} {r['e2e'] / r['raw']:>6.2f} {r['admissions']:>13,.0f}"
        )
    print("targets (2 cores): >= 30,000 events/s end to end, >= 0.5x raw, >= 300 admissions/s")


if __name__ == "__main__":
    main()
