"""``inactiveUsers`` at 10,000 licensed users: the reclaim list's pages and count, timed.

    .venv/bin/python bench/reclaim.py [--users 10000] [--events 20] [--rounds 20] [--no-postgres]

Builds an account with ``--users`` licensed users (one agent each), ``--events`` activity
events per user spread over 60 days (a tenth of the users never active), in a fresh SQLite
file and, when PostgreSQL's binaries are installed, in a throwaway PostgreSQL. Then times,
through the domain functions the API calls, over ``--rounds`` rounds: the first page of 50
(``days: 14``), a page deep in the list (after 5,000 users), the total count, and as the
baseline measured in the same run the plain users page (``users(first: 50)``, a keyset
page over an index). Prints p50 and p99 in ms and the ratio to the baseline; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import sqlalchemy as sa  # noqa: E402

from server.domain import reclaim  # noqa: E402
from server.domain.activity import chunks  # noqa: E402
from server.domain.activity.batch import Event  # noqa: E402
from server.domain.models import Agent, User, UserStatus  # noqa: E402
from server.domain.reads import lists  # noqa: E402
from server.infra.db import Database  # noqa: E402
from tests.support import START, make_tenant, sqlite_url  # noqa: E402

NOW = START + timedelta(days=60)


async def seed(db: Database, users: int, events: int) -> int:
    tenant = await make_tenant(db, licenses=users)
    account = tenant.account_id
    async with db.write() as session:
        await session.execute(
            sa.insert(User.__table__),  # type: ignore[attr-defined]
            [
                {
                    "account_id": account,
                    "display_name": f"User {i:05d}",
                    "status": UserStatus.LICENSED,
                    "first_seen_at": START,
                    "last_seen_at": START,
                    "licensed_at": START,
                }
                for i in range(users)
            ],
        )
        ids = list((await session.execute(sa.select(User.id).order_by(User.id))).scalars())  # type: ignore[call-overload]
        await session.execute(
            sa.insert(Agent.__table__),  # type: ignore[attr-defined]
            [
                {
                    "account_id": account,
                    "user_id": uid,
                    "device_name": f"PC-{uid}",
                    "domain": "ACME",
                    "logon_name": f"u{uid}",
                    "key": f"pc-{uid}|acme|u{uid}",
                    "first_seen_at": START,
                    "last_seen_at": START,
                }
                for uid in ids
            ],
        )
        agents: dict[int, int] = dict(
            (await session.execute(sa.select(Agent.user_id, Agent.id))).all()  # type: ignore[call-overload]
        )
    rows: list[tuple[int, int, Event]] = []
    for n, uid in enumerate(ids):
        if n % 10 == 0:
            continue  # never active
        for e in range(events):
            start = START + timedelta(minutes=(n * 37 + e * 4321) % (60 * 24 * 60))
            rows.append((uid, agents[uid], Event(start, 60, "excel.exe", None, None, "productive")))
    for i in range(0, len(rows), 20_000):
        async with db.write() as session:
            await chunks.store(session, rows[i : i + 20_000])
    return account


async def timed(rounds: int, call: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    samples = []
    for _ in range(rounds):
        t = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return statistics.median(samples), samples[max(int(len(samples) * 0.99) - 1, 0)]


async def run(url: str, name: str, args: argparse.Namespace) -> None:
    db = Database(url)
    await db.migrate()
    t = time.perf_counter()
    account = await seed(db, args.users, args.events)
    print(f"[{name}] seeded {args.users} users x {args.events} events in {time.perf_counter() - t:.1f} s")
    filt = reclaim.InactiveFilter(account, 14, NOW)

    async def page(after: str | None = None) -> Any:
        async with db.read() as s:
            return await reclaim.inactive_page(s, filt, 50, after)

    async def count() -> int:
        async with db.read() as s:
            return await reclaim.inactive_count(s, filt)

    async def users_page() -> Any:
        async with db.read() as s:
            return await lists.users_page(s, lists.UserFilter(account), 50, None)

    deep = None
    cursor = None
    for _ in range(100):  # walk 5,000 rows in
        found = await page(cursor)
        cursor = found.end_cursor
        deep = cursor
    base = await timed(args.rounds, users_page)
    results = {
        "inactiveUsers first page": await timed(args.rounds, page),
        "inactiveUsers after 5,000": await timed(args.rounds, lambda: page(deep)),
        "inactiveUsers totalCount": await timed(args.rounds, count),
    }
    print(f"[{name}] {'users(first: 50) (baseline)':32} p50 {base[0]:7.1f} ms  p99 {base[1]:7.1f} ms")
    for label, (p50, p99) in results.items():
        print(f"[{name}] {label:32} p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  ({p50 / base[0]:.1f}x baseline)")
    print(f"[{name}] idle users: {await count()}")
    await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(sqlite_url(Path(tmp) / "bench.db"), "sqlite", args))
    from tests import pg

    if not args.no_postgres and pg.binaries() is not None:
        server = pg.PostgresServer()
        try:
            asyncio.run(run(server.create_database(), "postgres", args))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
