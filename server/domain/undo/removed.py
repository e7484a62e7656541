"""Removed users' rows, kept out of sight until their undo window ends (docs/behaviour.md, Undo).

A removal moves the users, their agents, the agents' aliases and their activity from the live
tables into shadow tables of the same columns (``removed_user``, ``removed_agent``,
``removed_agent_alias``, ``removed_activity_chunk``, ``removed_activity_rollup``), in its
transaction. Hiding is therefore
structural: no query, report, count, search, suggestion or admission reads a shadow table,
so nothing written later (a new list, a new report) has to remember to filter removed rows
out, and a removed key reporting again is a stranger again, as before undo existed.

:func:`restore` moves a user's rows back (the user and its agents with their ids, which are
never reused; aliases and events with fresh ids, since SQLite may reuse theirs);
:func:`purge` deletes for good what the window no longer covers (the retention job).
The shadow columns are built from the live tables', so the two cannot drift apart unnoticed:
a migration that forgets one fails the copy.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

from server.domain.models import ActivityChunk, ActivityRollup, Agent, AgentAlias, User, UTCDateTime
from server.domain.ports import Transactions

CHUNK_ROWS = 5_000

USER, AGENT, ALIAS, CHUNK, ROLLUP = (
    cast(sa.Table, sa.inspect(m).local_table)
    for m in (User, Agent, AgentAlias, ActivityChunk, ActivityRollup)
)


def _data(table: sa.Table, *, keep_id: bool) -> list[str]:
    """The columns a shadow copies: all but the insert sentinel (and the id, where reusable)."""
    return [c.name for c in table.columns if not c.name.startswith("_") and (keep_id or c.name != "id")]


def _shadow(table: sa.Table, *, keep_id: bool, index: str, extra: Sequence[sa.Column[Any]] = ()) -> sa.Table:
    columns = [
        sa.Column(c.name, c.type, nullable=c.nullable, primary_key=c.name == "id", autoincrement=False)
        for c in table.columns
        if c.name in _data(table, keep_id=keep_id)
    ]
    if not keep_id:
        columns.insert(0, sa.Column("shadow_id", sa.Integer, primary_key=True))
    name = f"removed_{table.name}"
    return sa.Table(name, SQLModel.metadata, *columns, *extra, sa.Index(f"ix_{name}_{index}", index))


# Users and agents keep their ids (never reused: an id the API handed out must stay theirs).
REMOVED_USER = _shadow(
    USER, keep_id=True, index="removed_at", extra=[sa.Column("removed_at", UTCDateTime(), nullable=False)]
)
REMOVED_AGENT = _shadow(AGENT, keep_id=True, index="user_id")
REMOVED_ALIAS = _shadow(ALIAS, keep_id=False, index="agent_id")
REMOVED_CHUNK = _shadow(CHUNK, keep_id=False, index="user_id")
REMOVED_ROLLUP = _shadow(ROLLUP, keep_id=False, index="user_id")

_COPIES = (
    (CHUNK, REMOVED_CHUNK, "user_id", False),
    (ROLLUP, REMOVED_ROLLUP, "user_id", False),
    (ALIAS, REMOVED_ALIAS, "agent_id", False),
    (AGENT, REMOVED_AGENT, "user_id", True),
    (USER, REMOVED_USER, "id", True),
)


def _owned(table: sa.Table, column: str, user_ids: Sequence[int], agents: sa.Table) -> Any:
    """``table``'s rows that belong to these users (aliases through their agents)."""
    if column == "agent_id":
        return table.c.agent_id.in_(sa.select(agents.c.id).where(agents.c.user_id.in_(user_ids)))
    return table.c[column].in_(user_ids)


async def keep(session: AsyncSession, user_ids: Sequence[int], now: datetime) -> None:
    """Copy the users' rows into the shadow tables (the caller then deletes the live ones)."""
    for live, shadow, column, keep_id in _COPIES:
        names = _data(live, keep_id=keep_id)
        picked: list[Any] = [live.c[n] for n in names]
        if shadow is REMOVED_USER:
            names, picked = [*names, "removed_at"], [*picked, sa.literal(now, UTCDateTime())]
        where = _owned(live, column, user_ids, AGENT)
        await session.execute(sa.insert(shadow).from_select(names, sa.select(*picked).where(where)))


async def restore(session: AsyncSession, user_id: int) -> list[int]:
    """Move one removed user's rows back to the live tables; returns its agents' ids."""
    ids = [user_id]
    for live, shadow, column, keep_id in reversed(_COPIES):
        names = _data(live, keep_id=keep_id)
        where = _owned(shadow, column, ids, REMOVED_AGENT)
        await session.execute(
            sa.insert(live).from_select(names, sa.select(*(shadow.c[n] for n in names)).where(where))
        )
    agent_ids = list(
        (
            await session.execute(sa.select(REMOVED_AGENT.c.id).where(REMOVED_AGENT.c.user_id == user_id))
        ).scalars()
    )
    for _, shadow, column, _ in _COPIES:
        await session.execute(sa.delete(shadow).where(_owned(shadow, column, ids, REMOVED_AGENT)))
    return agent_ids


async def kept(session: AsyncSession, user_ids: Sequence[int]) -> set[int]:
    """Which of these users' rows are still kept (not yet deleted for good)."""
    found = await session.execute(sa.select(REMOVED_USER.c.id).where(REMOVED_USER.c.id.in_(list(user_ids))))
    return set(found.scalars())


async def keys_taken(session: AsyncSession, account_id: int, user_ids: Sequence[int]) -> dict[int, list[str]]:
    """Per removed user, the keys of its agents and aliases that a live agent or alias holds now
    (the agent reported again since its removal, and became a new user)."""
    ids = list(user_ids)
    kept_keys = sa.union_all(
        sa.select(REMOVED_AGENT.c.user_id, REMOVED_AGENT.c.key).where(REMOVED_AGENT.c.user_id.in_(ids)),
        sa.select(REMOVED_AGENT.c.user_id, REMOVED_ALIAS.c.key)
        .join(REMOVED_AGENT, REMOVED_AGENT.c.id == REMOVED_ALIAS.c.agent_id)
        .where(REMOVED_AGENT.c.user_id.in_(ids)),
    ).subquery()
    live_keys = sa.union_all(
        sa.select(AGENT.c.key).where(AGENT.c.account_id == account_id),
        sa.select(ALIAS.c.key).where(ALIAS.c.account_id == account_id),
    ).subquery()
    rows = await session.execute(
        sa.select(kept_keys.c.user_id, kept_keys.c.key).where(kept_keys.c.key.in_(sa.select(live_keys.c.key)))
    )
    taken: dict[int, list[str]] = defaultdict(list)
    for uid, key in rows:
        taken[int(uid)].append(str(key))
    return taken


async def _delete(session: AsyncSession, statement: sa.Delete) -> int:
    return int(cast(CursorResult[Any], await session.execute(statement)).rowcount)


async def purge(db: Transactions, before: datetime) -> int:
    """Delete for good the rows of users removed before ``before``; returns how many users.

    In chunks of :data:`CHUNK_ROWS` rows, each its own short transaction, activity first: a chunk
    that fails leaves what remains for the next run.
    """
    expired_users = sa.select(REMOVED_USER.c.id).where(REMOVED_USER.c.removed_at < before)
    expired_agents = sa.select(REMOVED_AGENT.c.id).where(REMOVED_AGENT.c.user_id.in_(expired_users))
    for shadow, key, owner in (
        (REMOVED_CHUNK, "shadow_id", REMOVED_CHUNK.c.user_id.in_(expired_users)),
        (REMOVED_ROLLUP, "shadow_id", REMOVED_ROLLUP.c.user_id.in_(expired_users)),
        (REMOVED_ALIAS, "shadow_id", REMOVED_ALIAS.c.agent_id.in_(expired_agents)),
        (REMOVED_AGENT, "id", REMOVED_AGENT.c.user_id.in_(expired_users)),
    ):
        chunk = sa.select(shadow.c[key]).where(owner).limit(CHUNK_ROWS)
        while True:
            async with db.write() as session:
                n = await _delete(session, sa.delete(shadow).where(shadow.c[key].in_(chunk)))
            if n < CHUNK_ROWS:
                break
    async with db.write() as session:
        return await _delete(session, sa.delete(REMOVED_USER).where(REMOVED_USER.c.removed_at < before))
