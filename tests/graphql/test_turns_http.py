"""Uncached GraphQL executions take one turn of the event loop each (server.infra.turns).

Requests are handed to the ASGI app directly, all in one turn of the loop, as uvicorn hands
over requests that arrive together: which of them waits is then certain, not a race.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from server.infra.db import Database
from server.infra.settings import Settings
from server.web.app import create_app
from server.web.runtime import Services
from tests.support import FakeClock, Tenant, asgi_post


async def post_graphql(app: Starlette, token: str, payload: dict[str, Any]) -> tuple[int, Any]:
    headers = [(b"content-type", b"application/json"), (b"authorization", f"Bearer {token}".encode())]
    status, body = await asgi_post(app, "/graphql", json.dumps(payload).encode(), headers)
    return status, orjson.loads(body)


def turn_waits(app: Starlette) -> float:
    svc: Services = app.state.services
    for family in text_string_to_metric_families(svc.telemetry.render().decode()):
        for sample in family.samples:
            if sample.name == "plm_graphql_turn_wait_seconds_count":
                return sample.value
    raise AssertionError("plm_graphql_turn_wait_seconds is not exported")


async def burst(app: Starlette, tenant: Tenant, query: str) -> list[tuple[int, Any]]:
    """Eight executions of ``query`` (it asks ``me``, never cached) at once; all answered."""
    answers = await asyncio.gather(
        *(post_graphql(app, tenant.admin_token, {"query": query, "variables": {"n": n}}) for n in range(1, 9))
    )
    assert [status for status, _ in answers] == [200] * 8
    return answers


async def test_a_burst_of_uncached_queries_takes_turns(
    db: Database, db_url: str, clock: FakeClock, tenant: Tenant
) -> None:
    app = create_app(Settings(database_url=db_url), db=db, clock=clock)
    async with app.router.lifespan_context(app):
        query = "query Me($n: Int!) { me { id } pendingUsers(first: $n) { totalCount } }"
        before = turn_waits(app)
        answers = await burst(app, tenant, query)
        assert all(body["data"]["me"]["id"] == str(tenant.admin_id) for _, body in answers)
        # The first went straight in; the others waited for later turns (a few per turn,
        # as many as fit in the turn's budget: tests/server/test_turns.py).
        waited = turn_waits(app) - before
        assert 1 <= waited <= 7
        # One at a time, nothing waits.
        status, _ = await post_graphql(app, tenant.admin_token, {"query": query, "variables": {"n": 9}})
        assert status == 200 and turn_waits(app) - before == waited


async def test_a_budget_of_zero_starts_one_execution_per_turn(
    db: Database, db_url: str, clock: FakeClock, tenant: Tenant
) -> None:
    app = create_app(Settings(database_url=db_url, graphql_turn_budget_ms=0), db=db, clock=clock)
    async with app.router.lifespan_context(app):
        query = "query MeAlone($n: Int!) { me { id } pendingUsers(first: $n) { totalCount } }"
        before = turn_waits(app)
        await burst(app, tenant, query)
        # The first went straight in; the other seven waited for turns of their own.
        assert turn_waits(app) - before == 7


def test_the_budget_is_bounded() -> None:
    with pytest.raises(ValueError, match="graphql_turn_budget_ms"):
        Settings(database_url="sqlite+aiosqlite:///x.db", graphql_turn_budget_ms=-1)
    with pytest.raises(ValueError, match="graphql_turn_budget_ms"):
        Settings(database_url="sqlite+aiosqlite:///x.db", graphql_turn_budget_ms=101)
