"""A POSTed JSON operation is executed straight from the decoded body (GraphQLApp._answer):
its answers are those of Strawberry's view, for good and bad bodies alike.

Each request is sent twice to one app: with ``direct_posts`` (the short path) and without
(every request through Strawberry's view, as before the short path existed).
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from server.graphql.http import GraphQLApp
from server.infra.db import Database
from server.infra.settings import Settings
from server.web.app import create_app
from tests.support import FakeClock, Tenant, asgi_post

PAGE = "query Page($n: Int!) { me { id role } pendingUsers(first: $n) { totalCount edges { node { id displayName } } } }"
JSON = (b"content-type", b"application/json")

# (body, extra headers): answered by the short path or refused as Strawberry refuses.
CASES: list[tuple[object, list[tuple[bytes, bytes]]]] = [
    ({"query": PAGE, "variables": {"n": 2}}, []),
    ({"query": PAGE, "variables": {"n": 2}, "operationName": "Page", "extensions": {}}, []),
    ({"query": "{ me { id } }"}, []),
    ({"query": PAGE, "variables": {"n": "two"}}, []),  # a variable of the wrong type
    ({"query": PAGE}, []),  # a required variable missing
    ({"query": "{ me { nope } }"}, []),  # validation error
    ({"query": "{ me { id "}, []),  # syntax error
    ({"query": "query A { me { id } } query B { me { id } }"}, []),  # which operation?
    ({"query": "query A { me { id } }", "operationName": "B"}, []),
    ({"query": "subscription { pendingQueueChanged { action } }"}, []),
    ({"query": None}, []),
    ({"variables": {}}, []),
    ({"query": 5}, []),
    ({"query": PAGE, "variables": [1]}, []),
    ({"query": PAGE, "variables": {"n": 1}, "extensions": "x"}, []),
    ({"query": "{ pendingUsers(first: 5000) { totalCount } }"}, []),  # out of range
    # a mutation that changes nothing (an unknown id: a payload error), so both answers match
    (
        {
            "query": 'mutation { approvePendingUsers(input: {userIds: ["999999"]}) { approved { id } errors { code } } }'
        },
        [],
    ),
    ([{"query": "{ me { id } }"}], []),  # a batch: batching is off
    ({"query": "{ me { id } }"}, [(b"accept", b"text/event-stream")]),
    ({"query": "{ me { id } }"}, [(b"accept", b"multipart/mixed")]),
]


def graphql_app(app: Starlette) -> GraphQLApp:
    for route in app.routes:
        if isinstance(route, Route) and isinstance(route.app, GraphQLApp):
            return route.app
    raise AssertionError("no /graphql route")


def comparable(status: int, body: bytes) -> tuple[int, Any]:
    try:
        return status, orjson.loads(body)
    except orjson.JSONDecodeError:
        return status, body.decode()


@pytest.mark.parametrize("case", range(len(CASES)))
async def test_the_short_path_answers_as_strawberrys_view(
    db: Database, db_url: str, clock: FakeClock, tenant: Tenant, case: int
) -> None:
    body, extra = CASES[case]
    headers = [JSON, (b"authorization", f"Bearer {tenant.admin_token}".encode()), *extra]
    app = create_app(Settings(database_url=db_url), db=db, clock=clock)
    view = graphql_app(app)
    through_view = 0
    run = view.run

    async def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal through_view
        through_view += 1
        return await run(*args, **kwargs)

    view.run = counted  # type: ignore[method-assign]
    async with app.router.lifespan_context(app):
        answers = []
        for direct in (True, False):
            view.direct_posts = direct
            answers.append(comparable(*await asgi_post(app, "/graphql", json.dumps(body).encode(), headers)))
    assert answers[0] == answers[1]
    # Only a batch still goes through Strawberry's view on the short path (the app serves no
    # streaming transport, so a streaming Accept is answered as any other POST, by both).
    assert through_view == (2 if isinstance(body, list) else 1)


async def test_other_content_types_are_strawberrys(
    db: Database, db_url: str, clock: FakeClock, tenant: Tenant
) -> None:
    app = create_app(Settings(database_url=db_url), db=db, clock=clock)
    auth = (b"authorization", f"Bearer {tenant.admin_token}".encode())
    async with app.router.lifespan_context(app):
        body = json.dumps({"query": "{ me { id } }"}).encode()
        status, text = await asgi_post(app, "/graphql", body, [(b"content-type", b"text/plain"), auth])
        assert (status, text) == (400, b"Unsupported content type")
        status, text = await asgi_post(
            app, "/graphql", body, [(b"content-type", b"application/json; charset=utf-8"), auth]
        )
        assert status == 200 and orjson.loads(text) == {"data": {"me": {"id": str(tenant.admin_id)}}}
