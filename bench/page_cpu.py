"""Server CPU per queue page, in-process: GraphQL against the plain route, without sockets.

    python bench/page_cpu.py [--requests 2000] [--rounds 3] [--pending 10000] [--events 200000]
                             [--instructions]

The fixture, the app and the comparison routes of ``bench/queue_page.py`` (SQLite), driven
one request at a time straight into the ASGI app: middleware, route, database, encoding; no
uvicorn, no sockets, no client. A target's CPU per request (``time.process_time``) is the
median of ``--rounds`` rounds; the targets alternate, so drift on a shared machine hits them
alike:

- plain: ``GET /bench/plain``, the page's reads and JSON written by hand;
- executed: the GraphQL page plus ``me { id }``, a document the response cache never serves;
- varied: the page with a search term, an order and a size that change every request;
- me: ``{ me { id } }`` alone: what any GraphQL request costs before its fields;
- plain me: ``GET /bench/me``, the same token check and read session written by hand.

Then executed / plain (the issue's ratio without uvicorn's share, which both routes pay
alike) and what GraphQL adds, split into its fixed cost (me - plain me) and the rest of the
page ((executed - me) - (plain - plain me)).

``--instructions`` counts instead of timing: each target runs under valgrind's cachegrind
(instructions only) in a child process, once with ``--requests`` requests and once with
none after the same warm-up, and the difference per request is printed. A count does not
move with the machine's load, so it compares two builds exactly where timings need many
alternated runs; it leaves out what time also pays for (cache misses, mispredicted
branches), so the two can disagree. Needs ``valgrind`` on the PATH.

Asserts nothing but the answers' statuses.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import queue_page as qp
from bench.ingest_cpu import Lifespan
from tests.support import asgi_request

WARM = 100
Request = tuple[str, str, bytes, list[tuple[bytes, bytes]]]
TARGETS = ("plain", "executed", "varied", "me", "plain me")


def requests(token: str, pending: int) -> dict[str, Callable[[int], Request]]:
    """Each target's ``i``-th request: method, path, body, headers."""
    auth = (b"authorization", f"Bearer {token}".encode())
    as_json = (b"content-type", b"application/json")

    def graphql(raw: Callable[[int], bytes]) -> Callable[[int], Request]:
        # queue_page's clients send whole HTTP requests; the body is what follows the head.
        return lambda i: ("POST", "/graphql", raw(i).partition(b"\r\n\r\n")[2], [auth, as_json])

    return {
        "plain": lambda _i: ("GET", "/bench/plain", b"", [auth]),
        "executed": graphql(qp.same(qp.post("/graphql", {"query": qp.GRAPHQL_EXECUTED}, token))),
        "varied": graphql(qp.varied(token, pending)),
        "me": graphql(qp.same(qp.post("/graphql", {"query": "query Me { me { id } }"}, token))),
        "plain me": lambda _i: ("GET", "/bench/me", b"", [auth]),
    }


async def drive(app: Any, make: Callable[[int], Request], first: int, count: int) -> None:
    for i in range(first, first + count):
        method, path, body, headers = make(i)
        status, answer = await asgi_request(app, method, path, body, headers)
        assert status == 200 and b'"errors"' not in answer, (status, answer[:300])


async def timed(url: str, token: str, args: argparse.Namespace) -> dict[str, float]:
    """CPU ms per request of every target: the median of its rounds."""
    from server.web.app import tune_gc

    app = qp.bench_app(url)
    lifespan = Lifespan(app)
    await lifespan.start()
    makers = requests(token, args.pending)
    for make in makers.values():
        await drive(app, make, 0, WARM)
    tune_gc()
    rounds: dict[str, list[float]] = {name: [] for name in TARGETS}
    for r in range(args.rounds):
        for name in TARGETS:
            cpu = time.process_time()
            await drive(app, makers[name], WARM + r * args.requests, args.requests)
            rounds[name].append((time.process_time() - cpu) * 1000 / args.requests)
    await lifespan.stop()
    return {name: statistics.median(v) for name, v in rounds.items()}


async def child(url: str, token: str, args: argparse.Namespace) -> None:
    """One target under valgrind: the warm-up, then ``--requests`` requests (maybe none)."""
    from server.web.app import tune_gc

    app = qp.bench_app(url)
    lifespan = Lifespan(app)
    await lifespan.start()
    make = requests(token, args.pending)[args.child]
    await drive(app, make, 0, WARM)
    tune_gc()
    await drive(app, make, WARM, args.requests)
    await lifespan.stop()


def instructions(db: Path, token: str, args: argparse.Namespace) -> dict[str, float]:
    """Instructions per request of every target: (with requests - without) / requests."""

    def count(name: str, n: int) -> int:
        command = [
            "valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
            sys.executable, __file__, "--child", name, "--db", str(db), "--token", token,
            "--requests", str(n), "--pending", str(args.pending),
        ]  # fmt: skip
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
        found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
        assert found, done.stderr[-2000:]
        return int(found.group(1).replace(",", ""))

    runs = [(name, n) for name in TARGETS for n in (0, args.requests)]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        counts = dict(zip(runs, pool.map(lambda run: count(*run), runs), strict=True))
    return {name: (counts[name, args.requests] - counts[name, 0]) / args.requests for name in TARGETS}


def report(figures: dict[str, float], unit: str, digits: int) -> None:
    for name in TARGETS:
        print(f"  {name:10s} {figures[name]:12,.{digits}f} {unit} per request")
    plain, executed = figures["plain"], figures["executed"]
    fixed = figures["me"] - figures["plain me"]
    rest = (executed - figures["me"]) - (plain - figures["plain me"])
    print(f"  executed / plain by {unit}: {plain / executed:.2f}  (the issue's target: >= 0.8 by req/s)")
    print(
        f"  GraphQL adds {executed - plain:,.{digits}f} {unit}: fixed (me - plain me)"
        f" {fixed:,.{digits}f}, the page's fields {rest:,.{digits}f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000, help="requests per target and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pending", type=int, default=10_000)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--instructions", action="store_true", help="count instructions under valgrind")
    ap.add_argument("--child", choices=TARGETS, help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    ap.add_argument("--token", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        asyncio.run(child(f"sqlite+aiosqlite:///{args.db}", args.token, args))
        return
    if args.instructions and shutil.which("valgrind") is None:
        sys.exit("--instructions needs valgrind on the PATH (Debian: apt install valgrind)")
    tmp = Path(tempfile.mkdtemp(prefix="plm-page-cpu-"))
    try:
        db = tmp / "bench.db"
        token, _ingest_key = qp.build_sqlite(db, args.pending, args.events)
        print(
            f"SQLite: {args.pending:,} pending users, {args.events:,} events; one request at a time, in-process"
        )
        if args.instructions:
            args.requests = min(args.requests, 300)  # about a minute per target under valgrind
            report(instructions(db, token, args), "instructions", 0)
        else:
            report(asyncio.run(timed(f"sqlite+aiosqlite:///{db}", token, args)), "CPU ms", 3)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
