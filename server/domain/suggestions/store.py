"""Suggestions in the database: match keys filed, suggestions computed, refreshed and read.

**Whose.** Every user's, pending or licensed, against every other user, pending or licensed
(docs/behaviour.md, Likely matches): a pending user's show where to assign or merge it, a
licensed user's show a seat its re-image or second login wastes. A match holds both ways:
of two duplicates each suggests the other, whichever arrived first.

**When.** Computed when a user appears (:func:`on_admitted` from admission), in bulk: one
query for every candidate of the whole call and one insert. Never per request. Kept current
as candidates change, in the writing transaction: a suggestion goes with its target (foreign
keys ``ON DELETE CASCADE``: target removed, assigned or merged away) and with its user. A
user with new agents (a newcomer; a known user's second device; agents moved to it by an
assign or a merge) is computed, and then every user it likely matches is recomputed: a pair
scores the same whichever side asks (:mod:`.score`), so those are exactly the users that
gain it as a match or whose match with it changed (:func:`on_admitted`,
:func:`refresh_near`). A newcomer matching nobody costs nothing more. A status change
(approval, a lowered limit, a release) changes no score, so no suggestion. A merged key
becomes an alias that later reports resolve to directly, so it needs no filing here.

**Candidates.** Only agents of the same account, found through ``match_key`` (indexed on
``(account_id, key)``): every agent is stored under its normalised login forms, the forms
of its user's display name (``p:``) and its normalised device name (``d:``), and a user's
own forms are looked up there, so a small candidate set is scored, never the account's
users. Generic logins (``administrator``, ``user``...) are not keys.

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

from server.domain.models import Agent, MatchKey, Suggestion, SuggestionKind, User
from server.domain.suggestions.normalise import match_keys
from server.domain.suggestions.score import MAX_STORED, Side, matches

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


_AGENT: sa.Table = Agent.__table__  # type: ignore[attr-defined]
_USER: sa.Table = User.__table__  # type: ignore[attr-defined]
_KEY: sa.Table = MatchKey.__table__  # type: ignore[attr-defined]
_SUGGESTION: sa.Table = Suggestion.__table__  # type: ignore[attr-defined]
_SIDE_COLUMNS = (
    _AGENT.c.id,
    _AGENT.c.user_id,
    _USER.c.display_name,
    _AGENT.c.device_name,
    _AGENT.c.domain,
    _AGENT.c.logon_name,
    _AGENT.c.last_seen_at,
    _USER.c.last_seen_at,
)
# The statements of every admission's matching, built once: building a statement and its
# cache key costs more than running it on SQLite. Lists are expanding parameters.
_ACCOUNT: sa.BindParameter[int] = sa.bindparam("account_id")
#: The agents of some users, as sides.
_AGENTS_OF = (
    sa.select(*_SIDE_COLUMNS)
    .join_from(_AGENT, _USER, _USER.c.id == _AGENT.c.user_id)
    .where(_AGENT.c.account_id == _ACCOUNT, _USER.c.id.in_(sa.bindparam("ids", expanding=True)))
    .order_by(_AGENT.c.id)
)
#: The agents filed under some match keys, with the key, at most ``limit`` rows.
_FILED_UNDER = (
    sa.select(_KEY.c.key, *_SIDE_COLUMNS)
    .select_from(_KEY)
    .join(_AGENT, _AGENT.c.id == _KEY.c.agent_id)
    .join(_USER, _USER.c.id == _AGENT.c.user_id)
    .where(_KEY.c.account_id == _ACCOUNT, _KEY.c.key.in_(sa.bindparam("keys", expanding=True)))
    .limit(sa.bindparam("limit", type_=sa.Integer))
)
_FORGET = sa.delete(_SUGGESTION).where(_SUGGESTION.c.pending_user_id.in_(sa.bindparam("ids", expanding=True)))
_INSERT_SUGGESTIONS = sa.insert(_SUGGESTION)
_INSERT_KEYS = sa.insert(_KEY)


def _side(row: Any) -> Side:
    return Side(*row)


def _key_rows(account_id: int, agents: Iterable[tuple[int, str, str, str]]) -> list[dict[str, Any]]:
    return _filed(
        account_id, {agent_id: match_keys(device, logon, name) for agent_id, device, logon, name in agents}
    )


def _filed(account_id: int, forms: dict[int, set[str]]) -> list[dict[str, Any]]:
    """The ``match_key`` rows of agents whose keys are known: ``agent_id -> keys``."""
    return [
        {"account_id": account_id, "agent_id": agent_id, "key": key}
        for agent_id, keys in forms.items()
        for key in sorted(keys)
    ]


def _compute(db: Db, account_id: int, user_ids: Sequence[int], now: datetime) -> set[int]:
    """Replace these users' suggestions; the users they match (see :func:`_suggest`)."""
    ids = sorted(set(user_ids))
    if not ids:
        return set()
    db.execute(_FORGET, {"ids": ids})
    rows = db.execute(_AGENTS_OF, {"account_id": account_id, "ids": ids})
    users: dict[int, list[Side]] = defaultdict(list)
    for row in rows:
        side = _side(row)
        users[side.user_id].append(side)
    return _suggest(db, account_id, users, now)


def _suggest(
    db: Db,
    account_id: int,
    users: dict[int, list[Side]],
    now: datetime,
    forms: dict[int, set[str]] | None = None,
) -> set[int]:
    """Score and store suggestions for users (their agents given) that have none.

    Returns every user any of them likely matches (beyond the five stored): by symmetry,
    the users that have one of them as a likely match in return. ``forms``: the match keys
    of agents the caller computed already (``agent_id -> keys``).
    """
    if not users:
        return set()
    forms = dict(forms or {})
    for sides in users.values():
        for side in sides:
            if side.agent_id not in forms:
                forms[side.agent_id] = match_keys(side.device_name, side.logon_name, side.display_name)
    keys = {k for sides in users.values() for side in sides for k in forms[side.agent_id]}
    by_key: dict[str, list[Side]] = defaultdict(list)
    if keys:
        # One query for the whole call; the (account_id, key) index keeps it to a handful
        # of rows per user.
        found = db.execute(
            _FILED_UNDER,
            {"account_id": account_id, "keys": sorted(keys), "limit": MAX_CANDIDATES_PER_USER * len(users)},
        )
        for hit in found:
            by_key[hit[0]].append(_side(hit[1:]))
    inserts: list[dict[str, Any]] = []
    matched: set[int] = set()
    for user_id, sides in users.items():
        mine = {k for side in sides for k in forms[side.agent_id]}
        near = {c.agent_id: c for k in mine for c in by_key.get(k, ())}
        likely = matches(sides, near.values(), now)
        matched.update(s.user_id for s in likely)
        for s in likely[:MAX_STORED]:
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
        db.execute(_INSERT_SUGGESTIONS, inserts)
    return matched


def _refresh(db: Db, account_id: int, user_ids: Sequence[int], exclude: set[int], now: datetime) -> None:
    """These users' agents changed: recompute them, then the users they match (whose best
    pair may involve the changed agents), but none of ``exclude`` (computed already)."""
    changed = set(user_ids) - exclude
    matched = _compute(db, account_id, sorted(changed), now)
    _compute(db, account_id, sorted(matched - changed - exclude), now)


# ---------------------------------------------------------------------------- the domain's calls


async def on_admitted(
    session: AsyncSession,
    account_id: int,
    new_agents: Sequence[tuple[int, int, NamedAgent]],
    new_user_ids: Sequence[int],
    now: datetime,
) -> None:
    """After admission: file the new agents, suggest for the new users (pending or licensed),
    and refresh the users a new agent may be, and the known users that gained one."""
    if not new_agents:
        return
    new_users = set(new_user_ids)

    def work(s: Session) -> None:
        db = s.connection()
        # Each new agent's keys, computed once: filed here, looked up below.
        forms = {a: match_keys(r.device_name, r.logon_name, r.display_name) for a, _, r in new_agents}
        rows = _filed(account_id, forms)
        if rows:
            db.execute(_INSERT_KEYS, rows)
        # New users have no suggestions and their agents are the reports: no delete, no
        # look-up of their agents, on the ingest path.
        arrived: dict[int, list[Side]] = defaultdict(list)
        for agent_id, owner, r in new_agents:
            if owner in new_users:
                arrived[owner].append(
                    Side(agent_id, owner, r.display_name, r.device_name, r.domain, r.logon_name, now, now)
                )
        matched = _suggest(db, account_id, arrived, now, forms)
        # Matches hold both ways: the users a newcomer matches gain it as a match, and a
        # known user with a new agent (a second device) may match more, and more match it.
        gained = {owner for _, owner, _ in new_agents} - new_users
        _compute(db, account_id, sorted(matched - new_users - gained), now)
        _refresh(db, account_id, sorted(gained), new_users | (matched - gained), now)

    await session.run_sync(work)


async def compute(session: AsyncSession, account_id: int, user_ids: Sequence[int], now: datetime) -> None:
    """(Re)compute the stored suggestions of these users."""
    if user_ids:
        await session.run_sync(lambda s: _compute(s.connection(), account_id, user_ids, now))


async def refresh_near(
    session: AsyncSession, account_id: int, user_ids: Sequence[int], now: datetime
) -> None:
    """These users' agents changed (an assign or a merge gave them more): recompute them,
    and the users they likely match."""
    if user_ids:
        await session.run_sync(lambda s: _refresh(s.connection(), account_id, user_ids, set(), now))


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
        _refresh(db, account_id, user_ids, set(), now)

    if agent_ids or user_ids:
        await session.run_sync(work)


def backfill(db: Connection, now: datetime) -> None:
    """File every existing agent and suggest for every user (migration 0003)."""
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
    recompute_all(db, now)


def recompute_all(db: Connection, now: datetime) -> None:
    """Compute every user's suggestions afresh, account by account, 500 users a time."""
    found = db.execute(sa.select(col(User.account_id), col(User.id)).order_by(col(User.id))).all()
    users: dict[int, list[int]] = defaultdict(list)
    for account_id, user_id in found:
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
    """Each user's stored suggestions, best first, in three queries whatever the count."""
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
