"""What the undo tests share: a scene of licensed and pending users with activity, a dump of
everything an action and its undo touch, and drivers over the domain functions."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from server.domain import actions
from server.domain.activity import ingestion
from server.domain.activity.batch import Batch, Event
from server.domain.admission import AgentReport
from server.domain.changes import ActionResult, Actor
from server.domain.models import (
    ActivityChunk,
    ActivityRollup,
    Agent,
    AgentAlias,
    AuditEntry,
    DoNotTrack,
    QueueAction,
    User,
)
from server.domain.undo import apply
from server.infra.db import Database
from tests.server.domain import admin
from tests.support import START, Tenant, make_tenant

T1, T2, T3 = (START + timedelta(hours=h) for h in (1, 2, 3))
WINDOW = timedelta(hours=24)
_batches = itertools.count()


@dataclass(frozen=True)
class Scene:
    """Licensed L0, L1 (agents LIC-0, LIC-1) and pending P0, P1 (PEND-0, PEND-1), each with activity."""

    tenant: Tenant
    licensed: list[int]
    pending: list[int]
    agents: dict[int, int]  # user id -> its agent's id

    @property
    def account_id(self) -> int:
        return self.tenant.account_id

    @property
    def actor(self) -> Actor:
        return admin(self.account_id, self.tenant.admin_id)


async def send(
    db: Database, account_id: int, device: str, seconds: int, at: datetime
) -> ingestion.IngestResult:
    """One report of ``device``'s agent (logon: the device in lower case) with one event at ``at``."""
    report = AgentReport(device, "ACME", device.lower(), device.lower())
    async with db.write() as s:
        return await ingestion.ingest(
            s,
            account_id,
            Batch(f"b-{next(_batches)}", report, [Event(at, seconds, "excel.exe", None, None, "productive")]),
            at,
        )


async def scene(db: Database, **tenant: Any) -> Scene:
    made = await make_tenant(db, licenses=2, **tenant)
    licensed = [(await send(db, made.account_id, f"LIC-{i}", 60 + i, START)).user_id or 0 for i in range(2)]
    pending = [(await send(db, made.account_id, f"PEND-{i}", 120 + i, START)).user_id or 0 for i in range(2)]
    async with db.read() as s:
        found = (await s.execute(sa.select(Agent.user_id, Agent.id))).all()  # type: ignore[call-overload]
    return Scene(made, licensed, pending, {u: a for u, a in found})


def _sorted(rows: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return sorted(rows, key=repr)  # rows hold None beside numbers


async def dump(db: Database, account_id: int) -> dict[str, Any]:
    """The account's users, agents, aliases, do-not-track keys and per-agent activity sums."""
    u, ag, al, dnt, ev, ch = (
        sa.inspect(m).local_table.c
        for m in (User, Agent, AgentAlias, DoNotTrack, ActivityRollup, ActivityChunk)
    )
    async with db.read() as s:

        async def rows(*columns: Any, where: Any) -> list[tuple[Any, ...]]:
            return _sorted(tuple(r) for r in (await s.execute(sa.select(*columns).where(where))).all())

        return {
            "users": await rows(
                u.id, u.display_name, u.status, u.pending_reason, u.pending_since, u.licensed_at,
                u.licensed_until, u.first_seen_at, u.last_seen_at, where=u.account_id == account_id,
            ),
            "agents": await rows(
                ag.id, ag.user_id, ag.key, ag.device_name, ag.domain, ag.logon_name, ag.login_key,
                ag.first_seen_at, ag.last_seen_at, where=ag.account_id == account_id,
            ),
            "aliases": await rows(al.key, al.agent_id, al.origin_agent_id, where=al.account_id == account_id),
            "dnt": await rows(dnt.key, where=dnt.account_id == account_id),
            "activity": _sorted(
                tuple(r)
                for r in (
                    await s.execute(
                        sa.select(ev.agent_id, ev.user_id, ev.origin_agent_id, sa.func.sum(ev.event_count), sa.func.sum(ev.active_seconds))
                        .join(ag.id.table, ag.id == ev.agent_id)
                        .where(ag.account_id == account_id)
                        .group_by(ev.agent_id, ev.user_id, ev.origin_agent_id)
                    )
                ).all()
            ),
            "chunks": _sorted(
                tuple(r)
                for r in (
                    await s.execute(
                        sa.select(ch.agent_id, ch.user_id, ch.origin_agent_id, sa.func.sum(ch.event_count))
                        .join(ag.id.table, ag.id == ch.agent_id)
                        .where(ag.account_id == account_id)
                        .group_by(ch.agent_id, ch.user_id, ch.origin_agent_id)
                    )
                ).all()
            ),
        }  # fmt: skip


def arrived(
    before: dict[str, Any], agent_id: int, user_id: int, seconds: int, at: datetime
) -> dict[str, Any]:
    """``before`` as it would be had one event of ``seconds`` arrived for the agent at ``at``."""
    after = copy.deepcopy(before)
    # Reported under the agent's own key: its origin is the agent itself.
    after["activity"] = _sorted(
        (a, u, o, n + 1, total + seconds)
        if (a, u, o) == (agent_id, user_id, agent_id)
        else (a, u, o, n, total)
        for a, u, o, n, total in after["activity"]
    )
    after["chunks"] = _sorted(
        (a, u, o, n + 1) if (a, u, o) == (agent_id, user_id, agent_id) else (a, u, o, n)
        for a, u, o, n in after["chunks"]
    )
    after["agents"] = _sorted((*r[:-1], at) if r[0] == agent_id else r for r in after["agents"])
    after["users"] = _sorted((*r[:-1], at) if r[0] == user_id else r for r in after["users"])
    return after


async def undo(
    db: Database, scene: Scene, entry_ids: Sequence[int], now: datetime = T3, window: timedelta = WINDOW
) -> ActionResult:
    async with db.write() as s:
        return await apply.undo_actions(s, scene.actor, entry_ids, now, window)


async def entries(db: Database, account_id: int, action: QueueAction | None = None) -> list[AuditEntry]:
    async with db.read() as s:
        query = sa.select(AuditEntry).where(AuditEntry.account_id == account_id).order_by(AuditEntry.id)  # type: ignore[arg-type]
        found = list((await s.execute(query)).scalars())
    return [e for e in found if action is None or e.action is action]


async def last(db: Database, account_id: int, action: QueueAction) -> int:
    return (await entries(db, account_id, action))[-1].id or 0


async def act(db: Database, action: Any, *args: Any) -> ActionResult:
    """An admin action at T1 (``action(session, *args, T1)``)."""
    async with db.write() as s:
        result: ActionResult = await action(s, *args, T1)
        return result


async def set_limit(db: Database, scene: Scene, limit: int, **settings: Any) -> None:
    async with db.write() as s:
        await actions.update_settings(s, scene.actor, START, license_limit=limit, **settings)
