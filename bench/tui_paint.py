"""Admin client: time from launch to the first painted page of a 10,000-user queue.

    .venv/bin/python -m bench.tui_paint [--users 10000] [--runs 5]

Seeds a temp SQLite database with N pending users (one event each, written straight into
the tables), runs ``plm serve`` on
it in a child process (so the server does not share the client's event loop), then launches
the admin client headless ``--runs`` times and prints, per launch and as a median:

- launch -> data: from constructing the app to the first page's answer arriving;
- data -> paint: from that answer to the table having been painted (the target: <= 1 s);
- launch -> paint: the two together;
- rows loaded: the client pages lazily, so this stays at one page, not N.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from server.domain import accounts
from server.domain.activity import chunks
from server.domain.activity.batch import Event
from server.domain.models import (
    Agent,
    PendingReason,
    Role,
    User,
    UserStatus,
    agent_key,
    login_key,
)
from server.infra.db import Database

REPO = Path(__file__).resolve().parent.parent
NOW = datetime.now(UTC).replace(microsecond=0)


async def seed(url: str, users: int) -> str:
    """An account with no free license and ``users`` pending users; returns an admin token."""
    db = Database(url)
    await db.migrate()
    try:
        async with db.write() as session:
            acct = await accounts.create_account(
                session, name="Bench", license_limit=0, manual_review=False, retention_days=30, now=NOW
            )
            admin = await accounts.create_admin(
                session,
                account_id=acct.id,
                email="admin@bench.example",
                name="Bench Admin",
                role=Role.ADMIN,
                now=NOW,
            )
        # Straight into the tables in one transaction: the domain's one-arrival-at-a-time
        # ingestion would take minutes for 10,000 users, and this bench measures the client.
        async with db.write() as session:
            people = []
            for i in range(users):
                start = NOW - timedelta(minutes=users - i)
                people.append(
                    User(
                        account_id=acct.id,
                        display_name=f"User {i:05}",
                        status=UserStatus.PENDING,
                        first_seen_at=start,
                        last_seen_at=start,
                        pending_reason=PendingReason.OVER_LIMIT,
                        pending_since=start,
                    )
                )
            session.add_all(people)
            await session.flush()
            agents = []
            for i, user in enumerate(people):
                assert user.id is not None
                device, logon = f"PC-{i:05}", f"user{i:05}"
                agents.append(
                    Agent(
                        account_id=acct.id,
                        user_id=user.id,
                        device_name=device,
                        domain="BENCH",
                        logon_name=logon,
                        key=agent_key(device, "BENCH", logon),
                        login_key=login_key(device, "BENCH", logon),
                        first_seen_at=user.first_seen_at,
                        last_seen_at=user.last_seen_at,
                    )
                )
            session.add_all(agents)
            await session.flush()
            await chunks.store(
                session,
                (
                    (
                        agent.user_id,
                        agent.id,
                        Event(agent.first_seen_at, 120, "excel.exe", None, None, "productive"),
                    )
                    for agent in agents
                    if agent.id is not None
                ),
            )
        return admin.secret
    finally:
        await db.dispose()


def start_server(db_url: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PLM_DATABASE_URL": db_url, "PLM_LOG_LEVEL": "warning"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve", "--port", str(port)],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the server did not start")


async def one_launch(url: str, token: str) -> tuple[float, float, int]:
    from textual.message import Message

    from tui_client.app import AdminApp
    from tui_client.screens.paged import PagedListView

    first_data: float | None = None
    first_paint: float | None = None

    def painted() -> None:
        nonlocal first_paint
        first_paint = time.perf_counter()

    def watch(message: Message) -> None:
        # Textual calls this as each message is handled: the queue's first answer, about to be
        # drawn; the callback runs once the screen has been refreshed with it.
        nonlocal first_data
        if (
            first_data is None
            and isinstance(message, PagedListView.PageLoaded)
            and message.view is app.pending
        ):
            first_data = time.perf_counter()
            message.view.call_after_refresh(painted)

    t0 = time.perf_counter()
    app = AdminApp(url, token)
    async with app.run_test(size=(120, 36), message_hook=watch) as pilot:
        deadline = time.monotonic() + 30
        while first_paint is None:
            if time.monotonic() > deadline:
                raise SystemExit("the first page never painted")
            await asyncio.sleep(0.001)
        assert first_data is not None
        data, paint = first_data - t0, first_paint - first_data
        rows = app.pending.table.row_count
        await pilot.pause()
    return data, paint, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="plm-bench-") as tmp:
        db_url = f"sqlite+aiosqlite:///{Path(tmp) / 'plm.db'}"
        t = time.perf_counter()
        token = asyncio.run(seed(db_url, args.users))
        print(f"seeded {args.users:,} pending users in {time.perf_counter() - t:.1f} s")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = start_server(db_url, port)
        try:
            url = f"http://127.0.0.1:{port}/graphql"
            results = []
            for run in range(args.runs):
                data, paint, rows = asyncio.run(one_launch(url, token))
                results.append((data, paint))
                print(
                    f"run {run + 1}: launch->data {data * 1000:7.1f} ms   data->paint {paint * 1000:6.1f} ms   "
                    f"launch->paint {(data + paint) * 1000:7.1f} ms   rows loaded {rows}"
                )
            med_data = statistics.median(d for d, _ in results)
            med_paint = statistics.median(p for _, p in results)
            med_total = statistics.median(d + p for d, p in results)
            print(
                f"median over {args.runs} launches with {args.users:,} pending users: "
                f"launch->data {med_data * 1000:.0f} ms, data->paint {med_paint * 1000:.0f} ms "
                f"(target <= 1000 ms), launch->paint {med_total * 1000:.0f} ms"
            )
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
