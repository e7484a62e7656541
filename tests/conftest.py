from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from server.db import Database
from tests.support import FakeClock, Tenant, make_tenant, sqlite_url


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return sqlite_url(tmp_path / "plm.db")


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    await database.migrate()
    yield database
    await database.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def tenant(db: Database) -> Tenant:
    return await make_tenant(db)
