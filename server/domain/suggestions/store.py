"""Suggestions in the database: match keys filed, suggestions computed, refreshed and read.

**When.** Computed when a user enters the queue (:func:`on_admitted` from admission,
:func:`compute` from a lowered limit), in bulk: one query for the pending users' agents,
one for every candidate of the whole call, one delete and one insert. Never per request.
Refreshed when candidates change: a suggestion goes with its target (foreign keys
``ON DELETE CASCADE``: target removed, assigned or merged away) and with its pending user
(assigned, merged, removed); an approved user's are deleted (:func:`forget`). A new
candidate (a new agent of a licensed or existing user; agents moved by an assign or a merge)
recomputes the pending users whose keys it shares (:func:`refresh_near`). A merged key
becomes an alias that later reports resolve to directly, so it needs no filing here.

**Candidates.** Only agents of the same account, found through ``match_key`` (indexed on
``(account_id, key)``): every agent is stored under its normalised login forms, the forms
of its user's display name (``p:``) and its normalised device name (``d:``), and a pending
user's own forms are looked up there, so a small candidate set is scored, never the
account's users. Generic logins (``administrator``, ``user``...) are not keys. A pending
candidate counts only if it entered the queue earlier (lower id): the later duplicate folds
into the earlier one, never both ways.

Nothing here imports GraphQL, Starlette or Textual. The work runs on a synchronous
connection (:meth:`AsyncSession.run_sync`) so the migration that backfills existing data
runs the very same code.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlmodel import col

from server.domain.models import Agent, MatchKey, Suggestion, SuggestionKind, User, UserStatus
from server.domain.suggestions.normalise import match_keys
from server.domain.suggestions.score import Side, rank

# Guards a bulk call against a pathological key (thousands of agents on one device name).
MAX_CANDIDATES_PER_USER = 50

Db = Connection | Session


# ---------------------------------------------------------------------------- storage


class NamedAgent(Protocol):
    """What admission knows of a new agent (:class:`server.domain.admission.AgentReport`)."""

    @property
    def device_name(self) -> str: ...

    @property
    def domain(self) -> str: ...

    @property
    def logon_name(self) -> str: ...

    @property
    def display_name(self) -> str: ...


_SIDE_COLUMNS = (
    col(Agent.id),
    col(Agent.user_id),
    col(User.status),
    col(User.display_name),
    col(Agent.device_name),
    col(Agent.domain),
    col(Agent.logon_name),
    col(Agent.last_seen_at),
    col(User.last_seen_at),
)


def _side(row: Any) -> Side:
    return Side(row[0], row[1], UserStatus(row[2]), *row[3:])


def _key_rows(account_id: int, agents: Iterable[tuple[int, str, str, str]]) -> list[dict[str, Any]]:
    return [
        {"account_id": account_id, "agent_id": agent_id, "key": key}
        for agent_id, device, logon, name in agents
        for key in sorted(match_keys(device, logon, name))
    ]


def _compute(db: Db, account_id: int, user_ids: Sequence[int], now: datetime) -> None:
    ids = sorted(set(user_ids))
    if not ids:
        return
    db.execute(sa.delete(Suggestion).where(col(Suggestion.pending_user_id).in_(ids)))
    rows = db.execute(
        sa.select(*_SIDE_COLUMNS)
        .join(User, col(User.id) == col(Agent.user_id))
        .where(
            col(Agent.account_id) == account_id,
            col(User.id).in_(ids),
            col(User.status) == UserStatus.PENDING,
        )
        .order_by(col(Agent.id))
    )
    pending: dict[int, list[Side]] = defaultdict(list)
    for row in rows:
        side = _side(row)
        pending[side.user_id].append(side)
    _suggest(db, account_id, pending, now)


def _suggest(db: Db, account_id: int, pending: dict[int, list[Side]], now: datetime) -> None:
    """Score and store suggestions for pending users (their agents given) that have none."""
    if not pending:
        return
    keys = {
        k
        for sides in pending.values()
        for s in sides
        for k in match_keys(s.device_name, s.logon_name, s.display_name)
    }
    by_key: dict[str, list[Side]] = defaultdict(list)
    if keys:
        # One query for the whole call; the (account_id, key) index keeps it to a handful
        # of rows per pending user.
        found = db.execute(
            sa.select(col(MatchKey.key), *_SIDE_COLUMNS)
            .select_from(MatchKey)
            .join(Agent, col(Agent.id) == col(MatchKey.agent_id))
            .join(User, col(User.id) == col(Agent.user_id))
            .where(col(MatchKey.account_id) == account_id, col(MatchKey.key).in_(sorted(keys)))
            .limit(MAX_CANDIDATES_PER_USER * len(pending))
        )
        for hit in found:
            by_key[hit[0]].append(_side(hit[1:]))
    inserts: list[dict[str, Any]] = []
    for user_id, sides in pending.items():
        mine = {k for s in sides for k in match_keys(s.device_name, s.logon_name, s.display_name)}
        near = {c.agent_id: c for k in mine for c in by_key.get(k, ())}
        for s in rank(sides, near.values(), now):
            inserts.append(
                {
                    "account_id": account_id,
                    "pending_user_id": user_id,
                    "kind": s.kind.value,
                    "target_user_id": s.user_id if s.kind is SuggestionKind.ASSIGN else None,
                    "target_agent_id": s.agent_id if s.kind is SuggestionKind.MERGE else None,
                    "score": round(s.score, 4),
                    "reasons": json.dumps(s.reasons),
                    "computed_at": now,
                }
            )
    if inserts:
        db.execute(sa.insert(Suggestion.__table__), inserts)  # type: ignore[attr-defined]


def _pending_near(db: Db, account_id: int, keys: set[str], exclude_agents: Sequence[int]) -> list[int]:
    """Pending users filed under any of ``keys`` (through agents other than ``exclude_agents``)."""
    if not keys:
        return []
    return list(
        uid
        for uid in db.execute(
            sa.select(col(User.id))
            .distinct()
            .select_from(MatchKey)
            .join(Agent, col(Agent.id) == col(MatchKey.agent_id))
            .join(User, col(User.id) == col(Agent.user_id))
            .where(
                col(MatchKey.account_id) == account_id,
                col(MatchKey.key).in_(sorted(keys)),
                col(User.status) == UserStatus.PENDING,
                col(Agent.id).not_in(list(exclude_agents)),
            )
            .limit(500)
        ).scalars()
        if uid is not None
    )


def _agent_keys(db: Db, user_ids: Sequence[int]) -> tuple[set[str], list[int]]:
    rows = db.execute(
        sa.select(col(MatchKey.key), col(MatchKey.agent_id))
        .join(Agent, col(Agent.id) == col(MatchKey.agent_id))
        .where(col(Agent.user_id).in_(list(user_ids)))
    ).all()
    return {k for k, _ in rows}, sorted({a for _, a in rows})


def _refresh_near(db: Db, account_id: int, user_ids: Sequence[int], now: datetime) -> None:
    keys, agent_ids = _agent_keys(db, user_ids)
    near = set(_pending_near(db, account_id, keys, agent_ids))
    pending_targets = db.execute(
        sa.select(col(User.id)).where(
            col(User.id).in_(list(user_ids)), col(User.status) == UserStatus.PENDING
        )
    ).scalars()
    _compute(db, account_id, sorted(near | {u for u in pending_targets if u is not None}), now)


# ---------------------------------------------------------------------------- the domain's calls


async def on_admitted(
    session: AsyncSession,
    account_id: int,
    new_agents: Sequence[tuple[int, int, NamedAgent]],
    entered_user_ids: Sequence[int],
    now: datetime,
) -> None:
    """After admission: file the new agents, suggest for the users who entered the queue,
    and refresh pending users a new agent of an existing or licensed user may be."""
    if not new_agents:
        return
    entered = set(entered_user_ids)

    def work(s: Session) -> None:
        db = s.connection()
        rows = _key_rows(
            account_id, ((a, r.device_name, r.logon_name, r.display_name) for a, _, r in new_agents)
        )
        if rows:
            db.execute(sa.insert(MatchKey.__table__), rows)  # type: ignore[attr-defined]
        # Users who just entered have no suggestions and their agents are the reports: no
        # delete, no look-up, on the ingest path.
        arrived: dict[int, list[Side]] = defaultdict(list)
        for agent_id, owner, r in new_agents:
            if owner in entered:
                arrived[owner].append(
                    Side(
                        agent_id,
                        owner,
                        UserStatus.PENDING,
                        r.display_name,
                        r.device_name,
                        r.domain,
                        r.logon_name,
                        now,
                        now,
                    )
                )
        _suggest(db, account_id, arrived, now)
        # A new pending user is never a candidate for the pending users before it, so only
        # agents of other users (new licensed users, new devices of known users) refresh.
        fresh = [(a, r) for a, owner, r in new_agents if owner not in entered]
        if fresh:
            keys = {k for _, r in fresh for k in match_keys(r.device_name, r.logon_name, r.display_name)}
            near = set(_pending_near(db, account_id, keys, [a for a, _, _ in new_agents])) - entered
            _compute(db, account_id, sorted(near), now)

    await session.run_sync(work)


async def compute(session: AsyncSession, account_id: int, user_ids: Sequence[int], now: datetime) -> None:
    """(Re)compute the stored suggestions of these users (those not pending get none)."""
    if user_ids:
        await session.run_sync(lambda s: _compute(s.connection(), account_id, user_ids, now))


async def forget(session: AsyncSession, user_ids: Sequence[int]) -> None:
    """Users left the queue without leaving the account (approved): drop their suggestions."""
    if user_ids:
        await session.execute(
            sa.delete(Suggestion).where(col(Suggestion.pending_user_id).in_(list(user_ids)))
        )


async def refresh_near(
    session: AsyncSession, account_id: int, user_ids: Sequence[int], now: datetime
) -> None:
    """These users' agents changed (an assign or a merge gave them more): recompute the
    pending users filed under the same keys, and these users themselves if pending."""
    if user_ids:
        await session.run_sync(lambda s: _refresh_near(s.connection(), account_id, user_ids, now))


async def restored(
    session: AsyncSession, account_id: int, agent_ids: Sequence[int], user_ids: Sequence[int], now: datetime
) -> None:
    """An undo brought agents back (server.domain.undo): file them again, then recompute the
    pending users filed under the same keys, and these users themselves if pending."""

    def work(s: Session) -> None:
        db = s.connection()
        if agent_ids:
            rows = db.execute(
                sa.select(
                    col(Agent.id), col(Agent.device_name), col(Agent.logon_name), col(User.display_name)
                )
                .join(User, col(User.id) == col(Agent.user_id))
                .where(col(Agent.id).in_(list(agent_ids)))
            ).all()
            keys = _key_rows(account_id, ((a, d, lg, n) for a, d, lg, n in rows if a is not None))
            if keys:
                db.execute(sa.insert(MatchKey.__table__), keys)  # type: ignore[attr-defined]
        _refresh_near(db, account_id, user_ids, now)

    if agent_ids or user_ids:
        await session.run_sync(work)


def backfill(db: Connection, now: datetime) -> None:
    """File every existing agent and suggest for every pending user (migration 0003)."""
    rows = db.execute(
        sa.select(
            col(Agent.account_id),
            col(Agent.id),
            col(Agent.device_name),
            col(Agent.logon_name),
            col(User.display_name),
        )
        .join(User, col(User.id) == col(Agent.user_id))
        .order_by(col(Agent.id))
    ).all()
    by_account: dict[int, list[tuple[int, str, str, str]]] = defaultdict(list)
    for account_id, agent_id, device, logon, name in rows:
        assert agent_id is not None
        by_account[account_id].append((agent_id, device, logon, name))
    for account_id, agents in by_account.items():
        for start in range(0, len(agents), 1000):
            keys = _key_rows(account_id, agents[start : start + 1000])
            if keys:
                db.execute(sa.insert(MatchKey.__table__), keys)  # type: ignore[attr-defined]
    pending = db.execute(
        sa.select(col(User.account_id), col(User.id))
        .where(col(User.status) == UserStatus.PENDING)
        .order_by(col(User.id))
    ).all()
    users: dict[int, list[int]] = defaultdict(list)
    for account_id, user_id in pending:
        assert user_id is not None
        users[account_id].append(user_id)
    for account_id, ids in users.items():
        for start in range(0, len(ids), 500):
            _compute(db, account_id, ids[start : start + 500], now)


# ---------------------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class Found:
    """A stored suggestion with its target row."""

    kind: SuggestionKind
    score: float
    reasons: list[str]
    user: User | None = None
    agent: Agent | None = None
    computed_at: datetime | None = field(default=None, compare=False)


async def suggestions_by_user(
    session: AsyncSession, account_id: int, user_ids: Sequence[int]
) -> dict[int, list[Found]]:
    """Each pending user's stored suggestions, best first, in three queries whatever the count."""
    if not user_ids:
        return {}
    rows = list(
        (
            await session.execute(
                sa.select(Suggestion)
                .where(
                    col(Suggestion.account_id) == account_id,
                    col(Suggestion.pending_user_id).in_(list(user_ids)),
                )
                .order_by(col(Suggestion.pending_user_id), col(Suggestion.score).desc(), col(Suggestion.id))
            )
        ).scalars()
    )
    user_ids_wanted = {r.target_user_id for r in rows if r.target_user_id is not None}
    agent_ids_wanted = {r.target_agent_id for r in rows if r.target_agent_id is not None}
    users: dict[int | None, User] = {}
    agents: dict[int | None, Agent] = {}
    if user_ids_wanted:
        found_users = await session.execute(
            sa.select(User).where(col(User.account_id) == account_id, col(User.id).in_(user_ids_wanted))
        )
        users = {u.id: u for u in found_users.scalars()}
    if agent_ids_wanted:
        found_agents = await session.execute(
            sa.select(Agent).where(col(Agent.account_id) == account_id, col(Agent.id).in_(agent_ids_wanted))
        )
        agents = {a.id: a for a in found_agents.scalars()}
    out: dict[int, list[Found]] = defaultdict(list)
    for r in rows:
        user = users.get(r.target_user_id) if r.target_user_id is not None else None
        agent = agents.get(r.target_agent_id) if r.target_agent_id is not None else None
        if user is None and agent is None:
            continue
        out[r.pending_user_id].append(
            Found(r.kind, r.score, list(json.loads(r.reasons)), user, agent, r.computed_at)
        )
    return dict(out)
