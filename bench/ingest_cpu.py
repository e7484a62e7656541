"""Server CPU per ingested event, in-process: the ASGI app driven without sockets or uvicorn.

    python bench/ingest_cpu.py [--batches 3000] [--clients 32] [--profile FILE] [--repeat 3]

The same load as ``bench/ingest.py`` (100-event batches to 500 known agents, half of them
licensed and half pending, on a fresh SQLite file with the server's settings), posted by
concurrent tasks straight into the app (each body is spliced from pre-encoded events): its
middleware, the route, the group commit, the database. CPU is the process's
(``time.process_time``: every thread, the group commit's writer and SQLite on it included);
what it leaves out is uvicorn's HTTP parsing and the sockets, a fixed cost per request.
Steadier than the end-to-end bench on a shared machine: the client costs next to nothing.
``--profile FILE`` writes a cProfile of the timed part (the event loop's thread only).
Asserts nothing but that every batch is answered 202.
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest import AGENTS, events
from server.domain import accounts
from server.domain.models import utcnow
from server.infra.db import Database
from server.infra.settings import Settings
from server.web.app import create_app, tune_gc
from tests.support import asgi_post


class Lifespan:
    """Runs an ASGI app's lifespan in a task: ``await start()``, then ``await stop()``."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        self.outbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        self.task = asyncio.create_task(self.app(scope, self.inbox.get, self.outbox.put))
        await self.inbox.put({"type": "lifespan.startup"})
        message = await self.outbox.get()
        assert message["type"] == "lifespan.startup.complete", message

    async def stop(self) -> None:
        await self.inbox.put({"type": "lifespan.shutdown"})
        await self.outbox.get()
        assert self.task is not None
        await self.task


async def post(app: Any, body: bytes, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
    """``POST /ingest`` straight into the app."""
    return await asgi_post(app, "/ingest", body, headers)


def group_sizes(app: Any) -> list[int]:
    """The sizes of the app's group commits from now on (in batches), as its metrics are told."""
    groups: list[int] = []
    committer = app.state.services.committer
    told = committer._on_group

    def on_group(n: int) -> None:
        groups.append(n)
        if told is not None:
            told(n)

    committer._on_group = on_group
    return groups


def body(i: int, payloads: list[bytes], prefix: str) -> bytes:
    """Batch ``i`` as ``bench/ingest.py`` posts it (``payloads``: its events, JSON-encoded)."""
    a = i % AGENTS
    head = json.dumps(
        {
            "batchId": f"{prefix}-{i}",
            "agent": {"deviceName": f"PC-{a}", "domain": "BENCH", "logonName": f"u{a}"},
        }
    ).encode()
    return head[:-1] + b', "events": ' + (payloads[i % len(payloads)] if payloads else b"[]") + b"}"


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="plm-ingest-cpu-"))
    url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    settings = Settings(database_url=url, log_level="warning", rate_limit_ingest="1000000/second")
    db = Database.from_settings(settings)
    await db.migrate()
    async with db.write() as session:
        created = await accounts.create_account(
            session,
            name="Bench",
            license_limit=AGENTS // 2,
            manual_review=False,
            retention_days=30,
            now=utcnow(),
        )
    headers = [
        (b"authorization", f"Bearer {created.secret}".encode()),
        (b"content-type", b"application/json"),
    ]
    app = create_app(settings, db=db)
    groups = group_sizes(app)
    lifespan = Lifespan(app)
    await lifespan.start()
    for a in range(AGENTS):
        status, answer = await post(app, body(a, [], "warm"), headers)
        assert status == 202, answer
    payloads = [json.dumps(events(args.events, k * 100)).encode() for k in range(50)]
    tune_gc()

    async def client(queue: list[int], statuses: dict[int, int]) -> None:
        while queue:
            status, _ = await post(app, body(queue.pop(), payloads, "b"), headers)
            statuses[status] = statuses.get(status, 0) + 1

    results = []
    for r in range(args.repeat):
        queue = list(range((r + 1) * args.batches - 1, r * args.batches - 1, -1))
        statuses: dict[int, int] = {}
        groups.clear()
        profile = cProfile.Profile(time.thread_time) if args.profile and r == args.repeat - 1 else None
        cpu0, loop0, wall0 = time.process_time(), time.thread_time(), time.perf_counter()
        if profile is not None:
            profile.enable()
        await asyncio.gather(*(client(queue, statuses) for _ in range(args.clients)))
        if profile is not None:
            profile.disable()
            profile.dump_stats(args.profile)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        on_loop = time.thread_time() - loop0
        assert statuses == {202: args.batches}, statuses
        n = args.batches * max(args.events, 1)
        results.append(cpu * 1e6 / n)
        print(
            f"  run {r + 1}: {cpu * 1e6 / n:6.2f} µs CPU per event ({on_loop * 1e6 / n:.2f} on the event loop's"
            f" thread, {(cpu - on_loop) * 1e6 / n:.2f} in the others: the group commit's writer thread, SQLite on it), {n / wall:9,.0f} events/s in-process,"
            f" {len(groups)} group commits of {sum(groups) / max(len(groups), 1):.1f} batches"
            f"{' (profiled)' if profile is not None else ''}"
        )
    await lifespan.stop()
    await db.dispose()
    unprofiled = results[:-1] if args.profile and len(results) > 1 else results
    print(
        f"best {min(unprofiled):.2f} µs CPU per event, median {sorted(unprofiled)[len(unprofiled) // 2]:.2f}"
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=3000, help="batches per run")
    ap.add_argument(
        "--events", type=int, default=100, help="events per batch (0: heartbeats; per batch then)"
    )
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile", default=None, help="cProfile the last run into this file")
    uvloop.run(main(ap.parse_args()))
