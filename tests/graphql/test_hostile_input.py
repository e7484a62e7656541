"""Hostile list arguments: forged cursors, NUL and lone surrogates in a search, huge ids.

Each is the client's mistake, so it must come back as a top-level ``BAD_USER_INPUT`` naming
the argument (or, for an id, as "no such row"), never as a masked INTERNAL_SERVER_ERROR
from a driver that could not bind the value.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from server.domain.reads import cursors
from server.infra.db import Database
from tests.graphql.helpers import PENDING_PAGE, Gql, ids
from tests.graphql.test_queries import queue
from tests.support import Tenant

# Every list that takes ``after``: its query, its cursor's tag, and a well-formed sort key
# before the id (the forged value goes in the id's place).
_WHEN = "2026-11-26T09:00:00+00:00"
LISTS: dict[str, tuple[str, str, list[Any]]] = {
    "pendingUsers(ENTERED_ASC)": (
        "query($after: String) { pendingUsers(first: 5, after: $after) { totalCount edges { cursor } } }",
        "pending:entered",
        [_WHEN],
    ),
    "pendingUsers(ENTERED_DESC)": (
        "query($after: String) { pendingUsers(first: 5, after: $after, orderBy: ENTERED_DESC) { edges { cursor } } }",
        "pending:entered-desc",
        [_WHEN],
    ),
    "pendingUsers(NAME_ASC)": (
        "query($after: String) { pendingUsers(first: 5, after: $after, orderBy: NAME_ASC) { edges { cursor } } }",
        "pending:name",
        ["pending x"],
    ),
    "users": (
        "query($after: String) { users(first: 5, after: $after) { edges { cursor } } }",
        "users:name",
        ["licensed 1"],
    ),
    "agents": (
        "query($after: String) { agents(first: 5, after: $after) { edges { cursor } } }",
        "agents:key",
        ["lic1"],
    ),
    "auditLog": (
        "query($after: String) { auditLog(first: 5, after: $after) { edges { cursor } } }",
        "audit:at",
        [_WHEN],
    ),
    "settingsHistory": (
        "query($after: String) { settingsHistory(first: 5, after: $after) { edges { cursor } } }",
        "settings:id",
        [],
    ),
}

# Values no cursor of ours ever holds in an id's place. Ids are INTEGER columns: 32-bit on
# PostgreSQL, so 2**31 cannot be bound there either.
BAD_IDS: list[Any] = [
    2**63,
    -(2**63) - 1,
    10**30,
    2**31,
    -1,
    0,
    1e308,
    1.5,
    float("nan"),
    float("inf"),
    True,
    False,
    None,
    "1",
    [[1]],
    {"id": 1},
]

# Values that are not a sort key of their list (text keys, then timestamps).
BAD_TEXT_KEYS: list[Any] = ["\x00", "a\x00b", "\ud800", "x\udfffy", 10**30, True, [[1]], None]
BAD_TIME_KEYS: list[Any] = [
    "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
    "9999-12-31T23:30:00-01:00",  # after year 9999 in UTC
    "2026-11-26T09:00:00",  # no zone
    "\ud800",
    "2026-11-26T09:00:00+00:00\x00",
    1e308,
    [[1]],
]


def forge(kind: str, *key: Any) -> str:
    raw = json.dumps([kind, *key]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def assert_bad_after(result: Any, cursor: str) -> None:
    assert result.codes == ["BAD_USER_INPUT"], (cursor, result.errors)
    assert result.errors[0]["extensions"]["field"] == "after"


@pytest.mark.parametrize("name", list(LISTS))
async def test_a_forged_cursor_id_is_bad_user_input(
    gql: Gql, db: Database, tenant: Tenant, name: str
) -> None:
    await queue(db, tenant, pending=2)
    query, kind, prefix = LISTS[name]
    for bad in BAD_IDS:
        cursor = forge(kind, *prefix, bad)
        assert_bad_after(await gql(tenant.admin_token, query, after=cursor), cursor)


@pytest.mark.parametrize("name", [n for n, (_, _, prefix) in LISTS.items() if prefix])
async def test_a_forged_cursor_sort_key_is_bad_user_input(
    gql: Gql, db: Database, tenant: Tenant, name: str
) -> None:
    await queue(db, tenant, pending=2)
    query, kind, prefix = LISTS[name]
    bad_keys = BAD_TIME_KEYS if prefix[0] == _WHEN else BAD_TEXT_KEYS
    for bad in bad_keys:
        cursor = forge(kind, bad, 1)
        assert_bad_after(await gql(tenant.admin_token, query, after=cursor), cursor)


async def test_a_cursor_nested_past_the_parsers_recursion_limit_is_bad_user_input(
    gql: Gql, tenant: Tenant
) -> None:
    cursor = base64.urlsafe_b64encode(b"[" * 1500).decode()
    assert len(cursor) <= 2048
    for query, _, _ in LISTS.values():
        assert_bad_after(await gql(tenant.admin_token, query, after=cursor), cursor)


async def test_a_well_formed_forged_cursor_still_pages(gql: Gql, db: Database, tenant: Tenant) -> None:
    """The refusals above are of values, not of forging: an honest key is still a key."""
    queued = await queue(db, tenant, pending=3)
    # Names "Pending z", "Pending y", "Pending x" in queue order: by name, x comes first.
    after = forge("pending:name", "pending x", queued[2])
    page = (await gql(tenant.admin_token, PENDING_PAGE, first=5, after=after, orderBy="NAME_ASC")).ok()
    assert ids(page["pendingUsers"]) == [str(queued[1]), str(queued[0])]


SEARCHES = {
    "pendingUsers": "query($s: String) { pendingUsers(first: 50, search: $s) { totalCount edges { node { id } } } }",
    "users": "query($s: String) { users(first: 50, search: $s) { totalCount edges { node { id } } } }",
    "agents": "query($s: String) { agents(first: 50, search: $s) { totalCount edges { node { id } } } }",
}


@pytest.mark.parametrize("name", list(SEARCHES))
@pytest.mark.parametrize("search", ["\x00", "pend\x00", "\x00zzz", "\ud800", "pend\udfff"])
async def test_a_search_with_nul_or_a_lone_surrogate_is_bad_user_input(
    gql: Gql, db: Database, tenant: Tenant, name: str, search: str
) -> None:
    # SQLite ends a LIKE pattern at a NUL, so "%\x00%" matched every row; PostgreSQL
    # cannot take NUL in text, and a lone surrogate cannot be encoded for either.
    await queue(db, tenant, pending=2)
    result = await gql(tenant.admin_token, SEARCHES[name], s=search)
    assert result.codes == ["BAD_USER_INPUT"], result.errors
    assert result.errors[0]["extensions"]["field"] == "search"
    assert "search" in result.errors[0]["message"]
    assert result.data is None or result.data.get(name) is None


async def test_a_search_with_other_control_characters_matches_nothing(
    gql: Gql, db: Database, tenant: Tenant
) -> None:
    """Only what cannot be bound is refused; any other odd text is simply not found."""
    await queue(db, tenant, pending=2)
    for search in ("\x1b[0m", "\u202e", "pend\u200b"):
        found = (await gql(tenant.admin_token, SEARCHES["users"], s=search)).ok()["users"]
        assert found["totalCount"] == 0 and found["edges"] == [], search


@pytest.mark.parametrize("raw", ["2147483648", "9223372036854775807", "9223372036854775808", "0", "-1"])
async def test_an_id_out_of_range_is_not_found(gql: Gql, db: Database, tenant: Tenant, raw: str) -> None:
    await queue(db, tenant, pending=1)
    query = "query($id: ID!) { user(id: $id) { id } }"
    assert (await gql(tenant.admin_token, query, id=raw)).ok()["user"] is None
    approve = "mutation($ids: [ID!]!) { approvePendingUsers(input: {userIds: $ids}) { approved { id } errors { code field } } }"
    payload = (await gql(tenant.admin_token, approve, ids=[raw])).ok()["approvePendingUsers"]
    assert payload["approved"] == [] and [e["code"] for e in payload["errors"]] == ["NOT_FOUND"]


@pytest.mark.parametrize(
    "raw",
    [
        True,
        False,
        2**31,
        2**63,
        -(2**63) - 1,
        0,
        -5,
        1.0,
        float("nan"),
        None,
        [[1]],
        "1e3",
        "١٢",
        "+1",
        "",
        " ",
    ],
)
def test_parse_id_refuses_anything_but_an_id(raw: Any) -> None:
    assert cursors.parse_id(raw) is None


@pytest.mark.parametrize(("raw", "expected"), [("1", 1), (" 42 ", 42), (7, 7), (str(2**31 - 1), 2**31 - 1)])
def test_parse_id_reads_an_id(raw: Any, expected: int) -> None:
    assert cursors.parse_id(raw) == expected


@pytest.mark.parametrize("escaped", [r"\u0000", r"\ud800"])
async def test_over_http_a_search_with_nul_or_a_lone_surrogate_is_bad_user_input(
    http: httpx.AsyncClient, db: Database, tenant: Tenant, escaped: str
) -> None:
    """The same through a real server: JSON escapes decode to the raw characters."""
    await queue(db, tenant, pending=1)
    body = '{"query": "query($s: String) { users(first: 5, search: $s) { totalCount } }", "variables": {"s": "%s"}}'
    response = await http.post(
        "/graphql",
        content=(body % escaped).encode(),
        headers={"Authorization": f"Bearer {tenant.admin_token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 200
    errors = response.json()["errors"]
    assert [e["extensions"]["code"] for e in errors] == ["BAD_USER_INPUT"]
    assert errors[0]["extensions"]["field"] == "search"
