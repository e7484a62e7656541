"""Hostile-query limits in time linear in the document, and caches bounded by bytes.

The reported attack: 21 fragments that each spread the next twice, 825 bytes, walked once
per spread by the old depth and alias limiters (2,097,151 walks, seconds of a blocked event
loop per request; each added level doubled it). Timings are printed, never asserted: the
tests assert the structure that makes the time linear — each fragment is measured once, and
measuring takes one step per selection written in the document.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import uvicorn
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    Visitor,
    get_introspection_query,
    parse,
    specified_rules,
    visit,
)
from starlette.types import Message, Receive, Scope, Send
from strawberry.schema.schema import validate_document

from server.graphql import extensions, limits
from server.graphql.cache import Cacheable, ResponseCache
from server.graphql.extensions import PARSED, VALIDATED
from server.graphql.limits import MAX_SELECTIONS, Measurement
from server.graphql.schema import schema
from server.infra.settings import Settings
from server.web.app import create_app
from tests.graphql.test_http import nested
from tests.support import Tenant
from tui_client.operations import ALL

# --- hostile documents -------------------------------------------------------------------


def doubling(levels: int, width: int = 2, leaf: str = "id", name: str = "Q") -> str:
    """``me { ...F0 }``; each fragment spreads the next ``width`` times; the last selects ``leaf``."""
    parts = [f"query {name} {{ me {{ ...F0 }} }}"]
    for i in range(levels):
        parts.append(f"fragment F{i} on Admin {{ {' '.join([f'...F{i + 1}'] * width)} }}")
    parts.append(f"fragment F{levels} on Admin {{ {leaf} }}")
    return " ".join(parts)


ATTACK = doubling(20)
"""The reported document, byte for byte: F0 … F19 spread the next twice, F20 selects ``id``."""


def many_fields(levels: int) -> str:
    """Each fragment selects six fields and spreads the next twice."""
    fields = "id name email role notifyOnPending __typename"
    parts = ["query Q { me { ...F0 } }"]
    parts += [f"fragment F{i} on Admin {{ {fields} ...F{i + 1} ...F{i + 1} }}" for i in range(levels)]
    parts.append(f"fragment F{levels} on Admin {{ {fields} }}")
    return " ".join(parts)


def nested_inline(levels: int) -> str:
    """Inline fragments nested two deep in each fragment, around two spreads of the next."""
    parts = ["query Q { me { ...F0 } }"]
    for i in range(levels):
        spread = f"...F{i + 1}"
        parts.append(
            f"fragment F{i} on Admin {{ ... on Admin {{ ... on Admin {{ {spread} }} {spread} }} "
            f"... {{ {spread} }} }}"
        )
    parts.append(f"fragment F{levels} on Admin {{ id }}")
    return " ".join(parts)


def cycle_and_fan_out(levels: int) -> str:
    """A and B spread each other twice (a cycle) and the doubling chain below them."""
    chain = doubling(levels).split("} } ", 1)[1]
    return (
        "query Q { me { ...A } } fragment A on Admin { ...B ...B ...F0 } "
        "fragment B on Admin { ...A ...A ...F0 } " + chain
    )


def many_operations(levels: int, operations: int = 20) -> str:
    """``operations`` operations share one doubling chain; the request names one to run."""
    chain = doubling(levels).split("} } ", 1)[1]
    return " ".join(f"query Q{j} {{ me {{ ...F0 }} }}" for j in range(operations)) + " " + chain


HOSTILE: dict[str, tuple[str, str | None]] = {
    "attack-21x2": (ATTACK, None),
    "doubling-30": (doubling(30), None),
    "8-wide-8-deep": (doubling(8, width=8), None),
    "6-fields-16-deep": (many_fields(16), None),
    "nested-inline-20": (nested_inline(20), None),
    "cycle-and-fan-out": (cycle_and_fan_out(30), None),
    "20-operations": (many_operations(20), "Q7"),
}


def selections_written(document: DocumentNode) -> int:
    """Fields, spreads and inline fragments as written (each once, fragments not expanded)."""

    class Count(Visitor):
        count = 0

        def enter(self, node: Any, *_: Any) -> None:
            if isinstance(node, FieldNode | FragmentSpreadNode | InlineFragmentNode):
                self.count += 1

    counter = Count()
    visit(document, counter)
    return counter.count


def viewer(tenant: Tenant) -> dict[str, str]:
    return {"Authorization": f"Bearer {tenant.viewer_token}"}


def codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body["errors"]]


# --- refused in linear time ----------------------------------------------------------------


async def test_the_reported_attack_is_refused_over_http(http: httpx.AsyncClient, tenant: Tenant) -> None:
    assert len(ATTACK) == 825
    started = time.perf_counter()
    response = await http.post("/graphql", json={"query": ATTACK}, headers=viewer(tenant))
    print(f"the attack was answered in {time.perf_counter() - started:.3f} s")
    body = response.json()
    assert response.status_code == 200 and body["data"] is None
    assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
    assert body["errors"][0]["message"] == (
        "the query Q selects 3,145,728 fields and fragments once fragments are expanded; the limit is 2,000"
    )


@pytest.mark.parametrize(("document", "operation"), HOSTILE.values(), ids=HOSTILE.keys())
async def test_fan_outs_are_refused_before_graphql_cores_rules(
    http: httpx.AsyncClient,
    tenant: Tenant,
    monkeypatch: pytest.MonkeyPatch,
    document: str,
    operation: str | None,
) -> None:
    walked: list[DocumentNode] = []

    def standard_rules(schema: Any, document: DocumentNode, rules: Any) -> Any:
        walked.append(document)
        return validate_document(schema, document, rules)

    monkeypatch.setattr(extensions, "validate_document", standard_rules)
    started = time.perf_counter()
    response = await http.post(
        "/graphql", json={"query": document, "operationName": operation}, headers=viewer(tenant)
    )
    print(f"answered in {time.perf_counter() - started:.3f} s")
    body = response.json()
    assert body["data"] is None and set(codes(body)) == {"GRAPHQL_VALIDATION_FAILED"}
    assert all("once fragments are expanded; the limit is 2,000" in e["message"] for e in body["errors"])
    # One error per operation: each is over the limit, and each is checked.
    assert len(body["errors"]) == document.count("query ")
    assert walked == []


@pytest.mark.parametrize(
    "document",
    [*(d for d, _ in HOSTILE.values()), doubling(200), doubling(28, width=3), nested(10)],
    ids=[*HOSTILE, "doubling-200", "3-wide-28-deep", "nested-10"],
)
def test_measuring_takes_one_step_per_written_selection(document: str) -> None:
    parsed = parse(document)
    measurement = Measurement(parsed)
    fragments = {d.name.value for d in parsed.definitions if isinstance(d, FragmentDefinitionNode)}
    assert set(measurement.fragment_measures) == fragments
    assert set(measurement.fragment_measures.values()) <= {1}
    assert measurement.steps == selections_written(parsed)


def test_the_measure_is_the_expanded_size() -> None:
    (_, attack), *_ = Measurement(parse(ATTACK)).operations
    # ``me``, the spreads of F0 (once), F1 (twice), ... F20 (2**20 times), and 2**20 ``id``s.
    assert attack == limits.Cost(depth=1, aliases=0, selections=1 + (2**21 - 1) + 2**20)
    aliased = (
        "query A { me { ...F ...F } } fragment F on Admin { a: id b: id c: id d: id e: id f: id g: id h: id }"
    )
    assert [e.message for e in limits.check(parse(aliased))] == [
        "the query A uses 16 aliases once fragments are expanded; the limit is 15"
    ]
    assert [e.message for e in limits.check(parse(nested(16)))] == [
        "the query's depth 16 exceeds the limit of 10"
    ]
    assert limits.check(parse(nested(10))) == []


async def test_a_fragment_cycle_ends_and_is_refused(http: httpx.AsyncClient, tenant: Tenant) -> None:
    cycle = "query Q { me { ...A } } fragment A on Admin { id ...B ...B } fragment B on Admin { ...A ...A }"
    assert Measurement(parse(cycle)).fragment_measures == {"A": 1, "B": 1}
    response = await http.post("/graphql", json={"query": cycle}, headers=viewer(tenant))
    body = response.json()
    assert set(codes(body)) == {"GRAPHQL_VALIDATION_FAILED"}
    assert "Cannot spread fragment 'A' within itself" in body["errors"][0]["message"]


# --- /healthz answers meanwhile ----------------------------------------------------------


class HoldHeldRequests:
    """ASGI middleware: a request with ``X-Hold: 1`` is answered only once the test releases it.

    It makes "while the attack is in flight" a fact rather than a race: the server has
    received the attack (``received``) and finished refusing it (``answered``), and its
    connection stays open until ``release``.
    """

    def __init__(self, app: Callable[[Scope, Receive, Send], Any]) -> None:
        self.app = app
        self.received = threading.Event()
        self.answered = threading.Event()
        self.release = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (b"x-hold", b"1") not in scope["headers"]:
            await self.app(scope, receive, send)
            return
        self.received.set()

        async def held(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.answered.set()
                await asyncio.to_thread(self.release.wait, 60)
            await send(message)

        await self.app(scope, receive, held)


@contextlib.asynccontextmanager
async def served_in_a_thread(app: Any) -> AsyncIterator[str]:
    """``app`` under uvicorn on its own thread and event loop, so a server whose loop is blocked
    cannot block the test's client too; yields the base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=asyncio.run, args=(server.serve(sockets=[sock]),), daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "the server thread ended before it started"
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await asyncio.to_thread(thread.join, 30)
        sock.close()


async def test_healthz_answers_while_an_attack_is_in_flight(db_url: str, tenant: Tenant) -> None:
    # 30 levels: the old limiters walked it for hours, with the server's event loop blocked.
    gate = HoldHeldRequests(create_app(Settings(database_url=db_url)))
    async with served_in_a_thread(gate) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        attack = asyncio.create_task(
            client.post("/graphql", json={"query": doubling(30)}, headers={**viewer(tenant), "X-Hold": "1"})
        )
        assert await asyncio.to_thread(gate.received.wait, 30)
        health = []
        while True:  # until the refusal is computed, then once more while it is held
            refused = gate.answered.is_set()
            health.append((await client.get("/healthz")).status_code)
            if refused:
                break
        gate.release.set()
        body = (await attack).json()
    assert health and set(health) == {200}
    assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"]


# --- what must pass ------------------------------------------------------------------------

INTROSPECTION = get_introspection_query(
    descriptions=True,
    specified_by_url=True,
    directive_is_repeatable=True,
    schema_description=True,
    input_value_deprecation=True,
    one_of=True,
)
WANTED = {"IntrospectionQuery": INTROSPECTION, **ALL}


@pytest.mark.parametrize("document", WANTED.values(), ids=WANTED.keys())
def test_introspection_and_the_clients_documents_pass(document: str) -> None:
    parsed = parse(document, max_tokens=extensions.MAX_TOKENS)
    assert limits.check(parsed) == []
    assert validate_document(schema._schema, parsed, specified_rules) == []
    # The limit leaves room: the introspection query (the largest, 242) fits eight times over.
    ((_, cost),) = Measurement(parsed).operations
    assert cost.selections * 8 <= MAX_SELECTIONS


# --- caches bounded by bytes -------------------------------------------------------------

# 1,200 comment lines: a few KiB of text, but each comment a token the document keeps alive.
PADDING = "#\n" * 1_200


async def test_the_parse_and_validation_caches_stay_within_their_bytes() -> None:
    # The caches are per process: start from empty, whatever other tests left in them.
    PARSED.clear()
    VALIDATED.clear()
    for i in range(40):
        ok = await schema.execute(f"{PADDING}query Ok{i} {{ __typename }}")
        assert ok.errors is None and ok.data == {"__typename": "Query"}
        bad = await schema.execute(f"{PADDING}query Bad{i} {{ nope{i} }}")
        assert bad.errors and bad.errors[0].extensions == {"code": "GRAPHQL_VALIDATION_FAILED"}
    for cache in (PARSED, VALIDATED):
        assert 0 < cache.currsize <= cache.maxsize
    # 80 documents of some 770 KB each (counted with their tokens) cannot all be held.
    assert len(PARSED) < 80 and len(VALIDATED) < 80


async def test_a_document_over_the_entry_bound_is_not_cached() -> None:
    huge = "#\n" * 1_990 + "{ nope }"  # 1,995 tokens: 1.3 MB once parsed; text 4 KB
    assert extensions.document_bytes(huge, parse(huge)) > PARSED.max_entry_bytes
    held = len(PARSED), PARSED.currsize, len(VALIDATED), VALIDATED.currsize
    for _ in range(2):
        result = await schema.execute(huge)
        assert result.errors and "Cannot query field 'nope'" in result.errors[0].message
    assert (len(PARSED), PARSED.currsize, len(VALIDATED), VALIDATED.currsize) == held


def test_the_response_cache_counts_its_keys() -> None:
    cache = ResponseCache(schema._schema, max_bytes=1024 * 1024)
    text = "{ account { id } }" + " " * 32 * 1024

    def key(i: int, query: str = text) -> Any:
        return (1, i, "ADMIN", query, "null", None)

    for i in range(64):
        cache.put(key(i), b'{"data":{"account":{"id":"1"}}}')
    # 64 tiny bodies, but 2 MiB of query text in their keys.
    assert cache.entries.currsize <= cache.entries.maxsize
    assert len(cache) <= 32 and cache.get(key(63)) is not None and cache.get(key(0)) is None
    over = key(64, "{ account { id } }" + " " * 65 * 1024)
    cache.put(over, b"{}")
    assert cache.get(over) is None


def test_the_cacheable_check_is_bounded_by_bytes() -> None:
    cacheable = Cacheable(schema._schema, max_bytes=256 * 1024)
    for i in range(64):
        assert cacheable(f"{{ account {{ id }} }} # {i}" + "x" * 8 * 1024)
    assert cacheable.known.currsize <= cacheable.known.maxsize and len(cacheable.known) < 64
    over = "{ account { id } } #" + "x" * 20 * 1024
    assert cacheable(over) and over not in cacheable.known
