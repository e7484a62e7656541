from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from server.infra.db import Database
from tests import pg
from tests.support import FakeClock, Tenant, make_tenant, sqlite_url

# Every test that takes a database runs on SQLite and, where its binaries are installed,
# on a throwaway PostgreSQL. CI sets REQUIRE_POSTGRES_TESTS so they cannot go missing.
HAVE_POSTGRES = pg.binaries() is not None
if os.environ.get("REQUIRE_POSTGRES_TESTS") and not HAVE_POSTGRES:
    raise RuntimeError("REQUIRE_POSTGRES_TESTS is set but PostgreSQL's server binaries are not installed")
BACKENDS = ["sqlite", "postgres"] if HAVE_POSTGRES else ["sqlite"]


@pytest.fixture(scope="session")
def postgres() -> Iterator[pg.PostgresServer]:
    server = pg.PostgresServer()
    yield server
    server.stop()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    if backend == "sqlite":
        yield sqlite_url(tmp_path / "plm.db")
        return
    server: pg.PostgresServer = request.getfixturevalue("postgres")
    url = server.create_database()
    yield url
    server.drop_database(url)


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


# Cross-process PostgreSQL tests need the server binaries (CI always has them, see above).
collect_ignore = (
    []
    if HAVE_POSTGRES
    else [
        "e2e/test_postgres_processes.py",
        "e2e/test_postgres_broadcast.py",
        "e2e/test_postgres_plans.py",
        "e2e/test_postgres_undo.py",
    ]
)
