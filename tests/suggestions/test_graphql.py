"""``User.suggestions`` through ``schema.execute``."""

from __future__ import annotations

from datetime import timedelta

from server.infra.db import Database
from tests.graphql.helpers import Gql
from tests.graphql.test_n_plus_one import counting
from tests.suggestions.helpers import LATER, local, person
from tests.support import START, make_tenant

QUEUE = """
query Queue($first: Int!, $suggestions: Int! = 3) {
  pendingUsers(first: $first) {
    edges { node {
      id displayName
      suggestions(first: $suggestions) {
        kind score reasons
        user { id displayName status }
        agent { id deviceName domain logonName user { id displayName } }
      }
    } }
  }
}
"""


async def test_the_queue_shows_each_pending_users_suggestions_best_first(gql: Gql, db: Database) -> None:
    t = await make_tenant(db, licenses=2)
    renamed_from = await local(db, t.account_id, "LAPTOP-7", "jdoe", "John Doe")
    domain_owner = await person(db, t.account_id, "DESKTOP-1", "asmith", "Ann Smith")
    renamed = await local(db, t.account_id, "LAPTOP-7B", "jdoe", "John Doe", now=LATER)
    beside = await local(db, t.account_id, "DESKTOP-1", "asmith", "Ann Smith", now=LATER)
    stranger = await person(db, t.account_id, "MAC-9", "zed", "Zed Zee", now=LATER)

    edges = (await gql(t.viewer_token, QUEUE, first=10)).ok()["pendingUsers"]["edges"]
    by_id = {e["node"]["id"]: e["node"]["suggestions"] for e in edges}

    (merge,) = by_id[str(renamed.user_id)]
    assert merge["kind"] == "MERGE"
    assert merge["user"] is None
    assert merge["agent"] == {
        "id": str(renamed_from.agent_id),
        "deviceName": "LAPTOP-7",
        "domain": "LAPTOP-7",
        "logonName": "jdoe",
        "user": {"id": str(renamed_from.user_id), "displayName": "John Doe"},
    }
    assert 0.9 < merge["score"] <= 1
    assert "same local login jdoe" in merge["reasons"]

    (assign,) = by_id[str(beside.user_id)]
    assert assign["kind"] == "ASSIGN"
    assert assign["agent"] is None
    assert assign["user"] == {
        "id": str(domain_owner.user_id),
        "displayName": "Ann Smith",
        "status": "LICENSED",
    }
    assert "display name matches (Ann Smith)" in assign["reasons"]

    assert by_id[str(stranger.user_id)] == []


async def test_first_limits_the_list_and_is_range_checked(gql: Gql, db: Database) -> None:
    t = await make_tenant(db, licenses=2)
    await local(db, t.account_id, "LAPTOP-7", "jdoe", "John Doe")
    await person(db, t.account_id, "DESKTOP-1", "john.doe", "John Doe")
    new = await local(db, t.account_id, "LAPTOP-7B", "jdoe", "John Doe", now=LATER)
    query = "query($id: ID!, $n: Int!) { user(id: $id) { suggestions(first: $n) { kind } } }"

    assert len((await gql(t.admin_token, query, id=str(new.user_id), n=3)).ok()["user"]["suggestions"]) == 2
    assert (await gql(t.admin_token, query, id=str(new.user_id), n=1)).ok()["user"]["suggestions"] == [
        {"kind": "MERGE"}
    ]
    for bad in (0, 501):
        result = await gql(t.admin_token, query, id=str(new.user_id), n=bad)
        assert result.codes == ["BAD_USER_INPUT"]


async def test_a_licensed_user_shows_its_likely_match(gql: Gql, db: Database) -> None:
    t = await make_tenant(db, licenses=2)
    first = await local(db, t.account_id, "LAPTOP-7", "jdoe", "John Doe")
    twin = await local(db, t.account_id, "LAPTOP-7B", "jdoe", "John Doe", now=LATER)
    assert twin.status == first.status == "LICENSED"

    data = (
        await gql(
            t.admin_token,
            "query($id: ID!) { user(id: $id) { suggestions { kind agent { id } } } }",
            id=str(twin.user_id),
        )
    ).ok()
    # A re-imaged laptop that took a second license: the wasted seat shows.
    assert data["user"]["suggestions"] == [{"kind": "MERGE", "agent": {"id": str(first.agent_id)}}]


async def test_suggestions_cost_a_fixed_number_of_statements(gql: Gql, db: Database) -> None:
    t = await make_tenant(db, licenses=30)
    for i in range(30):
        await person(db, t.account_id, f"LAPTOP-{i}", f"user{i}x", f"Person{i} Example")
    for i in range(30):
        await local(
            db,
            t.account_id,
            f"LAPTOP-{i}",
            f"user{i}x",
            f"Person{i} Example",
            now=START + timedelta(seconds=i),
        )

    counts = {}
    for first in (3, 30):
        with counting(db) as statements:
            edges = (await gql(t.admin_token, QUEUE, first=first)).ok()["pendingUsers"]["edges"]
        assert all(e["node"]["suggestions"] for e in edges)
        counts[first] = len(statements)
    assert counts[30] == counts[3], counts
