"""Small drivers over the domain functions, so tests read as given/when/then."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from server.domain import admission
from server.domain.activity.chunks import CHUNK, ROLLUP, StoredEvent, decode
from server.domain.admission import AgentReport
from server.domain.changes import Actor
from server.domain.models import (
    Agent,
    AgentAlias,
    AuditEntry,
    DoNotTrack,
    Role,
    User,
    UserStatus,
)
from server.infra.db import Database
from tests.support import START


async def arrive(
    db: Database,
    account_id: int,
    device: str,
    logon: str,
    *,
    domain: str = "ACME",
    name: str | None = None,
    now: datetime = START,
) -> admission.Admission:
    async with db.write() as s:
        return await admission.admit(s, account_id, AgentReport(device, domain, logon, name or logon), now)


def admin(account_id: int, admin_id: int = 1) -> Actor:
    return Actor(account_id=account_id, admin_id=admin_id, role=Role.ADMIN)


async def users(db: Database, account_id: int) -> dict[int, User]:
    async with db.read() as s:
        rows = (await s.execute(sa.select(User).where(User.account_id == account_id))).scalars()
        return {u.id: u for u in rows}  # type: ignore[misc]


async def statuses(db: Database, account_id: int) -> dict[int, UserStatus]:
    return {i: u.status for i, u in (await users(db, account_id)).items()}


async def count(db: Database, model: Any, *where: Any) -> int:
    async with db.read() as s:
        return int(
            (await s.execute(sa.select(sa.func.count()).select_from(model).where(*where))).scalar_one()
        )


async def events(db: Database, **match: int) -> list[StoredEvent]:
    """The stored events (decoded from their chunks) whose columns have these values
    (``user_id``, ``agent_id``, ``origin_agent_id``); checks the rollups agree on their number."""
    async with db.read() as s:
        rows = await s.execute(
            sa.select(CHUNK.c.user_id, CHUNK.c.agent_id, CHUNK.c.origin_agent_id, CHUNK.c.events).where(
                *(CHUNK.c[k] == v for k, v in match.items())
            )
        )
        found = [StoredEvent(u, a, o, e) for u, a, o, blob in rows for e in decode(blob)]
        rolled = (
            await s.execute(
                sa.select(sa.func.coalesce(sa.func.sum(ROLLUP.c.event_count), 0)).where(
                    *(ROLLUP.c[k] == v for k, v in match.items())
                )
            )
        ).scalar_one()
    assert int(rolled) == len(found), "the rollups disagree with the stored events"
    return found


async def audit(db: Database, account_id: int) -> list[AuditEntry]:
    async with db.read() as s:
        return list(
            (
                await s.execute(
                    sa.select(AuditEntry).where(AuditEntry.account_id == account_id).order_by(AuditEntry.id)
                )
            ).scalars()
        )


async def agents_of(db: Database, user_id: int) -> list[Agent]:
    async with db.read() as s:
        return list(
            (await s.execute(sa.select(Agent).where(Agent.user_id == user_id).order_by(Agent.id))).scalars()
        )


async def snapshot(db: Database, account_id: int) -> dict[str, Any]:
    """Everything an action could change, to assert a refused action changed nothing."""
    async with db.read() as s:
        out: dict[str, Any] = {}
        for name, model, where in [
            ("users", User, User.account_id == account_id),
            ("agents", Agent, Agent.account_id == account_id),
            ("aliases", AgentAlias, AgentAlias.account_id == account_id),
            ("dnt", DoNotTrack, DoNotTrack.account_id == account_id),
            ("audit", AuditEntry, AuditEntry.account_id == account_id),
        ]:
            out[name] = sorted(
                tuple(sorted(r._mapping.items()))
                for r in (await s.execute(sa.select(*model.__table__.c).where(where)))
            )
        out["events"] = (
            await s.execute(
                sa.select(
                    sa.func.sum(ROLLUP.c.event_count), sa.func.sum(ROLLUP.c.user_id * ROLLUP.c.event_count)
                )
            )
        ).one()
        return out
