"""Which agent a reported key already is: its own key, or an alias a merge left.

Every ingest group asks, for all its batches at once (:func:`resolve_keys`), in one
statement looked up through the keys' unique indexes (:mod:`server.domain.lookups`).
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from server.domain import lookups
from server.domain.models import Agent, AgentAlias, User, UserStatus

KnownAgent = tuple[int, int, str]  # (agent_id, user_id, user status)

_AGENT: sa.Table = Agent.__table__  # type: ignore[attr-defined]
_USER: sa.Table = User.__table__  # type: ignore[attr-defined]
_ALIAS: sa.Table = AgentAlias.__table__  # type: ignore[attr-defined]


@functools.cache
def _resolve(n: int) -> sa.CompoundSelect[Any]:
    """``n`` keys known directly (``alias`` 0) or as an alias left by a merge (1, with the
    agent the key was before the merge)."""
    return sa.union_all(
        sa.select(
            _AGENT.c.account_id,
            _AGENT.c.key,
            _AGENT.c.id,
            _AGENT.c.user_id,
            _USER.c.status,
            sa.null().label("origin"),
            sa.literal_column("0").label("alias"),
        )
        .join_from(_AGENT, _USER, _USER.c.id == _AGENT.c.user_id)
        .where(lookups.any_of((_AGENT.c.account_id, _AGENT.c.key), n)),
        sa.select(
            _ALIAS.c.account_id,
            _ALIAS.c.key,
            _AGENT.c.id,
            _AGENT.c.user_id,
            _USER.c.status,
            _ALIAS.c.origin_agent_id,
            sa.literal_column("1"),
        )
        .join_from(_ALIAS, _AGENT, _AGENT.c.id == _ALIAS.c.agent_id)
        .join(_USER, _USER.c.id == _AGENT.c.user_id)
        .where(lookups.any_of((_ALIAS.c.account_id, _ALIAS.c.key), n)),
    )


async def resolve_keys(
    session: AsyncSession,
    keys: set[tuple[int, str]],
    origins: dict[tuple[int, str], int] | None = None,
) -> dict[tuple[int, str], KnownAgent]:
    """``(account_id, key) -> (agent_id, user_id, status)`` for keys known directly or as
    aliases.

    ``origins``, when given, gets for each key known as an alias the agent it was the key of
    before a merge: ingestion marks the events reported under it (server.domain.undo).
    """
    if not keys:
        return {}
    conn = await session.connection()
    rows: list[Any] = []
    for chunk in lookups.chunked(sorted(keys)):
        rows.extend((await conn.execute(_resolve(len(chunk)), lookups.params(chunk))).all())
    found: dict[tuple[int, str], KnownAgent] = {}
    # A key is an agent's or an alias, never both; were it both, the agent would win.
    for account_id, key, agent_id, user_id, status, origin, alias in sorted(rows, key=lambda r: r[6]):
        if alias and (account_id, key) in found:
            continue
        found[(account_id, key)] = (agent_id, user_id, UserStatus(status).value)
        if alias and origins is not None and origin is not None:
            origins[(account_id, key)] = origin
    return found
