"""Who may do what, over HTTP: every mutation x (no token, bad token, VIEWER, another account's
ADMIN, ADMIN). Where refused, nothing changed."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from server.domain import actions
from server.domain.models import Account, Admin
from server.infra.db import Database
from tests.graphql.test_mutations import APPROVE, ASSIGN, MERGE, NOTIFY, REMOVE, SETTINGS
from tests.graphql.test_queries import queue
from tests.graphql.test_undo import UNDO
from tests.server.domain import admin, agents_of, audit, snapshot
from tests.support import START, Tenant, make_tenant


async def state(db: Database, tenant: Tenant) -> dict[str, Any]:
    out = await snapshot(db, tenant.account_id)
    async with db.read() as s:
        out["account"] = (
            await s.execute(sa.select(*Account.__table__.c).where(Account.id == tenant.account_id))
        ).one()
        out["admins"] = (await s.execute(sa.select(*Admin.__table__.c).order_by(Admin.id))).all()
    return out


async def post(
    http: httpx.AsyncClient, token: str | None, query: str, variables: dict[str, Any]
) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return await http.post("/graphql", json={"query": query, "variables": variables}, headers=headers)


MUTATIONS = [
    "approvePendingUsers",
    "assignPendingUser",
    "mergePendingUser",
    "removeUsers",
    "updateAccountSettings",
    "undoActions",
]


async def variables_for(db: Database, name: str, queued: list[int]) -> tuple[str, dict[str, Any]]:
    agent = (await agents_of(db, 1))[0]
    if name == "undoActions":
        # Something to undo: the admin removed the first queued user.
        async with db.write() as s:
            await actions.remove(s, admin(1), [queued[1]], False, START)
        removal = (await audit(db, 1))[-1]
        return UNDO, {"ids": [str(removal.id)]}
    return {
        "approvePendingUsers": (APPROVE, {"ids": [str(queued[0])]}),
        "assignPendingUser": (ASSIGN, {"p": str(queued[0]), "t": "1"}),
        "mergePendingUser": (MERGE, {"p": str(queued[0]), "t": str(agent.id)}),
        "removeUsers": (REMOVE, {"ids": [str(queued[0])]}),
        "updateAccountSettings": (SETTINGS, {"m": True, "l": 4}),
    }[name]


@pytest.mark.parametrize("name", MUTATIONS)
async def test_permission_matrix(name: str, http: httpx.AsyncClient, db: Database, tenant: Tenant) -> None:
    queued = await queue(db, tenant, pending=2)
    other = await make_tenant(db, name="Other")
    query, variables = await variables_for(db, name, queued)
    if name == "approvePendingUsers":
        await post(http, tenant.admin_token, SETTINGS, {"l": 4})
    before = await state(db, tenant)

    for token in (None, "plm_not-a-token", "Basic abc"):
        response = await post(http, token, query, variables)
        assert response.status_code == 401
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert response.headers["www-authenticate"].startswith("Bearer")

    response = await post(http, tenant.viewer_token, query, variables)
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None and [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]

    response = await post(http, other.admin_token, query, variables)
    payload = response.json()["data"][name]
    if name == "updateAccountSettings":
        # Acts on the caller's own account, never on another one.
        assert payload["account"]["licenseLimit"] == 4 and payload["errors"] == []
    else:
        assert [e["code"] for e in payload["errors"]] == ["NOT_FOUND"]
    assert await state(db, tenant) == before

    response = await post(http, tenant.admin_token, query, variables)
    assert response.status_code == 200 and response.json()["data"][name]["errors"] == []
    assert await state(db, tenant) != before


async def test_notification_settings_touch_only_the_callers_row(
    http: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    before = await state(db, tenant)
    for token in (None, "plm_bad"):
        assert (await post(http, token, NOTIFY, {"n": False})).status_code == 401
    assert await state(db, tenant) == before
    response = await post(http, tenant.viewer_token, NOTIFY, {"n": False})
    assert response.json()["data"]["updateNotificationSettings"]["me"] == {
        "id": str(tenant.viewer_id),
        "notifyOnPending": False,
    }
    async with db.read() as s:
        flags = dict((await s.execute(sa.select(Admin.id, Admin.notify_on_pending))).all())
    assert flags == {tenant.admin_id: True, tenant.viewer_id: False}


async def test_reads_are_scoped_to_the_callers_account(
    http: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    queued = await queue(db, tenant, pending=1)
    other = await make_tenant(db, name="Other")
    query = """query($id: ID!) { user(id: $id) { id } pendingUsers { totalCount } users { totalCount }
               agents { totalCount } auditLog { totalCount } account { id pendingCount } }"""
    data = (await post(http, other.viewer_token, query, {"id": str(queued[0])})).json()["data"]
    assert data == {
        "user": None,
        "pendingUsers": {"totalCount": 0},
        "users": {"totalCount": 0},
        "agents": {"totalCount": 0},
        "auditLog": {"totalCount": 0},
        "account": {"id": str(other.account_id), "pendingCount": 0},
    }


async def test_viewers_read_a_users_activity_and_other_accounts_see_nothing(
    http: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    queued = await queue(db, tenant, pending=1)
    other = await make_tenant(db, name="Other")
    query = """query($id: ID!) { user(id: $id) { id lastActivityAt
               activity(days: 7) { activeSeconds daily { date } topApps { app } } } }"""
    variables = {"id": str(queued[0])}

    assert (await post(http, None, query, variables)).status_code == 401
    for token in (tenant.viewer_token, tenant.admin_token):
        body = (await post(http, token, query, variables)).json()
        assert "errors" not in body, body
        user = body["data"]["user"]
        assert user["id"] == str(queued[0]) and user["lastActivityAt"] is None
        assert user["activity"]["activeSeconds"] == 0 and len(user["activity"]["daily"]) == 7
    assert (await post(http, other.viewer_token, query, variables)).json()["data"] == {"user": None}
