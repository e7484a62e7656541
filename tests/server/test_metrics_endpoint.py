"""``GET /metrics`` over a real uvicorn: the Prometheus text parses and counters follow real requests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from server.infra.db import Database
from server.infra.settings import Settings
from server.web.app import create_app
from server.web.runtime import Services
from tests.live.helpers import WAIT, LiveServer, Subscriber
from tests.support import FakeClock, Tenant, batch_body, make_tenant, serve_app

METRICS_TOKEN = "metrics-token-0123456789"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@dataclass
class Served:
    app: Starlette
    http: httpx.AsyncClient
    live: LiveServer

    @property
    def svc(self) -> Services:
        services: Services = self.app.state.services
        return services


@pytest.fixture
async def served(db: Database, db_url: str, clock: FakeClock) -> AsyncIterator[Served]:
    app = create_app(Settings(database_url=db_url, metrics_token=METRICS_TOKEN), db=db, clock=clock)
    async with serve_app(app) as base, LiveServer.open(app, base) as live:
        yield Served(app, live.http, live)


async def scrape(http: httpx.AsyncClient) -> Samples:
    response = await http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def test_metrics_need_the_token_when_one_is_set(served: Served) -> None:
    assert (await served.http.get("/metrics")).status_code == 401
    wrong = await served.http.get("/metrics", headers={"Authorization": "Bearer metrics-token-wrong-value"})
    assert wrong.status_code == 401
    names = {name for name, _ in await scrape(served.http)}
    for expected in (
        "plm_http_requests_total",
        "plm_graphql_operations_total",
        "plm_live_subscribers",
        "plm_outbox_pending",
        "plm_outbox_oldest_age_seconds",
        "plm_db_pool_in_use",
        "plm_db_pool_wait_seconds_count",
        "plm_graphql_turn_wait_seconds_count",
    ):
        assert expected in names


async def test_counters_follow_real_requests(served: Served, db: Database, tenant: Tenant) -> None:
    http = served.http
    ingest = {"Authorization": f"Bearer {tenant.ingest_key}"}
    admin = {"Authorization": f"Bearer {tenant.admin_token}"}
    before = await scrape(http)
    answers = [
        await http.post("/ingest", json=batch_body(f"PC-{i}", f"u{i}", events=2), headers=ingest)
        for i in range(5)
    ]
    assert [a.json()["status"] for a in answers] == ["LICENSED"] * 3 + ["PENDING"] * 2
    again = {**batch_body("PC-0", "u0"), "batchId": "again"}
    replays = [await http.post("/ingest", json=again, headers=ingest) for _ in range(2)]
    assert [r.json()["duplicate"] for r in replays] == [False, True]
    assert (await http.post("/ingest", json={"batchId": ""}, headers=ingest)).status_code == 400
    assert (await http.post("/ingest", json=batch_body("PC", "x"))).status_code == 401
    pending = answers[3].json()["userId"]
    query = await http.post("/graphql", json={"query": "query Q { account { pendingCount } }"}, headers=admin)
    assert query.status_code == 200
    approve = await http.post(
        "/graphql",
        json={
            "query": f'mutation A {{ removeUsers(input: {{userIds: ["{pending}"]}}) {{ errors {{ code }} }} }}'
        },
        headers=admin,
    )
    assert approve.json()["data"]["removeUsers"]["errors"] == []
    async with Subscriber(served.live, tenant.admin_token, tenant.account_id):
        during = await scrape(http)
        assert value(during, "plm_live_subscribers") == 1
    assert await served.app.state.jobs.tick("retention")
    after = await scrape(http)

    assert moved(before, after, "plm_http_requests_total", route="/ingest", status="202") == 7
    assert moved(before, after, "plm_http_requests_total", route="/ingest", status="400") == 1
    assert moved(before, after, "plm_http_requests_total", route="/ingest", status="401") == 1
    assert moved(before, after, "plm_http_requests_total", route="/graphql", status="200") == 2
    assert moved(before, after, "plm_http_request_duration_seconds_count", route="/graphql") == 2
    assert moved(before, after, "plm_graphql_operations_total", type="query") == 1
    assert moved(before, after, "plm_graphql_operations_total", type="mutation") == 1
    assert moved(before, after, "plm_graphql_operations_total", type="subscription") == 1
    assert (
        moved(before, after, "plm_ingest_batches_total", status="licensed") == 4
    )  # 3 new + the replayed one
    assert moved(before, after, "plm_ingest_batches_total", status="pending") == 2
    assert moved(before, after, "plm_ingest_batches_total", status="duplicate") == 1
    assert moved(before, after, "plm_ingest_batches_total", status="invalid") == 1
    assert moved(before, after, "plm_ingest_batches_total", status="unauthenticated") == 1
    assert moved(before, after, "plm_ingest_events_total") == 11
    assert moved(before, after, "plm_admissions_total", status="licensed") == 3
    assert moved(before, after, "plm_admissions_total", status="pending") == 2
    assert moved(before, after, "plm_queue_actions_total", action="entered") == 2
    assert moved(before, after, "plm_queue_actions_total", action="removed") == 1
    assert moved(before, after, "plm_group_commit_batch_size_count") >= 1
    assert moved(before, after, "plm_group_commit_batch_size_sum") == 7  # every batch committed
    assert moved(before, after, "plm_job_runs_total", job="retention", result="ran") == 1
    assert moved(before, after, "plm_db_pool_wait_seconds_count") > 0
    assert value(after, "plm_live_subscribers") == 0
    assert value(after, "plm_db_pool_in_use") >= 0
    # No label names a user, a path or a credential.
    labels = {k for (_, pairs) in after for k, _ in pairs}
    assert labels <= {"route", "status", "type", "action", "job", "result", "kind", "le", "quantile"}


async def test_the_outbox_backlog_is_read_when_scraped(
    served: Served, db: Database, clock: FakeClock
) -> None:
    from server.domain.models import OutboxMessage, OutboxStatus

    tenant = await make_tenant(db, name="Mail")
    async with db.write() as session:
        session.add(
            OutboxMessage(
                account_id=tenant.account_id,
                message_id="<m1@plm>",
                sender="plm@localhost",
                recipient="a@mail.example",
                subject="s",
                content="c",
                status=OutboxStatus.PENDING,
                next_attempt_at=clock.now,
                created_at=clock.now,
            )
        )
    clock.advance(seconds=90)
    samples = await scrape(served.http)
    assert value(samples, "plm_outbox_pending", kind="mail") == 1
    assert value(samples, "plm_outbox_oldest_age_seconds", kind="mail") == pytest.approx(90)
    assert value(samples, "plm_outbox_pending", kind="webhook") == 0


async def test_apps_in_one_process_count_apart(db: Database, db_url: str) -> None:
    first = create_app(Settings(database_url=db_url), db=db)
    second = create_app(Settings(database_url=db_url), db=db)
    async with serve_app(first) as a, serve_app(second) as b, httpx.AsyncClient(timeout=WAIT) as http:
        await asyncio.gather(*(http.get(f"{a}/healthz") for _ in range(3)))
        one = (await http.get(f"{a}/metrics")).text
        two = (await http.get(f"{b}/metrics")).text
    assert 'plm_http_requests_total{route="/healthz",status="200"} 3.0' in one
    assert 'route="/healthz"' not in two
