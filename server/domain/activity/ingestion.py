"""Storing ingest batches: admission, events and the batch id, in the caller's transaction.

A batch is stored in one transaction together with its admission and a record of its
``batchId``, so a replay answers the first call's response and nothing is half-stored.
Events go in as compact chunks with their rollups (:mod:`server.domain.activity.chunks`):
a few statements for the whole group, whatever the number of events.
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from server.domain import admission, agent_keys, changes, lookups
from server.domain.activity import chunks
from server.domain.activity.batch import Batch
from server.domain.admission import AdmissionStatus
from server.domain.changes import bump_queue_version
from server.domain.models import Agent, IngestBatch, User

# Built once (building a statement and its cache key costs more than running it on
# SQLite) and run on the session's connection: Core, no ORM bookkeeping.
_BATCH: sa.Table = IngestBatch.__table__  # type: ignore[attr-defined]
_INSERT_BATCHES = sa.insert(_BATCH)
_AGENT: sa.Table = Agent.__table__  # type: ignore[attr-defined]
_USER: sa.Table = User.__table__  # type: ignore[attr-defined]
_SEEN_AGENTS = (
    sa.update(_AGENT)
    .where(_AGENT.c.id.in_(sa.bindparam("ids", expanding=True)))
    .values(last_seen_at=sa.bindparam("now"))
)
_SEEN_USERS = (
    sa.update(_USER)
    .where(_USER.c.id.in_(sa.bindparam("ids", expanding=True)))
    .values(last_seen_at=sa.bindparam("now"))
)


@dataclass(frozen=True, slots=True)
class IngestResult:
    agent_id: int | None
    user_id: int | None
    status: str
    accepted: int
    duplicate: bool = False
    # This batch admitted its agent (a key new to the account): metrics count admissions.
    # Not part of the answer.
    admitted: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "agentId": None if self.agent_id is None else str(self.agent_id),
            "userId": None if self.user_id is None else str(self.user_id),
            "status": self.status,
            "accepted": self.accepted,
            "duplicate": self.duplicate,
        }


async def ingest(session: AsyncSession, account_id: int, batch: Batch, now: datetime) -> IngestResult:
    """Admit the batch's agent and store its events, once per ``(agent, batchId)``."""
    (result,) = await ingest_many(session, [(account_id, batch)], now)
    return result


async def ingest_many(
    session: AsyncSession, items: Sequence[tuple[int, Batch]], now: datetime
) -> list[IngestResult]:
    """Store several ``(account_id, batch)`` in the caller's transaction; one result each, in order.

    The work is done in a fixed number of statements whatever the number of batches (one
    look-up of stored batch ids, one of known agents and aliases, one insert of all events,
    ...), new agents included (:func:`admission.admit_many`). This
    is what lets the ingest endpoint commit concurrent batches together (group commit).
    """
    # Every writer that touches an account's users takes the account's lock first (admin
    # actions, admission, retention). Ingestion updates users and agents too, so it does the
    # same: on PostgreSQL that keeps lock order uniform and rules out deadlocks with an
    # admin action on the same rows. On SQLite the transaction already holds the write lock
    # (one writer at a time) and FOR UPDATE is not even rendered: the statement would be a
    # plain SELECT whose rows nobody reads, a round trip to the database thread per group.
    if session.get_bind().dialect.name != "sqlite":
        await changes.lock_accounts(session, (account_id for account_id, _ in items))
    batch_keys = [(account_id, b.agent.key, b.batch_id) for account_id, b in items]
    stored = await _stored_responses(session, batch_keys)
    # Keys known as an alias: their events are marked with the agent the key was (a merge's undo).
    origins: dict[tuple[int, str], int] = {}
    known = await agent_keys.resolve_keys(
        session, {(account_id, b.agent.key) for account_id, b in items}, origins
    )

    # Admit the new keys first, per account and in arrival order, in bulk.
    fresh: dict[int, list[int]] = defaultdict(list)
    seen_batches: set[tuple[int, str, str]] = set()
    for n, ((account_id, batch), bkey) in enumerate(zip(items, batch_keys, strict=True)):
        if bkey in stored or bkey in seen_batches:
            continue
        seen_batches.add(bkey)
        if (account_id, batch.agent.key) not in known:
            fresh[account_id].append(n)
    admissions: dict[int, admission.Admission] = {}
    for account_id, positions in fresh.items():
        admitted = await admission.admit_many(
            session, account_id, [items[n][1].agent for n in positions], now, known=known
        )
        admissions.update(zip(positions, admitted, strict=True))

    results: list[IngestResult] = []
    first_in_group: dict[tuple[int, str, str], IngestResult] = {}
    writes = chunks.Writes()
    # Agents and users to mark seen now; those admitted now were inserted so.
    agents_seen: set[int] = set()
    users_seen: set[int] = set()
    pending_accounts: set[int] = set()
    batch_rows: list[dict[str, Any]] = []
    for n, ((account_id, batch), bkey) in enumerate(zip(items, batch_keys, strict=True)):
        if bkey in stored:
            results.append(_replayed(stored[bkey]))
            continue
        if bkey in first_in_group:
            first = first_in_group[bkey]
            # An ignored batch is never stored, so its replay is not a duplicate either.
            results.append(
                replace(first, admitted=False)
                if first.status == AdmissionStatus.IGNORED
                else replace(first, duplicate=True, admitted=False)
            )
            continue
        entered = False
        if n in admissions:
            outcome = admissions[n]
            if outcome.status == AdmissionStatus.IGNORED:
                # Do-not-track: accepted and dropped; nothing is stored, not even the batch id.
                ignored = IngestResult(None, None, AdmissionStatus.IGNORED, 0, admitted=True)
                first_in_group[bkey] = ignored
                results.append(ignored)
                continue
            assert outcome.agent_id is not None and outcome.user_id is not None
            agent = (outcome.agent_id, outcome.user_id, outcome.status)
            entered = outcome.entered_queue
            if not outcome.new_agent:
                agents_seen.add(outcome.agent_id)
            if not outcome.new_user:
                users_seen.add(outcome.user_id)
        else:
            agent = known[(account_id, batch.agent.key)]
            agents_seen.add(agent[0])
            users_seen.add(agent[1])
        agent_id, user_id, status = agent
        writes.add(user_id, agent_id, origins.get((account_id, batch.agent.key), agent_id), batch.events)
        if status == AdmissionStatus.PENDING and not entered:
            # A pending user's retained activity, last-seen times and agents are part of
            # what the queue shows: even a heartbeat changes it, and cached queue pages
            # are keyed by the account's queue version.
            pending_accounts.add(account_id)
        result = IngestResult(agent_id, user_id, status, len(batch.events), admitted=n in admissions)
        first_in_group[bkey] = result
        results.append(result)
        batch_rows.append(
            {
                "account_id": account_id,
                "agent_key": bkey[1],
                "batch_id": bkey[2],
                "response": json.dumps(result.to_json()),
                "created_at": now,
            }
        )

    await writes.flush(session)
    conn = await session.connection()
    if agents_seen:
        await conn.execute(_SEEN_AGENTS, {"ids": list(agents_seen), "now": now})
    if users_seen:
        await conn.execute(_SEEN_USERS, {"ids": list(users_seen), "now": now})
    if batch_rows:
        await conn.execute(_INSERT_BATCHES, batch_rows)
    for account_id in sorted(pending_accounts):
        await bump_queue_version(session, account_id)
    return results


def _replayed(stored: str) -> IngestResult:
    first = json.loads(stored)
    return IngestResult(
        agent_id=None if first["agentId"] is None else int(first["agentId"]),
        user_id=None if first["userId"] is None else int(first["userId"]),
        status=first["status"],
        accepted=first["accepted"],
        duplicate=True,
    )


async def _stored_responses(
    session: AsyncSession, keys: Sequence[tuple[int, str, str]]
) -> dict[tuple[int, str, str], str]:
    if not keys:
        return {}
    conn = await session.connection()
    found: dict[tuple[int, str, str], str] = {}
    for chunk in lookups.chunked(keys):
        rows = await conn.execute(_stored(len(chunk)), lookups.params(chunk))
        found.update(((a, k, b), r) for a, k, b, r in rows)
    return found


@functools.cache
def _stored(n: int) -> sa.Select[Any]:
    """The answers stored for ``n`` batch keys (``lookups.any_of``: through the unique index)."""
    key = (_BATCH.c.account_id, _BATCH.c.agent_key, _BATCH.c.batch_id)
    return sa.select(*key, _BATCH.c.response).where(lookups.any_of(key, n))
