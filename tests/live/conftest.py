from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from server.infra.db import Database
from server.infra.settings import Settings
from server.web.app import create_app
from tests.live.helpers import LiveServer
from tests.support import FakeClock, serve_app


@pytest.fixture
async def server(db: Database, db_url: str, clock: FakeClock) -> AsyncIterator[LiveServer]:
    """The real app under a real uvicorn, with the test's clock."""
    app = create_app(Settings(database_url=db_url), db=db, clock=clock)
    async with serve_app(app) as base, LiveServer.open(app, base) as live:
        yield live
