"""pendingQueueChanged over real websockets (docs/behaviour.md, Live events; docs/api.md, websockets).

Every subscriber is a real gql client on graphql-transport-ws against a real uvicorn; each
test waits for the broker to register a subscription before acting, never for a time.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from server.domain import actions, admission, changes
from server.domain.admission import AgentReport
from server.domain.models import Role
from server.graphql.http import MAX_OPERATIONS_PER_CONNECTION
from server.graphql.subscriptions import CLOSE_FELL_BEHIND
from server.infra.db import Database
from tests.graphql.test_n_plus_one import counting
from tests.live.helpers import (
    EVENT,
    LiveServer,
    Subscriber,
    closed_with,
    init,
    raw_socket,
    tiny_receive_buffer,
)
from tests.support import FakeClock, make_tenant

APPROVE = "mutation($ids: [ID!]!) { approvePendingUsers(input: {userIds: $ids}) { errors { code } } }"
ASSIGN = """mutation($p: ID!, $t: ID!) {
  assignPendingUser(input: {pendingUserId: $p, targetUserId: $t}) { errors { code } } }"""
MERGE = """mutation($p: ID!, $t: ID!) {
  mergePendingUser(input: {pendingUserId: $p, targetAgentId: $t}) { errors { code } } }"""
REMOVE = "mutation($ids: [ID!]!) { removeUsers(input: {userIds: $ids}) { errors { code } } }"
LIMIT = "mutation($n: Int!) { updateAccountSettings(input: {licenseLimit: $n}) { errors { code } } }"


def at(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["at"])


def usage(event: dict[str, Any]) -> tuple[int, int, int, int]:
    a = event["account"]
    return a["licenseLimit"], a["licensesUsed"], a["licensesAvailable"], a["pendingCount"]


async def test_every_action_publishes_one_event_with_the_state_after_it(
    server: LiveServer, db: Database, clock: FakeClock
) -> None:
    tenant = await make_tenant(db, licenses=1)
    admin = {"id": str(tenant.admin_id), "name": "Acme Admin", "role": "ADMIN"}
    async with Subscriber(server, tenant.admin_token, tenant.account_id) as sub:
        # Given one licensed user (no queue change, no event) and four arrivals over the limit.
        ann = await server.ingest(tenant.ingest_key, "PC-ANN", "ann")
        ids = []
        for name in ("bob", "cy", "dee", "eve"):
            clock.advance(minutes=1)
            ids.append((await server.ingest(tenant.ingest_key, f"PC-{name.upper()}", name))["userId"])
            entered = await sub.next()
            assert (entered["action"], entered["userId"], entered["actor"], at(entered)) == (
                "ENTERED",
                str(ids[-1]),
                None,
                clock.now,
            )
            assert entered["user"]["status"] == "PENDING"
            assert entered["user"]["pending"]["reason"] == "OVER_LIMIT"
            assert entered["user"]["pending"]["retainedEventCount"] == 1
            assert entered["user"]["agents"][0]["logonName"] == name
            assert entered["user"]["agents"][0]["user"] == {"id": str(ids[-1]), "status": "PENDING"}
            assert entered["account"]["id"] == str(tenant.account_id)
        assert usage(entered) == (1, 1, 0, 4)
        bob, cy, dee, eve = ids

        # Raising the limit approves nobody, so publishes nothing: the next event is the approval.
        await server.gql(tenant.admin_token, LIMIT, n=2)
        clock.advance(minutes=1)
        await server.gql(tenant.admin_token, APPROVE, ids=[str(bob)])
        approved = await sub.next()
        assert (approved["action"], approved["userId"], approved["actor"], at(approved)) == (
            "APPROVED",
            str(bob),
            admin,
            clock.now,
        )
        assert approved["user"]["status"] == "LICENSED" and approved["user"]["pending"] is None
        assert datetime.fromisoformat(approved["user"]["licensedAt"]) == clock.now
        assert usage(approved) == (2, 2, 0, 3)

        await server.gql(tenant.admin_token, ASSIGN, p=str(cy), t=str(ann["userId"]))
        assigned = await sub.next()
        assert (assigned["action"], assigned["userId"], assigned["user"], assigned["actor"]) == (
            "ASSIGNED",
            str(cy),
            None,
            admin,
        )
        assert usage(assigned) == (2, 2, 0, 2)
        # The target, after the change: ann, now with cy's agent.
        assert assigned["target"]["id"] == str(ann["userId"]) and assigned["target"]["status"] == "LICENSED"
        assert sorted(a["logonName"] for a in assigned["target"]["agents"]) == ["ann", "cy"]
        assert approved["target"] is None and entered["target"] is None

        await server.gql(tenant.admin_token, MERGE, p=str(dee), t=str(ann["agentId"]))
        merged = await sub.next()
        assert (merged["action"], merged["userId"], merged["user"]) == ("MERGED", str(dee), None)
        assert usage(merged) == (2, 2, 0, 1)
        assert merged["target"]["id"] == str(ann["userId"])

        await server.gql(tenant.admin_token, REMOVE, ids=[str(eve), str(bob)])
        removed = await sub.take(2)
        assert [(e["action"], e["userId"], e["user"]) for e in removed] == [
            ("REMOVED", str(eve), None),
            ("REMOVED", str(bob), None),
        ]
        # Both events carry the usage after the whole action: the licensed bob freed his license.
        assert {usage(e) for e in removed} == {(2, 1, 1, 0)}

        # Lowering the limit below the licensed count queues ann: ENTERED, by the system.
        await server.gql(tenant.admin_token, LIMIT, n=0)
        moved = await sub.next()
        assert (moved["action"], moved["userId"], moved["actor"]) == ("ENTERED", str(ann["userId"]), None)
        assert moved["user"]["status"] == "PENDING" and moved["user"]["pending"]["reason"] == "OVER_LIMIT"
        assert usage(moved) == (0, 0, 0, 1)
        assert sub.events.empty()


async def test_assigning_into_a_pending_user_shows_what_its_row_gained(
    server: LiveServer, db: Database, clock: FakeClock
) -> None:
    """A queued target's row changes too: the event carries the target after the change."""
    tenant = await make_tenant(db, licenses=0)
    async with Subscriber(server, tenant.admin_token, tenant.account_id) as sub:
        first = await server.ingest(tenant.ingest_key, "PC-1", "jdoe")
        await sub.next()
        second = await server.ingest(tenant.ingest_key, "PC-2", "john.doe")
        await sub.next()
        third = await server.ingest(tenant.ingest_key, "PC-3", "j.doe")
        await sub.next()

        await server.gql(tenant.admin_token, ASSIGN, p=str(second["userId"]), t=str(first["userId"]))
        assigned = await sub.next()
        assert assigned["target"]["id"] == str(first["userId"]) and assigned["target"]["status"] == "PENDING"
        assert assigned["target"]["pending"]["retainedEventCount"] == 2
        assert sorted(a["logonName"] for a in assigned["target"]["agents"]) == ["jdoe", "john.doe"]

        await server.gql(tenant.admin_token, MERGE, p=str(third["userId"]), t=str(first["agentId"]))
        merged = await sub.next()
        assert merged["target"]["id"] == str(first["userId"])
        assert merged["target"]["pending"]["retainedEventCount"] == 3


async def test_a_subscriber_hears_only_its_own_account(server: LiveServer, db: Database) -> None:
    acme = await make_tenant(db, name="Acme", licenses=0)
    globex = await make_tenant(db, name="Globex", licenses=0)
    async with (
        Subscriber(server, acme.admin_token, acme.account_id) as on_acme,
        Subscriber(server, globex.viewer_token, globex.account_id) as on_globex,
    ):
        # Globex's arrival commits first; Acme's subscriber's first event is still its own.
        theirs = await server.ingest(globex.ingest_key, "PC-1", "gina")
        ours = await server.ingest(acme.ingest_key, "PC-1", "ann")
        assert (await on_acme.next())["userId"] == str(ours["userId"])
        got = await on_globex.next()
        assert (got["userId"], got["account"]["id"]) == (str(theirs["userId"]), str(globex.account_id))
        assert on_acme.events.empty() and on_globex.events.empty()


async def test_subscribers_with_different_documents_each_get_their_own_shape(
    server: LiveServer, db: Database
) -> None:
    tenant = await make_tenant(db, licenses=0)
    small = "subscription { pendingQueueChanged { action userId } }"
    async with (
        Subscriber(server, tenant.admin_token, tenant.account_id) as full,
        Subscriber(server, tenant.admin_token, tenant.account_id, small) as brief,
        Subscriber(server, tenant.admin_token, tenant.account_id, small) as brief_too,
    ):
        arrived = await server.ingest(tenant.ingest_key, "PC-1", "ann")
        assert await brief.next() == {"action": "ENTERED", "userId": str(arrived["userId"])}
        assert await brief_too.next() == {"action": "ENTERED", "userId": str(arrived["userId"])}
        assert (await full.next())["user"]["agents"][0]["deviceName"] == "PC-1"
    # Both documents' shared renderings end with their last subscriber.
    await asyncio.wait_for(server.broker.wait_for_subscribers(tenant.account_id, 0, exactly=True), 10)
    assert server.graphql.live_hub.rendering_count() == 0


async def test_a_closed_websocket_leaves_no_subscriber_behind(server: LiveServer, db: Database) -> None:
    tenant = await make_tenant(db, licenses=0)
    async with Subscriber(server, tenant.admin_token, tenant.account_id):
        assert server.broker.subscriber_count(tenant.account_id) == 1
    await asyncio.wait_for(server.broker.wait_for_subscribers(tenant.account_id, 0, exactly=True), 10)

    # A client that drops the TCP connection without a close frame is cleaned up too.
    ws = await raw_socket(server)
    await init(ws, tenant.admin_token)
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": EVENT}}))
    await asyncio.wait_for(server.broker.wait_for_subscribers(tenant.account_id, 1), 10)
    ws.transport.abort()
    await asyncio.wait_for(server.broker.wait_for_subscribers(tenant.account_id, 0, exactly=True), 10)
    assert server.graphql.live_hub.rendering_count() == 0


@pytest.mark.parametrize(
    "payload",
    [{"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic abc"}, {}],
    ids=["bad-token", "wrong-scheme", "none"],
)
async def test_connection_init_without_a_valid_token_closes_with_4403(
    server: LiveServer, db: Database, payload: dict[str, str]
) -> None:
    await make_tenant(db)
    ws = await raw_socket(server)
    await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
    assert await closed_with(ws) == 4403


async def test_no_connection_init_within_5_seconds_closes_with_4408(server: LiveServer) -> None:
    ws = await raw_socket(server)
    loop = asyncio.get_running_loop()
    opened = loop.time()
    assert await closed_with(ws) == 4408
    assert 4.5 <= loop.time() - opened < 9


async def test_the_legacy_graphql_ws_protocol_is_refused(server: LiveServer) -> None:
    ws = await raw_socket(server, subprotocols=["graphql-ws"])
    assert ws.subprotocol is None
    assert await closed_with(ws) == 4406


async def test_operations_per_connection_are_capped(server: LiveServer, db: Database) -> None:
    tenant = await make_tenant(db)
    ws = await raw_socket(server)
    await init(ws, tenant.admin_token)
    for n in range(MAX_OPERATIONS_PER_CONNECTION):
        await ws.send(json.dumps({"id": str(n), "type": "subscribe", "payload": {"query": EVENT}}))
    await asyncio.wait_for(
        server.broker.wait_for_subscribers(tenant.account_id, MAX_OPERATIONS_PER_CONNECTION), 10
    )
    await ws.send(json.dumps({"id": "one-more", "type": "subscribe", "payload": {"query": EVENT}}))
    refused = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert (refused["id"], refused["type"]) == ("one-more", "error")
    assert refused["payload"][0]["message"] == "Subscription limit reached"
    # The connection and its subscriptions carry on; completing one frees a slot.
    await ws.send(json.dumps({"id": "0", "type": "complete"}))
    await asyncio.wait_for(
        server.broker.wait_for_subscribers(
            tenant.account_id, MAX_OPERATIONS_PER_CONNECTION - 1, exactly=True
        ),
        10,
    )
    await ws.send(json.dumps({"id": "again", "type": "subscribe", "payload": {"query": EVENT}}))
    await asyncio.wait_for(
        server.broker.wait_for_subscribers(tenant.account_id, MAX_OPERATIONS_PER_CONNECTION), 10
    )
    await ws.close()


async def test_an_invalid_subscription_document_is_an_error_for_that_operation(
    server: LiveServer, db: Database
) -> None:
    tenant = await make_tenant(db)
    ws = await raw_socket(server)
    await init(ws, tenant.admin_token)
    bad = "subscription { pendingQueueChanged { nope } }"
    await ws.send(json.dumps({"id": "bad", "type": "subscribe", "payload": {"query": bad}}))
    refused = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert (refused["id"], refused["type"]) == ("bad", "error")
    assert "nope" in refused["payload"][0]["message"]
    assert server.broker.subscriber_count(tenant.account_id) == 0
    await ws.close()


# Aliases multiply the payload, so a client that stops reading fills the socket buffers
# after a few events rather than thousands.
HEAVY = (
    "subscription { pendingQueueChanged { "
    + " ".join(
        f"a{i}: user {{ id displayName status agents {{ id deviceName domain logonName firstSeenAt lastSeenAt }} }}"
        for i in range(14)
    )
    + " } }"
)


async def test_a_stuck_subscriber_neither_delays_a_fast_one_nor_the_writer_and_is_closed_with_4410(
    server: LiveServer, db: Database, clock: FakeClock
) -> None:
    tenant = await make_tenant(db, licenses=1)
    actor = changes.Actor(account_id=tenant.account_id, admin_id=tenant.admin_id, role=Role.ADMIN)
    # One domain account signed in on 150 machines: one user, one license, 150 agents, so
    # every event about it is large.
    async with db.write() as s:
        reports = [AgentReport(f"PC-{i}", "ACME", "jdoe", "Jane Doe") for i in range(150)]
        (jane, *_) = await admission.admit_many(s, tenant.account_id, reports, clock())
    assert jane.user_id is not None
    server.graphql.live.queue_size = 4
    # The stuck client: subscribed, never reading, with a small receive window.
    stuck = await raw_socket(server, sock=tiny_receive_buffer(server.port), max_queue=1)
    await init(stuck, tenant.admin_token)
    await stuck.send(json.dumps({"id": "s", "type": "subscribe", "payload": {"query": HEAVY}}))
    await asyncio.wait_for(server.broker.wait_for_subscribers(tenant.account_id, 1), 10)
    async with Subscriber(server, tenant.admin_token, tenant.account_id) as fast:
        n = 0
        while server.broker.subscriber_count(tenant.account_id) == 2:
            n += 1
            assert n <= 500, "the stuck subscriber was never dropped"
            # Jane leaves the licensed set and comes back: two events about her, each a
            # commit that never waits for any subscriber (delivery is put_nowait).
            async with db.write() as s:
                await actions.update_settings(s, actor, clock(), license_limit=0)
            async with db.write() as s:
                await actions.update_settings(s, actor, clock(), license_limit=1)
                await actions.approve(s, actor, [jane.user_id], clock())
            # Each pair reaches the fast subscriber while the stuck one is still subscribed
            # and not reading: nothing waits for the stuck one (no timing involved).
            got = [(e["action"], e["userId"]) for e in await fast.take(2)]
            assert got == [("ENTERED", str(jane.user_id)), ("APPROVED", str(jane.user_id))]
        assert n >= 1, "the stuck subscriber was dropped before it could hold anything up"
        # Once it reads again it finds the events it had, then the close telling it to resync.
        assert await closed_with(stuck) == CLOSE_FELL_BEHIND
        assert server.broker.subscriber_count(tenant.account_id) == 1
        async with db.write() as s:
            await actions.update_settings(s, actor, clock(), license_limit=0)
        assert (await fast.next())["action"] == "ENTERED"


async def test_a_live_events_user_resolves_its_activity_and_last_activity(
    server: LiveServer, db: Database, clock: FakeClock
) -> None:
    tenant = await make_tenant(db, licenses=0)
    query = """subscription { pendingQueueChanged { action
      user { id lastActivityAt activity(days: 7) { activeSeconds daily { date activeSeconds } } } } }"""
    async with Subscriber(server, tenant.admin_token, tenant.account_id, query) as sub:
        start = clock.now - timedelta(minutes=5)
        first = await server.ingest(tenant.ingest_key, "PC-ANN", "ann", start=start, duration=90, events=2)
        entered = await sub.next()
        assert entered["user"]["id"] == str(first["userId"])
        assert entered["user"]["activity"]["activeSeconds"] == 180
        assert entered["user"]["activity"]["daily"][-1] == {
            "date": start.date().isoformat(),
            "activeSeconds": 180,
        }
        assert datetime.fromisoformat(entered["user"]["lastActivityAt"]) == start + timedelta(seconds=91)

        # The next event is rendered at its own "now": a day later, today is the next row.
        clock.advance(days=1)
        await server.ingest(
            tenant.ingest_key, "PC-BOB", "bob", start=clock.now - timedelta(hours=1), duration=10
        )
        bob = await sub.next()
        assert bob["user"]["activity"]["activeSeconds"] == 10
        assert [d["activeSeconds"] for d in bob["user"]["activity"]["daily"][-2:]] == [0, 10]
        assert datetime.fromisoformat(bob["user"]["lastActivityAt"]) == clock.now - timedelta(seconds=3590)


async def test_an_arrivals_event_names_the_earlier_duplicates_whose_match_it_became(
    server: LiveServer, db: Database, clock: FakeClock
) -> None:
    tenant = await make_tenant(db, licenses=0)
    query = """subscription { pendingQueueChanged { action userId
      user { id suggestions(first: 5) { score user { id } agent { user { id } } } } } }"""
    read = "query($id: ID!) { user(id: $id) { suggestions(first: 1) { agent { user { id } } } } }"
    async with Subscriber(server, tenant.admin_token, tenant.account_id, query) as sub:
        first = await server.ingest(
            tenant.ingest_key, "LAPTOP-9980", "ss", domain="LAPTOP-9980", display="Shafi S"
        )
        assert (await sub.next())["user"]["suggestions"] == []
        clock.advance(days=1)
        second = await server.ingest(
            tenant.ingest_key, "LAPTOP-9980B", "ss", domain="LAPTOP-9980B", display="Shafi S"
        )

        entered = await sub.next()

        # The arrival's own matches name the earlier row whose match it became ...
        assert entered["action"] == "ENTERED" and entered["userId"] == str(second["userId"])
        (match,) = entered["user"]["suggestions"]
        assert match["agent"]["user"]["id"] == str(first["userId"])
        # ... and that row, re-read once the event is in, shows it (committed together).
        again = await server.gql(tenant.viewer_token, read, id=str(first["userId"]))
        assert again["user"]["suggestions"] == [{"agent": {"user": {"id": str(second["userId"])}}}]

        await server.gql(tenant.admin_token, REMOVE, ids=[str(second["userId"])])
        assert (await sub.next())["action"] == "REMOVED"
        assert (await server.gql(tenant.viewer_token, read, id=str(first["userId"])))["user"][
            "suggestions"
        ] == []


async def test_a_document_that_shows_no_user_reads_no_users(server: LiveServer, db: Database) -> None:
    """Users, their agents and activity are read for an event only when a subscriber's
    document shows ``user`` or ``target`` (a fragment's count)."""
    tenant = await make_tenant(db, licenses=0)
    brief = "subscription { pendingQueueChanged { action userId account { pendingCount } } }"
    fragment = """subscription { pendingQueueChanged { action ...Who } }
        fragment Who on PendingQueueEvent { user { displayName agents { deviceName } } }"""
    async with Subscriber(server, tenant.admin_token, tenant.account_id, brief) as subscriber:
        with counting(db) as statements:
            arrived = await server.ingest(tenant.ingest_key, "PC-1", "ann")
            assert await subscriber.next() == {
                "action": "ENTERED",
                "userId": str(arrived["userId"]),
                "account": {"pendingCount": 1},
            }
    read = [s for s in statements if "FROM user" in s or "FROM agent" in s or "activity" in s]
    assert read == []
    async with Subscriber(server, tenant.admin_token, tenant.account_id, fragment) as subscriber:
        await server.ingest(tenant.ingest_key, "PC-2", "bob")
        assert await subscriber.next() == {
            "action": "ENTERED",
            "user": {"displayName": "bob", "agents": [{"deviceName": "PC-2"}]},
        }
