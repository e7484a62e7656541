"""Schemathesis generates queries and mutations from the schema; as ADMIN none may fail the server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from server.infra.db import Database
from server.infra.settings import Settings
from server.web.app import create_app
from tests.server.domain import arrive
from tests.support import Tenant, make_tenant, sqlite_url


async def provision(url: str) -> Tenant:
    db = Database(url)
    try:
        await db.migrate()
        tenant = await make_tenant(db, licenses=2)
        for i in range(4):
            await arrive(db, tenant.account_id, f"PC{i}", f"u{i}")
        return tenant
    finally:
        await db.dispose()


def test_generated_operations_never_fail_the_server(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "fuzz.db")
    tenant = asyncio.run(provision(url))
    headers = {"Authorization": f"Bearer {tenant.admin_token}"}
    # The app owns its database; schemathesis runs it (lifespan included) on its own event loop.
    app = create_app(Settings(database_url=url))
    schema = schemathesis.graphql.from_asgi("/graphql", app, headers=headers)

    @settings(
        max_examples=120,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=schema.as_strategy())
    def fuzz(case: schemathesis.Case) -> None:
        response = case.call_and_validate(headers=headers, checks=[not_a_server_error])
        assert "INTERNAL_SERVER_ERROR" not in response.text, response.text

    fuzz()
