"""An undo is published like any action (docs/behaviour.md, Undo; Live events): one UNDONE event
per undone entry, with the user as the undo left it, over real websockets."""

from __future__ import annotations

from datetime import datetime

from server.infra.db import Database
from tests.live.helpers import LiveServer, Subscriber
from tests.support import FakeClock, make_tenant

ASSIGN = """mutation($p: ID!, $t: ID!) {
  assignPendingUser(input: {pendingUserId: $p, targetUserId: $t}) { errors { code } } }"""
REMOVE = "mutation($ids: [ID!]!) { removeUsers(input: {userIds: $ids}) { errors { code } } }"
UNDO = "mutation($ids: [ID!]!) { undoActions(input: {auditEntryIds: $ids}) { errors { code } } }"
AUDIT = "{ auditLog(first: 1) { edges { node { id action } } } }"


async def last_entry(server: LiveServer, token: str) -> str:
    data = await server.gql(token, AUDIT)
    return str(data["auditLog"]["edges"][0]["node"]["id"])


async def test_an_undo_publishes_the_restored_user(
    server: LiveServer, db: Database, clock: FakeClock
) -> None:
    tenant = await make_tenant(db, licenses=1)
    admin = {"id": str(tenant.admin_id), "name": "Acme Admin", "role": "ADMIN"}
    async with Subscriber(server, tenant.admin_token, tenant.account_id) as sub:
        ann = await server.ingest(tenant.ingest_key, "PC-ANN", "ann")
        bob = await server.ingest(tenant.ingest_key, "PC-BOB", "bob")
        entered = await sub.next()

        await server.gql(tenant.admin_token, ASSIGN, p=str(bob["userId"]), t=str(ann["userId"]))
        await sub.next()
        clock.advance(minutes=5)
        await server.gql(tenant.admin_token, UNDO, ids=[await last_entry(server, tenant.admin_token)])
        undone = await sub.next()
        assert (undone["action"], undone["userId"], undone["actor"], undone["target"]) == (
            "UNDONE",
            str(bob["userId"]),
            admin,
            None,
        )
        assert datetime.fromisoformat(undone["at"]) == clock.now
        assert (
            undone["user"]["status"] == "PENDING" and undone["user"]["pending"] == entered["user"]["pending"]
        )
        assert [a["logonName"] for a in undone["user"]["agents"]] == ["bob"]
        assert (undone["account"]["licensesUsed"], undone["account"]["pendingCount"]) == (1, 1)

        await server.gql(tenant.admin_token, REMOVE, ids=[str(ann["userId"])])
        assert (await sub.next())["user"] is None
        await server.gql(tenant.admin_token, UNDO, ids=[await last_entry(server, tenant.admin_token)])
        back = await sub.next()
        assert (back["action"], back["user"]["id"], back["user"]["status"]) == (
            "UNDONE",
            str(ann["userId"]),
            "LICENSED",
        )
        assert sub.events.empty()
