"""/ingest over a real uvicorn: a rotated key's grace on the app's clock, and the rate limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from server.domain import accounts
from server.infra.db import Database
from server.infra.settings import Settings
from server.web.app import create_app
from server.web.runtime import INGEST_KEY_RECHECK_SECONDS
from tests.support import FakeClock, Tenant, batch_body, make_tenant, serve_app


@pytest.fixture
async def http(db: Database, db_url: str, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=db_url, rate_limit_ingest="3/minute", rate_limit_unauthenticated="2/minute"
    )
    app = create_app(settings, db=db, clock=clock)
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        yield client


async def send(http: httpx.AsyncClient, key: str, n: int) -> httpx.Response:
    return await http.post(
        "/ingest", json=batch_body(f"PC-{n}", f"u{n}"), headers={"Authorization": f"Bearer {key}"}
    )


async def test_the_old_key_works_for_its_grace_on_the_apps_clock_then_stops(
    db: Database, db_url: str, clock: FakeClock
) -> None:
    settings = Settings(database_url=db_url)  # default limits: far above what this sends
    app = create_app(settings, db=db, clock=clock)
    tenant = await make_tenant(db)
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base, timeout=30) as http:
        assert (await send(http, tenant.ingest_key, 1)).status_code == 202  # cached as current
        async with db.write() as session:
            new = await accounts.rotate_ingest_key(session, tenant.account_id, 24, clock())
        ends = clock.now + timedelta(hours=24)
        assert (await send(http, new.secret, 2)).status_code == 202
        # The process re-reads a key it knows once a second (on the app's clock) and learns
        # that the old one is now in its grace.
        clock.advance(seconds=INGEST_KEY_RECHECK_SECONDS + 1)
        assert (await send(http, tenant.ingest_key, 3)).status_code == 202
        clock.now = ends - timedelta(seconds=0.5)
        assert (await send(http, tenant.ingest_key, 4)).status_code == 202  # read, cached again
        clock.advance(seconds=0.6)
        # Still within the cache's second: the cached grace ends on time all the same.
        refused = await send(http, tenant.ingest_key, 5)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "UNAUTHENTICATED"
        assert (await send(http, new.secret, 6)).status_code == 202


async def test_over_the_keys_limit_the_answer_is_429_with_retry_after(
    http: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    other = await make_tenant(db, name="Other")
    answers = [await send(http, tenant.ingest_key, n) for n in range(4)]
    assert [a.status_code for a in answers] == [202, 202, 202, 429]
    refused = answers[-1]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.json()["error"]["code"] == "RATE_LIMITED"
    # Counted per key: another account's agents are not slowed down.
    assert (await send(http, other.ingest_key, 9)).status_code == 202


async def test_requests_that_fail_to_authenticate_are_limited_per_address(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    statuses = [(await send(http, "plmi_not-a-key", n)).status_code for n in range(3)]
    assert statuses == [401, 401, 429]
    missing = await http.post("/ingest", json=batch_body("PC", "u"))
    assert missing.status_code == 429 and int(missing.headers["retry-after"]) >= 1
    # A valid key from the same address still gets through.
    assert (await send(http, tenant.ingest_key, 1)).status_code == 202
