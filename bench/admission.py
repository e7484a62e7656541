"""Admission throughput: new agents over HTTP, their likely matches, and the invariant, in one run.

    python bench/admission.py [--arrivals 6000] [--clients 16] [--database-url URL] [--no-postgres]

Starts ``plm serve`` in a child process on a fresh SQLite database (then on a throwaway
PostgreSQL with default durability, when its binaries are installed), then:

1. ``--arrivals`` new agents post their first batch (20 events each) from ``--clients``
   concurrent keep-alive clients, against an account whose limit is half the arrivals (so
   half take a license and half enter the queue) → admissions/s, p50/p99 of the answers,
   and the server's CPU per admission (steadier than throughput on a shared machine);
2. one arrival in ten is a probe: a local account on the laptop of an earlier arrival's
   domain login (same login and name), whose likely match the server computes in the
   admission's own transaction. A live subscriber times each pending probe's ``ENTERED``
   event (which the match is committed with) from the moment its batch was sent, and every
   25th probe is polled over GraphQL (every 10 ms) until its match is readable → p50/p99. A
   probe that takes a license has no queue event; its match is only polled;
3. at the end, the database is read: licensed users ≤ the limit and exactly
   ``min(limit, new users)`` of them, every agent admitted once, every probe matched;
4. the baseline: the same rows (a user, an agent, and 20 events stored as the server stores
   them, :mod:`server.domain.activity.chunks`) inserted in-process with SQLAlchemy Core in
   transactions of ``--clients`` arrivals, same database settings → arrivals/s, and the ratio.

Prints figures; asserts nothing. Targets (2 cores, one process, SQLite): ≥ 1,000
admissions/s; a likely match readable and published within 200 ms of its arrival.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import websockets
from sqlmodel import col

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._http import Conn, Stats, encode_post
from bench._server import cpu_seconds, plm, start_server
from server.domain.activity import chunks
from server.domain.activity.batch import Event
from server.domain.models import Agent, User, UserStatus
from server.infra.db import Database

START = datetime(2026, 11, 26, 9, tzinfo=UTC)
EVENTS = 20
PROBE_EVERY = 10  # arrival i with i % 10 == 9 is a renamed laptop of arrival i - 9
POLL_EVERY = 25  # of the probes, this one in 25 is also polled over GraphQL (every 10 ms)
TARGET_ADMISSIONS = 1_000.0
TARGET_MATCH_MS = 200.0


def payload_events(i: int) -> list[dict[str, object]]:
    return [
        {
            "start": (START + timedelta(seconds=i * EVENTS + n)).isoformat(),
            "durationSeconds": 30,
            "app": "excel.exe",
            "title": "Budget.xlsx",
            "url": None,
            "productivity": "productive",
        }
        for n in range(EVENTS)
    ]


def agent_of(i: int) -> dict[str, str]:
    """Arrival ``i``'s agent: a domain login; a probe is a local account on an earlier one's laptop."""
    if i % PROBE_EVERY == PROBE_EVERY - 1:
        k = i - (PROBE_EVERY - 1)
        # The same login as a local account on the same laptop: a likely ASSIGN to arrival k.
        return {
            "deviceName": f"LT-{k}",
            "domain": f"LT-{k}",
            "logonName": f"jdoe{k}",
            "displayName": f"Jo Doe {k}",
        }
    if i % PROBE_EVERY == 0:
        return {
            "deviceName": f"LT-{i}",
            "domain": "BENCH",
            "logonName": f"jdoe{i}",
            "displayName": f"Jo Doe {i}",
        }
    return {"deviceName": f"NEW-{i}", "domain": "BENCH", "logonName": f"n{i}", "displayName": f"Person {i}"}


def is_probe(i: int) -> bool:
    return i % PROBE_EVERY == PROBE_EVERY - 1


def group_sizes(port: int) -> tuple[float, float]:
    """Batches per ingest group commit and groups committed so far, from ``/metrics``."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    values = {
        line.split()[0]: float(line.split()[1])
        for line in text.splitlines()
        if line.startswith("plm_group_commit_batch_size_")
    }
    count = values.get("plm_group_commit_batch_size_count", 0.0)
    return (values.get("plm_group_commit_batch_size_sum", 0.0) / count if count else float("nan")), count


def pct(xs: list[float], p: float) -> float:
    ys = sorted(xs)
    return ys[min(len(ys) - 1, int(p * len(ys)))] if ys else float("nan")


@dataclass
class Probes:
    """When each probe was sent, and when its match was seen (ms after sending)."""

    sent: dict[int, float] = field(default_factory=dict)  # arrival -> perf_counter at send
    user_of: dict[int, int] = field(default_factory=dict)  # user id -> arrival
    event_at: dict[int, float] = field(default_factory=dict)  # user id -> perf_counter of its ENTERED
    readable_ms: list[float] = field(default_factory=list)
    pollers: list[asyncio.Task[None]] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def event_ms(self) -> list[float]:
        return [
            (at - self.sent[self.user_of[uid]]) * 1000
            for uid, at in self.event_at.items()
            if uid in self.user_of
        ]


async def subscriber(port: int, token: str, probes: Probes, stop: asyncio.Event) -> None:
    async with websockets.connect(
        f"ws://127.0.0.1:{port}/graphql", subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
    ) as ws:
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        )
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        query = "subscription { pendingQueueChanged { action userId } }"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
        probes.ready.set()
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), 0.5)
            except TimeoutError:
                continue
            at = time.perf_counter()
            msg = json.loads(raw)
            if msg.get("type") != "next":
                continue
            event = msg["payload"]["data"]["pendingQueueChanged"]
            if event["action"] == "ENTERED":
                probes.event_at.setdefault(int(event["userId"]), at)


async def poll_match(port: int, token: str, user_id: int, sent: float, probes: Probes) -> None:
    """Ask for the probe's likely match every 10 ms until it is there."""
    conn = Conn("127.0.0.1", port)
    body = {"query": f'{{ user(id: "{user_id}") {{ suggestions(first: 1) {{ score }} }} }}'}
    raw = encode_post("/graphql", body, {"Authorization": f"Bearer {token}"})
    try:
        for _ in range(1000):
            status, answer = await conn.request(raw)
            if status == 200 and json.loads(answer)["data"]["user"]["suggestions"]:
                probes.readable_ms.append((time.perf_counter() - sent) * 1000)
                return
            await asyncio.sleep(0.01)
    finally:
        conn.close()


async def drive(
    port: int, headers: dict[str, str], token: str, arrivals: int, clients: int
) -> dict[str, Any]:
    probes = Probes()
    stop = asyncio.Event()
    sub = asyncio.create_task(subscriber(port, token, probes, stop))
    await asyncio.wait_for(probes.ready.wait(), 10)
    await asyncio.sleep(0.2)  # the subscribe message reaches the server
    bodies = [
        encode_post(
            "/ingest", {"batchId": "first", "agent": agent_of(i), "events": payload_events(i)}, headers
        )
        for i in range(arrivals)
    ]
    counter = iter(range(arrivals))
    stats = Stats()

    async def worker() -> None:
        conn = Conn("127.0.0.1", port)
        try:
            for i in counter:
                t = time.perf_counter()
                if is_probe(i):
                    probes.sent[i] = t
                status, answer = await conn.request(bodies[i])
                stats.add(status, time.perf_counter() - t, b"", False)
                if status == 202 and is_probe(i):
                    uid = int(json.loads(answer)["userId"])
                    probes.user_of[uid] = i
                    if (i // PROBE_EVERY) % POLL_EVERY == 0:
                        probes.pollers.append(asyncio.create_task(poll_match(port, token, uid, t, probes)))
        finally:
            conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    await asyncio.gather(*probes.pollers)
    # Give the last matches up to two seconds to be published.
    await asyncio.sleep(2)
    stop.set()
    await sub
    return {"stats": stats, "elapsed": elapsed, "probes": probes}


async def check_invariant(url: str, account_id: int, limit: int, arrivals: int) -> dict[str, Any]:
    db = Database(url)
    try:
        async with db.read() as s:
            counts: dict[str, int] = {
                UserStatus(status).value: int(n)
                for status, n in await s.execute(
                    sa.select(col(User.status), sa.func.count())
                    .where(col(User.account_id) == account_id)
                    .group_by(col(User.status))
                )
            }
            agents = (
                await s.execute(
                    sa.select(col(Agent.key), sa.func.count())
                    .where(col(Agent.account_id) == account_id)
                    .group_by(col(Agent.key))
                )
            ).all()
            events = (
                await s.execute(
                    sa.select(sa.func.coalesce(sa.func.sum(chunks.CHUNK.c.event_count), 0))
                    .select_from(chunks.CHUNK)
                    .join(Agent, col(Agent.id) == chunks.CHUNK.c.agent_id)
                    .where(col(Agent.account_id) == account_id)
                )
            ).scalar_one()
            suggested = (
                await s.execute(
                    sa.text("SELECT count(DISTINCT pending_user_id) FROM suggestion WHERE account_id = :a"),
                    {"a": account_id},
                )
            ).scalar_one()
    finally:
        await db.dispose()
    licensed = counts.get(UserStatus.LICENSED.value, 0)
    pending = counts.get(UserStatus.PENDING.value, 0)
    new_users = licensed + pending
    return {
        "licensed": licensed,
        "pending": pending,
        "exact": licensed <= limit and licensed == min(limit, new_users),
        "agents_once": len(agents) == arrivals and all(n == 1 for _, n in agents),
        "events": events,
        "events_ok": events == arrivals * EVENTS,
        "suggested": suggested,
    }


async def baseline(url: str, account_id: int, arrivals: int, group: int) -> float:
    """The same rows a new agent writes (a user, an agent, 20 events as the server stores
    them), inserted with Core in transactions of ``group`` arrivals: what storing them costs
    without any rule."""
    db = Database(url)
    users, agents = User.__table__, Agent.__table__  # type: ignore[attr-defined]
    now = datetime.now(UTC)
    sample = [
        Event(START + timedelta(seconds=n), 30, "excel.exe", "Budget.xlsx", None, "productive")
        for n in range(EVENTS)
    ]
    t0 = time.perf_counter()
    try:
        for start in range(0, arrivals, group):
            async with db.write() as conn:
                batch = range(start, min(arrivals, start + group))
                uids = (
                    (
                        await conn.execute(
                            sa.insert(users).returning(users.c.id, sort_by_parameter_order=True),
                            [
                                {
                                    "account_id": account_id,
                                    "display_name": f"Base {i}",
                                    "status": "LICENSED",
                                    "first_seen_at": now,
                                    "last_seen_at": now,
                                    "licensed_at": now,
                                }
                                for i in batch
                            ],
                        )
                    )
                    .scalars()
                    .all()
                )
                aids = (
                    (
                        await conn.execute(
                            sa.insert(agents).returning(agents.c.id, sort_by_parameter_order=True),
                            [
                                {
                                    "account_id": account_id,
                                    "user_id": uid,
                                    "device_name": f"BASE-{i}",
                                    "domain": "BASE",
                                    "logon_name": f"b{i}",
                                    "key": f"base-{i}",
                                    "login_key": f"base\\b{i}",
                                    "first_seen_at": now,
                                    "last_seen_at": now,
                                }
                                for i, uid in zip(batch, uids, strict=True)
                            ],
                        )
                    )
                    .scalars()
                    .all()
                )
                writes = chunks.Writes()
                for uid, aid in zip(uids, aids, strict=True):
                    writes.add(uid, aid, aid, sample)
                await writes.flush(conn)
        return arrivals / (time.perf_counter() - t0)
    finally:
        await db.dispose()


def run(url: str, arrivals: int, clients: int) -> dict[str, float]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PLM_")},
        "PLM_DATABASE_URL": url,
        "PLM_LOG_LEVEL": "warning",
        # The server's throughput, not the per-key limits (their checks still run).
        "PLM_RATE_LIMIT_INGEST": "1000000/second",
        "PLM_RATE_LIMIT_GRAPHQL": "1000000/second",
    }
    limit = arrivals // 2
    account = plm(env, "account", "create", "--name", f"Bench {time.time_ns()}", "--licenses", str(limit))
    admin = plm(env, "admin", "create", "--account", account["id"], "--email", "b@example.com", "--name", "B")
    headers = {"Authorization": f"Bearer {account['ingestKey']}"}
    port = 19000 + os.getpid() % 1000
    proc = start_server(env, port)
    try:
        # One warm-up agent (counted below) loads every module of the ingest path.
        warm = {"deviceName": "WARM", "domain": "BENCH", "logonName": "warm", "displayName": "Warm Up"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            http.post(
                "/ingest", headers=headers, json={"batchId": "w", "agent": warm, "events": payload_events(0)}
            ).raise_for_status()
        cpu0 = cpu_seconds(proc.pid)
        out = asyncio.run(drive(port, headers, admin["token"], arrivals, clients))
        cpu = cpu_seconds(proc.pid) - cpu0
        groups = group_sizes(port)
    finally:
        proc.terminate()
        proc.wait()
    stats, elapsed, probes = out["stats"], out["elapsed"], out["probes"]
    ok = stats.statuses.get(202, 0)
    rate = ok / elapsed
    # The warm-up agent is one more arrival.
    inv = asyncio.run(check_invariant(url, int(account["id"]), limit, arrivals + 1))
    base = asyncio.run(baseline(url, int(account["id"]), arrivals, clients))
    events_ms, readable_ms = probes.event_ms(), probes.readable_ms
    print(
        f"  admissions:   {rate:10,.0f} /s   ({ok:,} of {arrivals:,} in {elapsed:.1f}s, {clients} clients, "
        f"p50 {stats.pct(0.5):.1f} ms, p99 {stats.pct(0.99):.1f} ms, statuses {stats.statuses})"
    )
    print(
        f"  server CPU:   {cpu / max(ok, 1) * 1000:10.2f} ms per admission ({EVENTS} events each; "
        f"{groups[0]:.1f} batches per group commit, {groups[1]:,.0f} groups)"
    )
    print(
        f"  baseline:     {base:10,.0f} /s   (user + agent + {EVENTS} events, Core, {clients} per transaction)"
    )
    print(
        f"  vs target:    {rate / TARGET_ADMISSIONS:10.2f} x {TARGET_ADMISSIONS:,.0f}/s;  {rate / base:.2f} x baseline"
    )
    print(
        f"  match event:  p50 {pct(events_ms, 0.5):7.1f} ms, p99 {pct(events_ms, 0.99):7.1f} ms "
        f"({len(events_ms)} of {len(probes.user_of)} probes entered the queue; target {TARGET_MATCH_MS:.0f} ms: "
        f"p99 is {pct(events_ms, 0.99) / TARGET_MATCH_MS:.2f} x)"
    )
    print(
        f"  match read:   p50 {pct(readable_ms, 0.5):7.1f} ms, p99 {pct(readable_ms, 0.99):7.1f} ms "
        f"({len(readable_ms)} polled; target {TARGET_MATCH_MS:.0f} ms: "
        f"p99 is {pct(readable_ms, 0.99) / TARGET_MATCH_MS:.2f} x)"
    )
    print(
        f"  invariant:    licensed {inv['licensed']:,} <= limit {limit:,}, pending {inv['pending']:,}: "
        f"{'exact' if inv['exact'] else 'BROKEN'}; every agent admitted once: {inv['agents_once']}; "
        f"events stored: {inv['events']:,} ({'all' if inv['events_ok'] else 'MISSING'}); "
        f"users with a match: {inv['suggested']:,}"
    )
    return {
        "rate": rate,
        "cpu_ms": cpu / max(ok, 1) * 1000,
        "base": base,
        "event_p99": pct(events_ms, 0.99),
        "read_p99": pct(readable_ms, 0.99),
        "exact": float(inv["exact"] and inv["agents_once"]),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arrivals", type=int, default=6000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument(
        "--database-url", default=None, help="only this database (default: SQLite, then PostgreSQL)"
    )
    ap.add_argument("--no-postgres", action="store_true", help="skip the throwaway PostgreSQL run")
    args = ap.parse_args()

    results: dict[str, dict[str, float]] = {}
    if args.database_url:
        print(args.database_url)
        results["given"] = run(args.database_url, args.arrivals, args.clients)
    else:
        tmp = Path(tempfile.mkdtemp(prefix="plm-bench-"))
        print("SQLite (WAL, synchronous=FULL)")
        results["SQLite"] = run(f"sqlite+aiosqlite:///{tmp / 'bench.db'}", args.arrivals, args.clients)
        from tests import pg

        if not args.no_postgres and pg.binaries() is not None:
            server = pg.PostgresServer(durable=True)
            try:
                print("PostgreSQL (fsync on, synchronous_commit on)")
                results["PostgreSQL"] = run(server.create_database(), args.arrivals, args.clients)
            finally:
                server.stop()
    print()
    print(
        f"{'database':<11} {'admissions/s':>12} {'x target':>8} {'CPU ms':>7} {'baseline/s':>10} {'x base':>7} "
        f"{'event p99':>9} {'read p99':>9} {'invariant':>9}"
    )
    for name, r in results.items():
        print(
            f"{name:<11} {r['rate']:>12,.0f} {r['rate'] / TARGET_ADMISSIONS:>8.2f} {r['cpu_ms']:>7.2f} "
            f"{r['base']:>10,.0f} {r['rate'] / r['base']:>7.2f} {r['event_p99']:>8.0f}ms {r['read_p99']:>8.0f}ms "
            f"{'exact' if r['exact'] else 'BROKEN':>9}"
        )
    print(
        f"targets (2 cores, one process): >= {TARGET_ADMISSIONS:,.0f} admissions/s; "
        f"a likely match readable and published within {TARGET_MATCH_MS:.0f} ms (p99)"
    )


if __name__ == "__main__":
    main()
