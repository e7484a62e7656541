from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from server.infra.db import Database
from server.infra.settings import Settings
from server.web.app import create_app
from server.web.runtime import Services
from tests.graphql.helpers import Gql
from tests.support import FakeClock, serve_app


@pytest.fixture
def services(db: Database, db_url: str, clock: FakeClock) -> Services:
    return Services(Settings(database_url=db_url), db, clock)


@pytest.fixture
def gql(services: Services) -> Gql:
    return Gql(services)


@pytest.fixture
async def http(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """The real app under a real uvicorn; a client for its base URL."""
    app = create_app(services.settings, db=services.db, clock=services.clock)
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        client.app = app  # type: ignore[attr-defined]
        yield client
