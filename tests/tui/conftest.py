"""A real server for the admin client's tests: uvicorn on a free port, a temp SQLite file.

Pilot tests run the server in the test's own event loop (``live``); snapshot tests are
synchronous (pytest-textual-snapshot runs the app in its own loop), so they get a server in
a thread (``ThreadedServer``). Either way the client reaches it only over HTTP and websockets.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from textual.message import Message
from textual.notifications import Notify
from textual.pilot import Pilot

from server.domain.activity import ingestion
from server.domain.activity.batch import Batch
from server.domain.admission import AgentReport
from server.infra.broadcast import MemoryBroadcaster
from server.infra.db import Database
from server.infra.settings import Settings
from server.web.app import create_app
from tests.support import START, FakeClock, Tenant, batch_body, make_tenant, serve_app, sqlite_url
from tui_client import app as tui_app
from tui_client.app import AdminApp

TIMEOUT = 15.0


class RecordingApp(AdminApp):
    """The admin client, keeping what it told the admin, in order, for the tests to read."""

    # Textual reads CSS_PATH relative to the subclass's module: the app's own stylesheet.
    CSS_PATH = Path(tui_app.__file__).with_name("app.tcss")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.notices: list[tuple[str, str, str]] = []  # (severity, title, message)

    def post_message(self, message: Message) -> bool:
        # App.notify posts each notification, as shown (AdminApp.notify cleaned it), as Notify.
        if isinstance(message, Notify):
            shown = message.notification
            self.notices.append((shown.severity, shown.title, shown.message))
        return super().post_message(message)


@dataclass
class LiveServer:
    base_url: str
    tenant: Tenant
    clock: FakeClock
    http: httpx.AsyncClient
    db: Database
    batches: int = field(default=0)

    @property
    def graphql_url(self) -> str:
        return f"{self.base_url}/graphql"

    def app(self, *, viewer: bool = False, page_size: int = 100, usage_refresh: float = 10.0) -> RecordingApp:
        token = self.tenant.viewer_token if viewer else self.tenant.admin_token
        app = RecordingApp(
            self.graphql_url,
            token,
            tz=UTC,
            page_size=page_size,
            retry=(0.1, 0.5),
            usage_refresh=usage_refresh,
        )
        SERVER_OF[app] = self
        return app

    def subscribers(self) -> int:
        """Live subscriptions the server has registered for this account."""
        broadcaster = self.db.broadcaster
        assert isinstance(broadcaster, MemoryBroadcaster)
        return broadcaster.broker.subscriber_count(self.tenant.account_id)

    async def ingest(
        self,
        device: str,
        logon: str,
        display: str | None = None,
        *,
        events: int = 2,
        start: datetime = START,
        domain: str = "ACME",
    ) -> dict[str, Any]:
        self.batches += 1
        body = batch_body(
            device,
            logon,
            display=display,
            domain=domain,
            events=events,
            start=start,
            batch_id=f"b-{self.batches}",
        )
        response = await self.http.post(
            "/ingest", json=body, headers={"Authorization": f"Bearer {self.tenant.ingest_key}"}
        )
        assert response.status_code == 202, response.text
        result: dict[str, Any] = response.json()
        return result

    async def seed(self, names: list[str]) -> None:
        """Many arrivals at once, straight through the domain in one transaction (fast)."""
        async with self.db.write() as session:
            for i, name in enumerate(names):
                report = AgentReport(f"PC-{i:05}", "ACME", f"u{i:05}", name)
                await ingestion.ingest(session, self.tenant.account_id, Batch(f"seed-{i}", report, []), START)

    async def gql(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {self.tenant.admin_token}"},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert not body.get("errors"), body
        data: dict[str, Any] = body["data"]
        return data

    async def user(self, user_id: str) -> dict[str, Any] | None:
        data = await self.gql(
            "query($id: ID!) { user(id: $id) { id displayName status agents { id logonName deviceName } } }",
            id=user_id,
        )
        user: dict[str, Any] | None = data["user"]
        return user

    async def account(self) -> dict[str, Any]:
        data = await self.gql(
            "{ account { licenseLimit licensesUsed licensesAvailable pendingCount manualReview } }"
        )
        account: dict[str, Any] = data["account"]
        return account


# The server each app under test talks to (see ``LiveServer.app``).
SERVER_OF: weakref.WeakKeyDictionary[AdminApp, LiveServer] = weakref.WeakKeyDictionary()


async def wait_until(
    pilot: Pilot[Any], predicate: Callable[[], bool], what: str, within: float = TIMEOUT
) -> None:
    """Poll ``predicate`` between the app's idle points until it holds or the deadline passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await pilot.pause(0.02)


async def eventually(
    pilot: Pilot[Any], check: Callable[[], Awaitable[bool]], what: str, within: float = TIMEOUT
) -> None:
    """Like :func:`wait_until`, for a condition that needs the API (an ``async`` check)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await pilot.pause(0.05)


async def _start(db: Database, db_url: str, clock: FakeClock, **tenant: Any) -> AsyncIterator[LiveServer]:
    made = await make_tenant(db, **tenant)
    app = create_app(Settings(database_url=db_url), db=db, clock=clock)
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        yield LiveServer(base, made, clock, http, db)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: the client sees the server through its API, whatever the database behind it."""
    return sqlite_url(tmp_path / "plm.db")


@pytest.fixture
async def live(db: Database, db_url: str, clock: FakeClock) -> AsyncIterator[LiveServer]:
    """A server whose account has 3 licenses and manual review off."""
    async for server in _start(db, db_url, clock, licenses=3):
        yield server


@pytest.fixture
async def live_review(db: Database, db_url: str, clock: FakeClock) -> AsyncIterator[LiveServer]:
    """A server whose account has 3 licenses and manual review on: every arrival waits."""
    async for server in _start(db, db_url, clock, licenses=3, manual_review=True):
        yield server


# ---------------------------------------------------------------------------- snapshots

PEOPLE = [
    ("LAPTOP-0101", "alovelace", "Ada Lovelace"),
    ("LAPTOP-0102", "aturing", "Alan Turing"),
    ("DESKTOP-0103", "ghopper", "Grace Hopper"),
    ("LAPTOP-0104", "ltorvalds", "Linus Torvalds"),
    ("LAPTOP-0105", "mhamilton", "Margaret Hamilton"),
    ("DESKTOP-0106", "dritchie", "Dennis Ritchie"),
    ("LAPTOP-0107", "bliskov", "Barbara Liskov"),
    ("LAPTOP-0108", "kthompson", "Ken Thompson"),
    ("LAPTOP-0109", "rperlman", "Radia Perlman"),
    ("DESKTOP-0110", "tbernerslee", "Tim Berners-Lee"),
    ("LAPTOP-0111", "fallen", "Frances Allen"),
    ("LAPTOP-0112", "jmccarthy", "John McCarthy"),
    ("LAPTOP-0113", "edijkstra", "Edsger Dijkstra"),
    ("DESKTOP-0114", "hlamarr", "Hedy Lamarr"),
]
# (days ago, minutes, app, productivity): Tim's history, for the detail pane's chart.
HISTORY = [
    (1, 95, "chrome.exe", "productive"),
    (2, 40, "slack.exe", "neutral"),
    (3, 120, "code.exe", "productive"),
    (5, 15, "youtube.com", "unproductive"),
    (8, 60, "excel.exe", "productive"),
    (9, 75, "chrome.exe", "neutral"),
    (12, 30, "code.exe", "productive"),
]
REMOVED = "Hedy Lamarr"  # removed by the admin while seeding, so the audit log and metrics have a resolution


class ThreadedServer:
    """The server in its own thread and event loop, seeded with fixed people on a fixed clock."""

    def __init__(self, path: Path, licenses: int = 8) -> None:
        self.url = sqlite_url(path)
        self.licenses = licenses
        self.clock = FakeClock()
        self.base_url = ""
        self.tenant: Tenant | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> ThreadedServer:
        self._thread.start()
        if not self._ready.wait(60):
            raise TimeoutError("server thread did not start")
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def app(self, **kwargs: Any) -> AdminApp:
        assert self.tenant is not None
        url = f"{self.base_url}/graphql"
        return AdminApp(url, self.tenant.admin_token, tz=UTC, retry=(0.1, 0.5), **kwargs)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced to the test by start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        db = Database(self.url)
        await db.migrate()
        try:
            self.tenant = await make_tenant(db, name="Acme", licenses=self.licenses)
            app = create_app(Settings(database_url=self.url), db=db, clock=self.clock)
            async with serve_app(app) as base, httpx.AsyncClient(base_url=base) as http:
                headers = {"Authorization": f"Bearer {self.tenant.ingest_key}"}
                for i, (device, logon, name) in enumerate(PEOPLE):
                    self.clock.advance(minutes=7)
                    body = batch_body(
                        device,
                        logon,
                        display=name,
                        batch_id=f"seed-{i}",
                        events=1 + i % 4,
                        start=self.clock.now,
                        duration=300 + 60 * i,
                    )
                    response = await http.post("/ingest", json=body, headers=headers)
                    assert response.status_code == 202, response.text
                    if name == REMOVED:
                        self.clock.advance(minutes=3)
                        removal = await http.post(
                            "/graphql",
                            json={
                                "query": "mutation($ids: [ID!]!) { removeUsers(input: {userIds: $ids}) "
                                "{ errors { code } } }",
                                "variables": {"ids": [response.json()["userId"]]},
                            },
                            headers={"Authorization": f"Bearer {self.tenant.admin_token}"},
                        )
                        assert removal.json()["data"]["removeUsers"]["errors"] == [], removal.text
                await self._history_and_duplicate(http, headers)
                self.base_url = base
                self._ready.set()
                await self._stop.wait()
        finally:
            await db.dispose()

    async def _history_and_duplicate(self, http: httpx.AsyncClient, headers: dict[str, str]) -> None:
        """For the detail pane: Tim's activity over the last two weeks, and Tim again in a local
        account on his desktop (a likely match, both ways)."""
        self.clock.advance(minutes=5)
        history = batch_body(
            "DESKTOP-0110", "tbernerslee", display="Tim Berners-Lee", batch_id="seed-history"
        )
        history["events"] = [
            {
                "start": (self.clock.now - timedelta(days=days, hours=2)).isoformat(),
                "durationSeconds": minutes * 60,
                "app": app,
                "title": None,
                "url": None,
                "productivity": productivity,
            }
            for days, minutes, app, productivity in HISTORY
        ]
        duplicate = batch_body(
            "DESKTOP-0110",
            "tbernerslee",
            domain="DESKTOP-0110",
            display="Tim Berners-Lee",
            batch_id="seed-dup",
        )
        for body in (history, duplicate):
            response = await http.post("/ingest", json=body, headers=headers)
            assert response.status_code == 202, response.text


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedServer]:
    server = ThreadedServer(tmp_path_factory.mktemp("tui-snap") / "plm.db").start()
    yield server
    server.stop()
