"""docs/api.md ingestion over a real uvicorn: answers, validation, limits, idempotency."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.domain.models import IngestBatch, User
from server.infra.db import Database
from server.infra.settings import Settings
from server.web.app import create_app
from tests.server.domain import count, events
from tests.support import START, FakeClock, Tenant, batch_body, make_tenant, serve_app, sqlite_url


@pytest.fixture
async def http(db: Database, db_url: str, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(database_url=db_url), db=db, clock=clock)
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        yield client


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def post(http: httpx.AsyncClient, key: str, body: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await http.post(
        "/ingest", content=content, headers={**auth(key), "Content-Type": "application/json"}
    )


async def test_a_batch_is_accepted_with_agent_user_and_status(
    http: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    r = await post(http, tenant.ingest_key, batch_body("LAPTOP-7", "jdoe", events=3))
    assert r.status_code == 202
    body = r.json()
    assert body["status"] == "LICENSED" and body["accepted"] == 3 and body["duplicate"] is False
    assert body["agentId"] and body["userId"]
    assert len(await events(db, user_id=int(body["userId"]))) == 3


async def test_a_heartbeat_admits_the_agent(http: httpx.AsyncClient, db: Database) -> None:
    tenant = await make_tenant(db, licenses=0)
    r = await post(http, tenant.ingest_key, batch_body("PC", "ann", events=0))
    assert r.status_code == 202 and r.json()["status"] == "PENDING" and r.json()["accepted"] == 0


async def test_a_replayed_batch_is_stored_once_and_answers_the_same(
    http: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    body = batch_body("PC", "ann", batch_id="b-1", events=5)
    first = (await post(http, tenant.ingest_key, body)).json()
    again = await post(http, tenant.ingest_key, body)
    assert again.status_code == 202
    assert again.json() == {**first, "duplicate": True}
    assert len(await events(db)) == 5
    assert await count(db, IngestBatch) == 1
    # The same batch id from another agent is another batch.
    other = await post(http, tenant.ingest_key, batch_body("PC2", "bob", batch_id="b-1", events=1))
    assert other.json()["duplicate"] is False


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b["events"][0].update(durationSeconds=-1), "events[0].durationSeconds"),
        (lambda b: b["events"][0].update(durationSeconds=86_401), "events[0].durationSeconds"),
        (lambda b: b["events"][0].update(durationSeconds="60"), "events[0].durationSeconds"),
        (lambda b: b["events"][0].update(durationSeconds=True), "events[0].durationSeconds"),
        (lambda b: b["events"][0].update(start="yesterday"), "events[0].start"),
        (lambda b: b["events"][0].update(start="2026-11-26T09:00:00"), "events[0].start"),
        (lambda b: b["events"][0].update(productivity="lazy"), "events[0].productivity"),
        (lambda b: b["events"][0].update(productivity=[]), "events[0].productivity"),  # was a 500
        (lambda b: b["events"][0].update(productivity={"a": 1}), "events[0].productivity"),
        (lambda b: b["events"][0].update(app="x" * 257), "events[0].app"),
        (lambda b: b["events"][0].update(title="x" * 2049), "events[0].title"),
        (lambda b: b["events"][0].update(url=5), "events[0].url"),
        (lambda b: b["agent"].update(deviceName=""), "agent.deviceName"),
        (lambda b: b["agent"].update(logonName="x" * 257), "agent.logonName"),
        (lambda b: b["agent"].update(domain="A\x1fB"), "agent.domain"),
        (lambda b: b.pop("agent"), "agent"),
        (lambda b: b.update(batchId=""), "batchId"),
        (lambda b: b.update(batchId="x" * 129), "batchId"),
        (lambda b: b.update(events={}), "events"),
        (lambda b: b["events"][0].update(start="0001-01-01T00:00:00+01:00"), "events[0].start"),
        (lambda b: b["events"][0].update(start="9999-12-31T00:00:00Z"), "events[0].start"),
        (lambda b: b["events"][0].update(start="2026-11-28T09:00:00Z"), "events[0].start"),  # 2 days ahead
        (lambda b: b["events"][0].update(app="excel\x00.exe"), "events[0].app"),
        (lambda b: b["events"][0].update(title="\ud800"), "events[0].title"),
        (lambda b: b["events"][0].update(url="http://x/\x00"), "events[0].url"),
        (lambda b: b["agent"].update(displayName="Ann \udfff"), "agent.displayName"),
        (lambda b: b.update(batchId="b\x00"), "batchId"),
    ],
)
async def test_bad_fields_answer_400_and_store_nothing(
    http: httpx.AsyncClient, db: Database, tenant: Tenant, mutate: Any, field: str
) -> None:
    body = batch_body("PC", "ann", events=2)
    mutate(body)
    r = await post(http, tenant.ingest_key, body)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "INVALID_INPUT" and error["message"]
    assert field in [d["field"] for d in error["details"]]
    assert await count(db, User) == 0 and len(await events(db)) == 0


async def test_one_bad_event_rejects_the_whole_batch(
    http: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    body = batch_body("PC", "ann", events=50)
    body["events"][49]["durationSeconds"] = -5
    assert (await post(http, tenant.ingest_key, body)).status_code == 400
    assert len(await events(db)) == 0


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"\xff\xfe", b"[1, 2]", b'"text"', b"[" * 100_000, b'{"batchId": ' + b"9" * 5000 + b"}"],
)
async def test_bad_json_answers_400(http: httpx.AsyncClient, tenant: Tenant, raw: bytes) -> None:
    r = await post(http, tenant.ingest_key, raw)
    assert r.status_code == 400
    assert r.json()["error"]["code"] in {"INVALID_JSON", "INVALID_INPUT"}


@pytest.mark.parametrize("key", [None, "Bearer", "plmi_wrong", "Basic abc"])
async def test_a_bad_key_answers_401(http: httpx.AsyncClient, db: Database, key: str | None) -> None:
    headers = (
        {} if key is None else {"Authorization": key if key in ("Bearer", "Basic abc") else f"Bearer {key}"}
    )
    r = await http.post("/ingest", json=batch_body("PC", "ann"), headers=headers)
    assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHENTICATED"
    assert await count(db, User) == 0


async def test_an_admin_token_is_not_an_ingest_key(http: httpx.AsyncClient, tenant: Tenant) -> None:
    assert (await post(http, tenant.admin_token, batch_body("PC", "ann"))).status_code == 401


async def test_too_many_events_answers_413(http: httpx.AsyncClient, db: Database, tenant: Tenant) -> None:
    body = batch_body("PC", "ann", events=5_001, app="a")
    body["events"] = [{"start": "2026-11-26T09:00:00Z", "durationSeconds": 1, "app": "a"}] * 5_001
    r = await post(http, tenant.ingest_key, body)
    assert r.status_code == 413 and await count(db, User) == 0


async def test_a_body_over_one_mebibyte_answers_413(http: httpx.AsyncClient, tenant: Tenant) -> None:
    r = await post(http, tenant.ingest_key, b" " * (1024 * 1024 + 1))
    assert r.status_code == 413


async def test_a_streamed_body_is_answered_413_before_it_ends(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    # A chunked upload that never ends: the server must answer once it passes 1 MiB rather
    # than wait for (and buffer) the rest.
    url = httpx.URL(str(http.base_url))
    reader, writer = await asyncio.open_connection(url.host, url.port)
    writer.write(
        b"POST /ingest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        + f"Authorization: Bearer {tenant.ingest_key}\r\n\r\n".encode()
    )
    chunk = b" " * 65536
    for _ in range(20):  # 1.25 MiB, and no terminating chunk
        writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), timeout=10)
    assert status_line.split()[1] == b"413"
    writer.close()


async def test_exactly_5000_events_are_accepted(
    http: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    body = batch_body("PC", "ann")
    body["events"] = [{"start": "2026-11-26T09:00:00+02:00", "durationSeconds": 1, "app": "a"}] * 5_000
    r = await post(http, tenant.ingest_key, body)
    assert r.status_code == 202 and r.json()["accepted"] == 5_000
    assert len(await events(db)) == 5_000


async def test_times_are_stored_in_utc_and_productivity_defaults_to_neutral(
    http: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    body = batch_body("PC", "ann")
    body["events"] = [{"start": "2026-11-26T11:00:00+02:00", "durationSeconds": 1, "app": "a"}]
    await post(http, tenant.ingest_key, body)

    (stored,) = await events(db)
    assert stored.event.start == START and stored.event.productivity == "neutral"


async def test_event_starts_are_stored_exactly_as_every_other_timestamp(
    http: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    """The bulk insert bypasses SQLAlchemy's per-row processing; its stored form must not differ
    (on SQLite timestamps are text: another format would compare wrongly at the boundaries)."""
    import sqlalchemy as sa

    from server.domain.models import Account

    body = batch_body("PC", "ann", start=START)
    await post(http, tenant.ingest_key, body)
    async with db.read() as s:
        stored_event = (await s.execute(sa.text("SELECT first_start FROM activity_chunk"))).scalar_one()
        stored_rollup = (
            await s.execute(sa.text("SELECT first_start, last_start, last_end FROM activity_rollup"))
        ).one()
        stored_account = (
            await s.execute(
                sa.text("SELECT created_at FROM account WHERE id = :id"), {"id": tenant.account_id}
            )
        ).scalar_one()
        # Both written from START (make_tenant's default "now").
        assert (await s.get(Account, tenant.account_id)).created_at == START  # type: ignore[union-attr]
        later = (
            await s.execute(
                sa.text("SELECT count(*) FROM activity_rollup WHERE first_start >= :t"), {"t": stored_account}
            )
        ).scalar_one()
    assert type(stored_event) is type(stored_account) and stored_event == stored_account
    assert stored_rollup[0] == stored_rollup[1] == stored_account and later == 1


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(
        min_value=datetime(1900, 1, 2),
        max_value=datetime(9998, 12, 30),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
        ),
    )
)
def test_the_fast_sqlite_timestamp_binder_writes_exactly_sqlalchemys_text(t: datetime) -> None:
    from sqlalchemy.dialects import sqlite

    from server.domain.activity.chunks import CHUNK, binders, micros, micros_binder

    dialect = sqlite.dialect()  # type: ignore[no-untyped-call]
    start_type = CHUNK.c.first_start.type.dialect_impl(dialect)
    stamp, _ = binders(dialect)
    assert stamp(t) == start_type.bind_processor(dialect)(t)
    assert stamp.__name__ == "fast"  # the fast path is in use
    assert micros_binder(dialect)(micros(t)) == start_type.bind_processor(dialect)(t)
    assert micros_binder(dialect).__name__ == "fast"


async def test_healthz(http: httpx.AsyncClient) -> None:
    r = await http.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


async def test_a_locked_database_answers_503_and_a_retry_is_stored_once(tmp_path: Path) -> None:
    """Another process holds SQLite's write lock past the busy timeout: retryable, nothing half-stored."""
    import sqlite3

    url = sqlite_url(tmp_path / "locked.db")
    db = Database(url, busy_timeout_ms=200)
    await db.migrate()
    tenant = await make_tenant(db)
    app = create_app(Settings(database_url=url), db=db)
    other = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    try:
        async with serve_app(app) as base, httpx.AsyncClient(base_url=base, timeout=30) as http:
            body = batch_body("PC", "ann", batch_id="b-1", events=3)
            other.execute("BEGIN IMMEDIATE")
            locked = await post(http, tenant.ingest_key, body)
            other.execute("ROLLBACK")
            assert locked.status_code == 503 and locked.headers["retry-after"] == "1"
            assert locked.json()["error"]["code"] == "UNAVAILABLE"
            retried = await post(http, tenant.ingest_key, body)
            assert retried.status_code == 202 and retried.json()["duplicate"] is False
        assert len(await events(db)) == 3
    finally:
        other.close()
        await db.dispose()
