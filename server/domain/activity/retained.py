"""What is retained of users' activity: what retention applies to (docs/behaviour.md, Retention).

Every stored event of the user except what it recorded while licensed, before a lowered
limit or a release moved it to the queue (events starting before ``user.licensed_until``).
Read from the rollups: one statement sums the rows wholly after ``licensed_until`` and
flags users with a row that the move cuts (on the day of the move); only for those, the
events of that row are read from its day's chunks.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from server.domain.activity import chunks
from server.domain.activity.chunks import ROLLUP
from server.domain.models import User, UTCDateTime
from server.domain.records import record

_R = ROLLUP.c
_U = sa.inspect(User).local_table.c
_MOVED = _U.licensed_until
_WHOLE = sa.or_(_MOVED.is_(None), _R.first_start >= _MOVED)
_CUT = sa.and_(_MOVED.is_not(None), _R.first_start < _MOVED, _R.last_start >= _MOVED)


def _when(condition: Any, value: Any, default: Any = 0) -> Any:
    return sa.case((condition, value), else_=default)


_SUMS = (
    sa.select(
        _U.id,
        _MOVED,
        sa.func.sum(_when(_WHOLE, _R.event_count)),
        sa.func.sum(_when(_WHOLE, _R.active_seconds)),
        sa.type_coerce(sa.func.min(_when(_WHOLE, _R.first_start, None)), UTCDateTime()),
        sa.func.max(_when(_CUT, 1)),
    )
    .select_from(sa.inspect(User).local_table)
    .join(ROLLUP, _R.user_id == _U.id)
    .group_by(_U.id, _MOVED)
)
_CUT_ROWS = (
    sa.select(_R.user_id, _R.agent_id, _R.origin_agent_id, _R.day, _R.app, _R.productivity)
    .join(sa.inspect(User).local_table, _U.id == _R.user_id)
    .where(_R.user_id.in_(sa.bindparam("ids", expanding=True)), _CUT)
)
_SUMS_OF_USERS = _SUMS.where(_U.id.in_(sa.bindparam("ids", expanding=True)))


@record
class Retained:
    """What is stored of one user's activity."""

    event_count: int = 0
    active_seconds: int = 0
    oldest_start: datetime | None = None


async def retained(session: AsyncSession, which: Sequence[Any]) -> dict[int, Retained]:
    """Per user matching the ``which`` conditions (on the ``user`` table) with any stored
    activity: the count, seconds and oldest start of what retention applies to."""
    return await _retained(session, _SUMS.where(*which), {})


async def retained_of(session: AsyncSession, user_ids: Sequence[int]) -> dict[int, Retained]:
    """:func:`retained` of these users, by a statement built once (a page's loader)."""
    return await _retained(session, _SUMS_OF_USERS, {"ids": list(user_ids)})


async def _retained(session: AsyncSession, sums: Any, params: dict[str, Any]) -> dict[int, Retained]:
    found: dict[int, list[Any]] = {}
    moved: dict[int, datetime] = {}
    for user_id, licensed_until, n, seconds, oldest, cut in await session.execute(sums, params):
        found[user_id] = [int(n or 0), int(seconds or 0), oldest]
        if cut:
            moved[user_id] = licensed_until
    if moved:
        rows = await session.execute(_CUT_ROWS, {"ids": sorted(moved)})
        keys = {tuple(r) for r in rows}
        for s in await chunks.events_of(session, {(k[0], k[3]) for k in keys}):
            e = s.event
            key = (s.user_id, s.agent_id, s.origin_agent_id, e.start.date(), e.app, e.productivity)
            if key in keys and e.start >= moved[s.user_id]:
                f = found[s.user_id]
                f[0] += 1
                f[1] += e.duration_seconds
                f[2] = e.start if f[2] is None else min(f[2], e.start)
    return {u: Retained(n, s, oldest) for u, (n, s, oldest) in found.items()}
