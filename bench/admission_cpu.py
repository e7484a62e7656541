"""Server CPU per admission, in-process: the ASGI app driven without sockets or uvicorn.

    python bench/admission_cpu.py [--arrivals 3000] [--clients 16] [--repeat 3] [--profile FILE]

The load of ``bench/admission.py`` (new agents posting their first batch of 20 events, one
in ten a local account on an earlier arrival's laptop, whose likely match is computed) on a
fresh SQLite file with the server's settings, posted by concurrent tasks straight into the
app: its middleware, the route, the group commit, the database. Each run is a new account
whose limit is half its arrivals, so half take a license and half enter the queue.

CPU is the process's (``time.process_time``: every thread, the group commit's writer and
SQLite on it included); what it leaves out is uvicorn's HTTP parsing and the sockets, a
fixed cost per request. Also counts the SQL statements per group commit (an ``executemany``
is one; every write engine's, the writer thread's included). Steadier than the
end-to-end bench on a shared machine. ``--profile FILE`` writes a cProfile of the last run
(the event loop's thread only). Asserts nothing but that every batch is answered 202.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop
from sqlalchemy import event
from sqlalchemy.engine import Engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.admission import agent_of, payload_events
from bench.ingest_cpu import Lifespan, group_sizes, post
from server.domain import accounts
from server.domain.models import utcnow
from server.infra.db import Database
from server.infra.settings import Settings
from server.web.app import create_app, tune_gc


async def new_account(db: Database, limit: int) -> list[tuple[bytes, bytes]]:
    async with db.write() as session:
        created = await accounts.create_account(
            session, name=f"Bench {time.time_ns()}", license_limit=limit, retention_days=30, now=utcnow()
        )
    return [(b"authorization", f"Bearer {created.secret}".encode()), (b"content-type", b"application/json")]


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="plm-admission-cpu-"))
    url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    settings = Settings(
        database_url=url,
        log_level="warning",
        rate_limit_ingest="1000000/second",
        rate_limit_graphql="1000000/second",
    )
    db = Database.from_settings(settings)
    await db.migrate()
    app = create_app(settings, db=db)
    groups = group_sizes(app)
    statements: list[str] = []

    def on_execute(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # Every write engine's: the group commit writes through an engine of its own thread.
        if conn.get_execution_options().get("plm_write"):
            statements.append(statement)

    def per_group() -> str:
        """The most frequent statements' first words, per group commit."""
        kinds: dict[str, int] = {}
        for s in statements:
            words = " ".join(s.split()[:4])[:60]
            kinds[words] = kinds.get(words, 0) + 1
        top = sorted(kinds.items(), key=lambda kv: -kv[1])
        return "; ".join(f"{n / max(len(groups), 1):.2f} {k}" for k, n in top)

    lifespan = Lifespan(app)
    await lifespan.start()
    # Warm up: every module and statement of the path, on an account of its own.
    headers = await new_account(db, 50)
    for i in range(100):
        body = {"batchId": "first", "agent": {**agent_of(i), "domain": "WARM"}, "events": payload_events(i)}
        status, answer = await post(app, json.dumps(body).encode(), headers)
        assert status == 202, answer
    tune_gc()

    results = []
    for r in range(args.repeat):
        headers = await new_account(db, args.arrivals // 2)
        bodies = [
            json.dumps({"batchId": "first", "agent": agent_of(i), "events": payload_events(i)}).encode()
            for i in range(args.arrivals)
        ]
        queue = list(reversed(range(args.arrivals)))
        statuses: dict[int, int] = {}

        async def client(
            queue: list[int],
            statuses: dict[int, int],
            headers: list[tuple[bytes, bytes]],
            bodies: list[bytes],
        ) -> None:
            while queue:
                status, _ = await post(app, bodies[queue.pop()], headers)
                statuses[status] = statuses.get(status, 0) + 1

        groups.clear()
        statements.clear()
        event.listen(Engine, "before_cursor_execute", on_execute)
        profile = cProfile.Profile(time.thread_time) if args.profile and r == args.repeat - 1 else None
        cpu0, loop0, wall0 = time.process_time(), time.thread_time(), time.perf_counter()
        if profile is not None:
            profile.enable()
        await asyncio.gather(*(client(queue, statuses, headers, bodies) for _ in range(args.clients)))
        if profile is not None:
            profile.disable()
            profile.dump_stats(args.profile)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        on_loop = time.thread_time() - loop0
        event.remove(Engine, "before_cursor_execute", on_execute)
        assert statuses == {202: args.arrivals}, statuses
        n = args.arrivals
        results.append(cpu * 1e3 / n)
        # Group commits' own statements (BEGIN/COMMIT are the driver's, not counted here).
        print(
            f"  run {r + 1}: {cpu * 1e3 / n:5.2f} ms CPU per admission ({on_loop * 1e3 / n:.2f} on the event"
            f" loop's thread, {(cpu - on_loop) * 1e3 / n:.2f} in the others: the writer thread, SQLite on it), {n / wall:6,.0f} admissions/s"
            f" in-process, {len(groups)} group commits of {sum(groups) / max(len(groups), 1):.1f} batches,"
            f" {len(statements) / max(len(groups), 1):.1f} statements per group"
            f"{' (profiled)' if profile is not None else ''}"
        )
        if args.statements:
            print("    per group:", per_group())
    await lifespan.stop()
    await db.dispose()
    unprofiled = results[:-1] if args.profile and len(results) > 1 else results
    print(
        f"best {min(unprofiled):.2f} ms CPU per admission, median {sorted(unprofiled)[len(unprofiled) // 2]:.2f}"
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--arrivals", type=int, default=3000, help="new agents per run")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile", default=None, help="cProfile the last run into this file")
    ap.add_argument("--statements", action="store_true", help="list the statements run per group commit")
    uvloop.run(main(ap.parse_args()))
