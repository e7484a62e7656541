"""A request leaves no reference cycle behind: its objects go when it ends, by reference
counting, not at the cyclic garbage collector's next pass.

A cycle through a request's execution (graphql-core's helpers bound to the execution context,
MaskErrors' bound callback, a context and its loaders, a user and its agents' owner) kept the
request's context, loaders and rows for the collector: ~800 objects a queue page. With pages
and ingest at once its passes took 10-30 ms every half second, and 400-550 ms once the heap
had grown (bench/queue_page.py: the mixed page's p99 of 600-700 ms).
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from server.domain.reads.loads import PendingInfo, Retained
from server.domain.reads.rows import AgentRow, UserRow
from server.graphql.context import Context, Loaders
from server.graphql.execution import Executor
from server.graphql.extensions import ErrorPolicy
from server.graphql.types.users import AgentType, PendingInfoType, UserType
from server.infra.db import Database
from tests.graphql.helpers import PENDING_PAGE
from tests.graphql.test_http import auth
from tests.graphql.test_n_plus_one import ACTIVITY_PAGE
from tests.graphql.test_queries import two_device_queue
from tests.support import Tenant

OURS = (Context, Loaders, Executor, ErrorPolicy, UserType, AgentType, PendingInfoType)
ROWS = (UserRow, AgentRow, Retained, PendingInfo)
TRACKED = frozenset(OURS + ROWS)

OWNERS = """query($first: Int!) { me { id } pendingUsers(first: $first) { totalCount edges { node {
    id agents { id user { id displayName agents { id } } } pending { reason overdue }
} } } }"""
BAD = "query { pendingUsers(first: 0) { totalCount } }"  # an error answer: BAD_USER_INPUT


@contextmanager
def cyclic_garbage() -> Iterator[Counter[str]]:
    """What the cyclic collector finds meanwhile, of the request's objects, by type name."""
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    found: Counter[str] = Counter()
    try:
        yield found
        gc.collect()
        # type(), not isinstance(): gc.garbage may hold a dead weakref.proxy (Loaders' context).
        found.update(type(o).__name__ for o in gc.garbage if type(o) in TRACKED)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


async def test_requests_leave_their_objects_to_reference_counting(
    http: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    await two_device_queue(db, tenant, licensed=3, pending=6)

    async def post(query: str, **variables: int) -> None:
        response = await http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=auth(tenant)
        )
        assert response.status_code == 200

    documents = [
        (PENDING_PAGE, {"first": 5}),
        (OWNERS, {"first": 5}),
        (ACTIVITY_PAGE, {"first": 5}),
        (BAD, {}),
    ]
    for query, variables in documents:  # once first: parsing and validating leave one-time cycles
        await post(query, **variables)
    with cyclic_garbage() as found:
        for _ in range(3):
            for query, variables in documents:
                await post(query, **variables)
    assert not found, found
