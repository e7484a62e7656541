"""/graphql over a real uvicorn: GraphiQL, GET, hostile queries, masking, the response cache."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

import httpx
import pytest

from server.infra.db import Database
from tests.graphql.helpers import ACCOUNT, PENDING_PAGE
from tests.graphql.test_queries import queue
from tests.server.domain import arrive
from tests.support import FakeClock, Tenant, batch_body


def auth(tenant: Tenant) -> dict[str, str]:
    return {"Authorization": f"Bearer {tenant.admin_token}"}


def nested(depth: int) -> str:
    """``user -> agents -> user -> ...`` ``depth`` levels deep."""
    inner = "id"
    fields = []
    for level in range(depth - 1):
        fields.append("agents" if level % 2 == 0 else "user")
    for name in reversed(fields):
        inner = f"{name} {{ {inner} }}"
    return f'{{ user(id: "1") {{ {inner} }} }}'


async def test_graphiql_for_a_browser_without_a_token(http: httpx.AsyncClient) -> None:
    response = await http.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200 and "graphiql" in response.text.lower()


async def test_get_with_a_query_needs_a_token(http: httpx.AsyncClient, tenant: Tenant) -> None:
    params = {"query": "{ me { id } }"}
    assert (await http.get("/graphql", params=params)).status_code == 401
    response = await http.get("/graphql", params=params, headers=auth(tenant))
    assert response.status_code == 200 and response.json()["data"]["me"]["id"] == str(tenant.admin_id)
    assert response.headers["x-request-id"]


@pytest.mark.parametrize(
    "request_kwargs",
    [
        pytest.param(
            {
                "method": "GET",
                "params": {
                    "query": "mutation { updateAccountSettings(input: {manualReview: true}) { errors { code } } }"
                },
            },
            id="mutation-over-get",
        ),
        pytest.param(
            {"method": "POST", "json": [{"query": "{ me { id } }"}, {"query": "{ me { id } }"}]},
            id="batching",
        ),
        pytest.param(
            {"method": "POST", "content": b"{not json", "headers": {"content-type": "application/json"}},
            id="bad-json",
        ),
        pytest.param(
            {
                "method": "POST",
                "content": b'{"query": "{ me { id } }", "x": ' + b"9" * 5000 + b"}",
                "headers": {"content-type": "application/json"},
            },
            id="over-long-integer",
        ),
        pytest.param(
            {
                "method": "POST",
                "content": b"x" * (1024 * 1024 + 1),
                "headers": {"content-type": "application/json"},
            },
            id="huge-body",
        ),
        pytest.param({"method": "PUT", "json": {"query": "{ me { id } }"}}, id="put"),
    ],
)
async def test_hostile_requests_are_refused_without_a_5xx(
    http: httpx.AsyncClient, tenant: Tenant, db: Database, request_kwargs: dict[str, Any]
) -> None:
    kwargs = dict(request_kwargs)
    headers = {**auth(tenant), **kwargs.pop("headers", {})}
    response = await http.request(url="/graphql", headers=headers, **kwargs)
    assert 400 <= response.status_code < 500, response.text
    account = (await http.post("/graphql", json={"query": ACCOUNT}, headers=auth(tenant))).json()["data"][
        "account"
    ]
    assert account["manualReview"] is False


@pytest.mark.parametrize(
    ("query", "code", "needle"),
    [
        (
            "{ " + " ".join(f"a{i}: me {{ id }}" for i in range(2000)) + " }",
            "GRAPHQL_PARSE_FAILED",
            "2000 tokens",
        ),
        (
            "{ " + " ".join(f"a{i}: me {{ id }}" for i in range(16)) + " }",
            "GRAPHQL_VALIDATION_FAILED",
            "aliases",
        ),
        (nested(16), "GRAPHQL_VALIDATION_FAILED", "depth"),
        ("{ pendingUsers(first: 100000) { totalCount } }", "BAD_USER_INPUT", "1 to 500"),
        ("{ nope }", "GRAPHQL_VALIDATION_FAILED", "nope"),
        ("{ me { id ", "GRAPHQL_PARSE_FAILED", "Syntax Error"),
    ],
    ids=["2000-aliases", "16-aliases", "16-deep", "first-100000", "unknown-field", "syntax"],
)
async def test_hostile_queries_are_answered_with_a_code(
    http: httpx.AsyncClient, tenant: Tenant, query: str, code: str, needle: str
) -> None:
    response = await http.post("/graphql", json={"query": query}, headers=auth(tenant))
    assert response.status_code == 200
    errors = response.json()["errors"]
    assert [e["extensions"]["code"] for e in errors] == [code]
    assert needle in errors[0]["message"]


async def test_limits_allow_what_clients_need(http: httpx.AsyncClient, tenant: Tenant) -> None:
    query = "{ " + " ".join(f"a{i}: me {{ id }}" for i in range(15)) + " }"
    assert "errors" not in (await http.post("/graphql", json={"query": query}, headers=auth(tenant))).json()
    deep = (await http.post("/graphql", json={"query": nested(10)}, headers=auth(tenant))).json()
    assert "errors" not in deep
    intro = "{ __schema { types { name fields { name type { name ofType { name ofType { name } } } } } } }"
    assert "errors" not in (await http.post("/graphql", json={"query": intro}, headers=auth(tenant))).json()


async def test_bad_variables_are_bad_user_input(http: httpx.AsyncClient, tenant: Tenant) -> None:
    query = "query($d: Date!) { activityReport(from: $d, to: $d) { from } }"
    response = await http.post(
        "/graphql", json={"query": query, "variables": {"d": "yesterday"}}, headers=auth(tenant)
    )
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["BAD_USER_INPUT"]


async def test_unexpected_errors_are_masked_and_logged_with_the_request_id(
    http: httpx.AsyncClient, tenant: Tenant, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*_: Any) -> int:
        raise RuntimeError("secret internals: /etc/plm")

    monkeypatch.setattr("server.domain.reads.lists.audit_count", broken)
    with caplog.at_level(logging.ERROR, logger="server.graphql"):
        response = await http.post(
            "/graphql", json={"query": "{ auditLog { totalCount } }"}, headers=auth(tenant)
        )
    assert response.status_code == 200
    (error,) = response.json()["errors"]
    assert error["message"] == "Internal server error." and "secret" not in response.text
    request_id = response.headers["x-request-id"]
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}
    logged = [r for r in caplog.records if request_id in r.getMessage()]
    assert logged and logged[0].exc_info is not None and "secret internals" in str(logged[0].exc_info[1])


async def test_queue_page_cache_is_keyed_by_queue_version(
    http: httpx.AsyncClient, db: Database, tenant: Tenant, clock: FakeClock
) -> None:
    queued = await queue(db, tenant, pending=2)
    routes = http.app.router.routes  # type: ignore[attr-defined]
    graphql_app = next(r.app for r in routes if getattr(r, "path", "") == "/graphql")

    async def page() -> dict[str, Any]:
        body = {
            "query": PENDING_PAGE + ACCOUNT.replace("{ account", "query A { account"),
            "operationName": "Page",
            "variables": {"first": 10},
        }
        response = await http.post("/graphql", json=body, headers=auth(tenant))
        assert response.status_code == 200
        data: dict[str, Any] = response.json()["data"]
        return data

    first = await page()
    hits = graphql_app.cache.hits
    assert await page() == first and graphql_app.cache.hits == hits + 1

    # A heartbeat from a pending user (no events) changes what the queue shows.
    clock.advance(minutes=5)
    response = await http.post(
        "/ingest",
        json=batch_body("PC0", "pend0", events=0),
        headers={"Authorization": f"Bearer {tenant.ingest_key}"},
    )
    assert response.status_code == 202
    seen = await page()
    node = seen["pendingUsers"]["edges"][0]["node"]
    assert node["id"] == str(queued[0]) and node["lastSeenAt"] == clock.now.isoformat()

    # A mutation through the API, and a write outside it (another process, the CLI), both show.
    remove = {
        "query": "mutation($ids: [ID!]!) { removeUsers(input: {userIds: $ids}) { errors { code } } }",
        "variables": {"ids": [str(queued[0])]},
    }
    removed = (await http.post("/graphql", json=remove, headers=auth(tenant))).json()
    assert removed["data"]["removeUsers"]["errors"] == []
    assert (await page())["pendingUsers"]["totalCount"] == 1
    await arrive(db, tenant.account_id, "NEW", "newbie", now=clock.now + timedelta(minutes=1))
    assert (await page())["pendingUsers"]["totalCount"] == 2


async def test_the_cache_never_serves_non_queue_reads(http: httpx.AsyncClient, tenant: Tenant) -> None:
    query = {"query": "{ me { notifyOnPending } }"}
    assert (await http.post("/graphql", json=query, headers=auth(tenant))).json()["data"]["me"][
        "notifyOnPending"
    ]
    mutation = {
        "query": "mutation { updateNotificationSettings(input: {notifyOnPending: false}) { errors { code } } }"
    }
    await http.post("/graphql", json=mutation, headers=auth(tenant))
    assert not (await http.post("/graphql", json=query, headers=auth(tenant))).json()["data"]["me"][
        "notifyOnPending"
    ]


async def test_answers_are_json_whatever_text_they_carry(
    http: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    """Answers are encoded by orjson (non-ASCII text as UTF-8, not escaped); what it refuses
    (a lone surrogate, an integer past 64 bits) by json as before."""
    await arrive(db, tenant.account_id, "PC-É", "zoë", name="Zoë Ünal ☃")
    query = "{ users { edges { node { displayName agents { deviceName logonName } } } } }"
    response = await http.post("/graphql", json={"query": query}, headers=auth(tenant))
    assert response.status_code == 200
    (edge,) = response.json()["data"]["users"]["edges"]
    assert edge["node"] == {
        "displayName": "Zoë Ünal ☃",
        "agents": [{"deviceName": "PC-É", "logonName": "zoë"}],
    }
    # What orjson refuses, json encodes: the same JSON text, never a 500.
    view = next(r.app for r in http.app.routes if getattr(r, "path", None) == "/graphql")
    for refused in ({"message": "bad \ud800 text"}, {"n": 2**70}):
        assert json.loads(view.encode_json(refused)) == refused
    assert view.encode_json({"a": ["é", None, 1.5]}) == '{"a":["é",null,1.5]}'


def test_request_ids_are_64_random_bits_made_without_a_system_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """os.urandom is a system call that gives up the GIL (tens of us a request under ingest
    load, by py-spy). Ids come from ``random`` instead; they still differ every time."""
    from server.web import observe

    def refused(_n: int) -> bytes:
        raise AssertionError("a request id called os.urandom")

    monkeypatch.setattr("os.urandom", refused)
    ids = {observe.new_request_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(len(i) == 16 and int(i, 16) >= 0 for i in ids)


async def test_a_document_known_not_to_be_cacheable_skips_the_tokens_synchronous_read(
    http: httpx.AsyncClient, db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite a request's token is first read synchronously, to answer a cache hit without
    a session. A document already known not to be cacheable can have no hit: only its read
    session authenticates it. Cacheable documents still go through the synchronous read."""
    from server.infra.sqlite_tokens import SqliteTokenLookup

    calls: list[str] = []
    real = SqliteTokenLookup.lookup

    def counting(self: SqliteTokenLookup, token: str) -> Any:
        calls.append(token)
        return real(self, token)

    monkeypatch.setattr(SqliteTokenLookup, "lookup", counting)
    me = {"query": "query MeOnce { me { id email } }"}
    answers = [await http.post("/graphql", json=me, headers=auth(tenant)) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[2].json() == answers[0].json()
    page = {"query": "query AccountOnce { account { id licenseLimit } }"}
    for _ in range(2):
        assert (await http.post("/graphql", json=page, headers=auth(tenant))).status_code == 200
    assert len(calls) == (3 if db.is_sqlite else 0)  # the first sight of each document, then the hit
    # A wrong token is still refused on a known document.
    refused = await http.post("/graphql", json=me, headers={"Authorization": "Bearer plm_wrong"})
    assert refused.status_code == 401
