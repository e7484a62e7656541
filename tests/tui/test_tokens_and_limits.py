"""The admin client against a real server that slows it down (429) or revokes its token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from server.domain import accounts
from server.infra.db import Database
from server.infra.settings import Settings
from server.web.app import create_app
from tests.support import FakeClock, make_tenant, serve_app
from tests.tui.conftest import SERVER_OF, LiveServer, RecordingApp, wait_until
from tests.tui.test_pending import SIZE, arrive, ready, rows
from tui_client.screens.token_refused import REVOKED, TokenRefusedScreen
from tui_client.widgets.connection_status import ConnectionStatus


def header(app: RecordingApp) -> str:
    return str(app.query_one(ConnectionStatus).render())


@pytest.fixture
async def slow(db: Database, db_url: str, clock: FakeClock) -> AsyncIterator[LiveServer]:
    """A server that lets one token make 3 GraphQL operations a second."""
    made = await make_tenant(db, licenses=0)
    app = create_app(Settings(database_url=db_url, rate_limit_graphql="3/second"), db=db, clock=clock)
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        yield LiveServer(base, made, clock, http, db)


async def test_a_429_shows_in_the_header_and_the_client_retries_after_it(slow: LiveServer) -> None:
    await arrive(slow, "Ada", "Alan")
    app = slow.app()
    seen: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        # Starting up takes more than three operations in its first second.
        await wait_until(pilot, lambda: "slowing down" in header(app), "the slow-down notice")
        seen.append(header(app))
        await ready(pilot, app, 2)
        await wait_until(pilot, lambda: "slowing down" not in header(app), "the notice to clear")
        assert sorted(rows(app)) == ["Ada", "Alan"]
        assert [n for n in app.notices if n[0] == "error"] == []
    assert "slowing down, retrying in 1 s" in seen[0]


async def test_a_revoked_token_shows_its_screen_and_the_client_stops_reconnecting(
    live_review: LiveServer,
) -> None:
    live = live_review
    await arrive(live, "Ada")
    app = live.app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, 1)
        await wait_until(pilot, lambda: app.me is not None, "sign-in")
        async with live.db.write() as session:
            await accounts.revoke_admin(session, live.tenant.account_id, "admin@acme.example", live.clock())
        await wait_until(pilot, lambda: isinstance(app.screen, TokenRefusedScreen), "the revoked screen")
        assert str(app.screen.query_one("#title").render()) == REVOKED
        await wait_until(pilot, lambda: not _live_running(app), "the live loop to stop")
        await pilot.pause(1.0)  # several backoff periods (0.1-0.5 s): nothing reconnects
        assert live.subscribers() == 0 and not _live_running(app)
        assert app.connection == "offline"
        await pilot.press("q")
    assert SERVER_OF.get(app) is live


def _live_running(app: Any) -> bool:
    return any(w.group == "live" and w.is_running for w in app.workers)
