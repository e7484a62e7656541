"""Ingestion throughput: end to end over HTTP against the raw SQLite ceiling, in one run.

    python bench/ingest.py [--seconds 15] [--clients 16] [--database-url URL] [--no-postgres]

Starts ``plm serve`` in a child process on a fresh SQLite database (and then on a throwaway
PostgreSQL with default durability, when its binaries are installed), then:
1. known agents, half of them licensed and half pending, post 100-event batches (eight apps,
   three productivities) from concurrent keep-alive clients → events/s, p50/p99, and the
   server's CPU per event (steadier than throughput on a shared machine);
2. bytes on disk per stored event (SQLite: the file after a WAL checkpoint; PostgreSQL: the
   database's size), over the events stored;
3. two ceilings in-process, same database and settings, in transactions of as many 100-event
   batches as there are clients (what one group commit holds at most), for as many agents:
   today's storage (chunks and rollups, :mod:`server.domain.activity.chunks`), and the
   one-row-per-event table it replaced (two indexes, foreign keys) → events/s, and ratios;
4. new agents (one heartbeat batch each) → admissions/s (``bench/admission.py`` measures
   admission itself).
Prints figures beside the issue's targets; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._http import encode_post, run_load
from bench._server import cpu_seconds, plm, start_server
from server.domain.activity import chunks, convert
from server.domain.activity.batch import Event
from server.infra.db import Database

START = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
AGENTS = 500  # half licensed, half pending
APPS = (
    "excel.exe",
    "outlook.exe",
    "chrome.exe",
    "teams.exe",
    "code.exe",
    "slack.exe",
    "word.exe",
    "zoom.exe",
)
PRODUCTIVITY = ("productive", "neutral", "unproductive")
TARGET_EVENTS, TARGET_P99_MS = 100_000, 100.0


def events(n: int, offset: int) -> list[dict[str, object]]:
    return [
        {
            "start": (START + timedelta(seconds=offset + i)).isoformat(),
            "durationSeconds": 30,
            "app": APPS[(offset + i) % len(APPS)],
            "title": f"Document {(offset + i) % 97}.xlsx",
            "url": None,
            "productivity": PRODUCTIVITY[(offset + i) % len(PRODUCTIVITY)],
        }
        for i in range(n)
    ]


async def ceilings(url: str, seconds: float, batches: int) -> tuple[float, float]:
    """Events/s in-process, ``batches`` of 100 events per transaction (one per agent): today's
    storage, then one row per event."""
    db = Database(url)
    async with db.read() as session:
        agents = (
            await session.execute(
                sa.text("SELECT user_id, id FROM agent ORDER BY id LIMIT :n"), {"n": batches}
            )
        ).all()
    sample = [
        Event(START + timedelta(seconds=i), 30, APPS[i % 8], f"Document {i}.xlsx", None, PRODUCTIVITY[i % 3])
        for i in range(100)
    ]
    per_tx = 100 * len(agents)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        async with db.write() as session:
            writes = chunks.Writes()
            for user_id, agent_id in agents:
                writes.add(user_id, agent_id, agent_id, sample)
            await writes.flush(session)
        n += per_tx
    stored = n / (time.perf_counter() - t0)
    # The table this storage replaced, with its indexes and foreign keys.
    md = sa.MetaData()
    async with db.write_engine.begin() as conn:
        await conn.run_sync(lambda c: md.reflect(c, only=["user", "agent"]))
    old = convert.event_table("bench_activity_event", md)
    old.append_constraint(sa.ForeignKeyConstraint(["user_id"], ["user.id"]))
    old.append_constraint(sa.ForeignKeyConstraint(["agent_id"], ["agent.id"]))
    sa.Index("ix_bench_event_user_start", old.c.user_id, old.c.start, old.c.duration_seconds)
    sa.Index("ix_bench_event_agent", old.c.agent_id)
    async with db.write_engine.begin() as conn:
        await conn.run_sync(lambda c: old.create(c))
    rows = [
        {"user_id": user_id, "agent_id": agent_id, "start": e.start, "duration_seconds": 30, "app": e.app,
         "title": e.title, "url": None, "productivity": e.productivity, "origin_agent_id": None}
        for user_id, agent_id in agents
        for e in sample
    ]  # fmt: skip
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        async with db.write_engine.begin() as conn:
            await conn.execute(sa.insert(old), rows)
        n += per_tx
    per_row = n / (time.perf_counter() - t0)
    async with db.write_engine.begin() as conn:
        await conn.run_sync(lambda c: old.drop(c))
    await db.dispose()
    return stored, per_row


async def _stored(url: str) -> tuple[int, int]:
    db = Database(url)
    try:
        async with db.read() as session:
            total = (await session.execute(sa.select(sa.func.sum(chunks.CHUNK.c.event_count)))).scalar_one()
            size = 0
            if not db.is_sqlite:
                size = (
                    await session.execute(sa.text("SELECT pg_database_size(current_database())"))
                ).scalar_one()
    finally:
        await db.dispose()
    return int(total or 0), int(size)


def bytes_per_event(url: str) -> tuple[float, int]:
    """Bytes on disk per stored event: SQLite's file after a checkpoint, PostgreSQL's database."""
    total, size = asyncio.run(_stored(url))
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1]
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = os.path.getsize(path)
    return size / max(total, 1), total


def run(url: str, seconds: float, clients: int) -> dict[str, float]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PLM_")},
        "PLM_DATABASE_URL": url,
        "PLM_LOG_LEVEL": "warning",
        # The server's throughput, not the per-key limit (its check still runs per batch).
        "PLM_RATE_LIMIT_INGEST": "1000000/second",
    }
    account = plm(
        env, "account", "create", "--name", f"Bench {time.time_ns()}", "--licenses", str(AGENTS // 2)
    )
    headers = {"Authorization": f"Bearer {account['ingestKey']}"}
    port = 18000 + os.getpid() % 1000
    proc = start_server(env, port)
    try:
        # Warm up: admit the known agents (the first half licensed, the others pending).
        statuses: dict[str, int] = {}
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
                statuses[r.json()["status"]] = statuses.get(r.json()["status"], 0) + 1
        assert first is not None
        print(f"  known agents: {statuses}")
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

        cpu0 = cpu_seconds(proc.pid)
        stats, elapsed = asyncio.run(run_load("127.0.0.1", port, batch, clients=clients, seconds=seconds))
        cpu = cpu_seconds(proc.pid) - cpu0
        ok = stats.statuses.get(202, 0)
        e2e = ok * 100 / elapsed
        p99 = stats.pct(0.99)
        print(
            f"  end to end:   {e2e:10,.0f} events/s  ({ok:,} batches of 100 in {elapsed:.1f}s, "
            f"{clients} clients, p50 {stats.pct(0.5):.1f} ms, p99 {p99:.1f} ms, statuses {stats.statuses})"
        )
        print(
            f"  server CPU:   {cpu * 1e6 / max(ok * 100, 1):10.2f} µs per event  "
            f"({cpu * 1e3 / max(ok, 1):.2f} ms per 100-event batch)"
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

        admitted, elapsed = 0, 1.0
        if not os.environ.get("PLM_BENCH_PROFILE"):  # a profile is of known agents' ingest alone
            stats, elapsed = asyncio.run(
                run_load("127.0.0.1", port, newcomer, clients=clients, seconds=min(seconds, 10))
            )
            admitted = stats.statuses.get(202, 0)
        print(
            f"  admissions:   {admitted / elapsed:10,.0f} new agents/s  ({admitted:,} in {elapsed:.1f}s, "
            f"p99 {stats.pct(0.99):.1f} ms, statuses {stats.statuses})"
        )
    finally:
        proc.send_signal(signal.SIGINT)  # a clean stop (a profile, when asked, is written then)
        proc.wait()

    per_event_bytes, stored_events = bytes_per_event(url)
    print(f"  on disk:      {per_event_bytes:10.1f} bytes per stored event  ({stored_events:,} events)")
    raw, per_row = asyncio.run(ceilings(url, min(seconds, 10), clients))
    print(
        f"  ceiling:      {raw:10,.0f} events/s  (chunks and rollups in-process, {clients} x 100 events per transaction)"
    )
    print(
        f"  row ceiling:  {per_row:10,.0f} events/s  (the one-row-per-event table it replaced, same settings)"
    )
    print(f"  ratio:        {e2e / raw:10.2f} x ceiling, {e2e / per_row:.2f} x the row-per-event ceiling")
    print(
        f"  targets:      events/s {e2e:,.0f} / {TARGET_EVENTS:,} = {e2e / TARGET_EVENTS:.2f}x;"
        f" p99 {p99:.1f} ms / {TARGET_P99_MS:.0f} ms = {p99 / TARGET_P99_MS:.2f}x (<= 1 meets it)"
    )
    return {
        "e2e": e2e,
        "p99": p99,
        "cpu_us": cpu * 1e6 / max(ok * 100, 1),
        "bytes": per_event_bytes,
        "admissions": admitted / elapsed,
        "raw": raw,
        "per_row": per_row,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--clients", type=int, default=32)
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
    print(
        f"{'database':<12} {'events/s':>10} {'p99 ms':>7} {'µs CPU/ev':>9} {'B/event':>8} {'ceiling':>10}"
        f" {'ratio':>6} {'row ceil':>9} {'ratio':>6} {'admits/s':>9}"
    )
    for name, r in results.items():
        print(
            f"{name:<12} {r['e2e']:>10,.0f} {r['p99']:>7.1f} {r['cpu_us']:>9.2f} {r['bytes']:>8.1f} {r['raw']:>10,.0f}"
            f" {r['e2e'] / r['raw']:>6.2f} {r['per_row']:>9,.0f} {r['e2e'] / r['per_row']:>6.2f} {r['admissions']:>9,.0f}"
        )
    print(f"targets (2 cores): >= {TARGET_EVENTS:,} events/s to known agents, p99 <= {TARGET_P99_MS:.0f} ms")


if __name__ == "__main__":
    main()
