"""``undoActions`` (docs/behaviour.md, Undo): reverse audited actions, all or nothing.

Like every action it takes the account's lock first, refuses with a :class:`DomainError`
before anything is kept (the transaction rolls back), audits and publishes per user, and lets
the auto-approval rule fill licenses it frees. The entries are undone newest first, each
checked (:func:`server.domain.undo.check.blockers`) against the state the undos before it
left, so the entries of one bulk action, or an action and a later one on the same user,
undo together. Each undo puts back what its action changed, from what the action recorded
(:mod:`server.domain.undo.records`), and keeps what happened since where it belongs: activity
that arrived for an assigned or merged agent goes back with it; times an agent was seen
since stay. A user that would come back licensed without a free license comes back pending,
``OVER_LIMIT``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.domain.actions import auto_approve
from server.domain.activity import chunks
from server.domain.changes import MAX_BULK_IDS, ActionResult, Actor, audit, count_users, finish, lock_account
from server.domain.errors import DomainError, ErrorCode
from server.domain.models import (
    Account,
    Agent,
    AgentAlias,
    AuditEntry,
    DoNotTrack,
    IngestBatch,
    PendingReason,
    QueueAction,
    User,
    UserStatus,
)
from server.domain.suggestions import store as suggestions
from server.domain.undo import check, removed
from server.domain.undo.records import parse_time, values_of
from server.domain.undo.removed import AGENT, USER


@dataclass
class _Undo:
    """One ``undoActions`` call: its transaction, and what it changed so far."""

    session: AsyncSession
    account: Account
    now: datetime
    users: dict[int, None] = field(default_factory=dict)  # touched users, in order
    compute: list[int] = field(default_factory=list)  # pending again: suggest for them
    refiled: list[int] = field(default_factory=list)  # agents back: file them again
    near: list[int] = field(default_factory=list)  # users whose agents changed

    async def over_limit(self) -> int:
        """Licensed users beyond the limit now (after what was undone so far)."""
        await self.session.flush()
        assert self.account.id is not None
        return (
            await count_users(self.session, self.account.id, UserStatus.LICENSED) - self.account.license_limit
        )

    async def user(self, user_id: int) -> User:
        # Core statements may have written the row: read it again, after what is pending.
        await self.session.flush()
        found = await self.session.get(User, user_id, populate_existing=True)
        assert found is not None, "checked before"
        self.users[user_id] = None
        return found


@dataclass(frozen=True)
class Outcome:
    """What an entry's undo did, in words for the UNDONE entry; ``held``: an approval's undo,
    whose user waits for an admin (the auto-approval rule leaves it)."""

    detail: str
    held: bool = False


async def undo_actions(
    session: AsyncSession, actor: Actor, entry_ids: Sequence[int], now: datetime, window: timedelta
) -> ActionResult:
    """Undo every given audit entry, or none; ``window``: ``PLM_UNDO_HOURS``."""
    actor.require_admin()
    ids = list(dict.fromkeys(entry_ids))
    if not ids or len(ids) > MAX_BULK_IDS:
        raise DomainError(
            ErrorCode.INVALID_INPUT,
            f"give 1 to {MAX_BULK_IDS} audit entry ids; {len(ids)} were given",
            "auditEntryIds",
        )
    account = await lock_account(session, actor.account_id)
    found = {
        e.id: e
        for e in (
            await session.execute(
                sa.select(AuditEntry).where(
                    col(AuditEntry.account_id) == actor.account_id, col(AuditEntry.id).in_(ids)
                )
            )
        ).scalars()
    }
    missing = [i for i in ids if i not in found]
    if missing:
        raise DomainError(
            ErrorCode.NOT_FOUND, f"no audit entry with id {', '.join(map(str, missing))}", "auditEntryIds"
        )
    undo = _Undo(session, account, now)
    changes: list[tuple[QueueAction, int, int | None]] = []
    for entry in sorted(found.values(), key=lambda e: e.id or 0, reverse=True):
        await session.flush()
        why = (await check.blockers(session, actor.account_id, [entry], now, window)).get(entry.id or 0)
        if why is not None:
            raise DomainError(
                ErrorCode.NOT_UNDOABLE,
                f"entry {entry.id} ({entry.action.value} {entry.user_display_name}) cannot be undone: {why}; "
                "nothing was undone",
                "auditEntryIds",
                entry_id=entry.id,
            )
        undo.users[entry.user_id] = None
        outcome = await _UNDO[entry.action](undo, entry, entry.undo or {})
        user = await undo.user(entry.user_id)
        done = audit(
            session,
            actor,
            QueueAction.UNDONE,
            user,
            f"undid {entry.action.value} (entry {entry.id}): {outcome.detail}",
            now,
            queue_entered_at=user.pending_since if outcome.held else None,
        )
        await session.flush()
        entry.undone_by = done.id
        changes.append((QueueAction.UNDONE, entry.user_id, actor.admin_id))
    approved, by_rule = await auto_approve(session, account, now)
    usage, events = await finish(session, account, changes + by_rule, now)
    await suggestions.compute(session, actor.account_id, undo.compute, now)
    await suggestions.restored(session, actor.account_id, undo.refiled, undo.near, now)
    users = {u.id: u for u in [*[await undo.user(i) for i in list(undo.users)], *approved]}
    return ActionResult(account=account, usage=usage, events=events, users=list(users.values()))


# ---------------------------------------------------------------------------- each kind


async def _approval(undo: _Undo, entry: AuditEntry, record: dict[str, Any]) -> Outcome:
    user = await undo.user(entry.user_id)
    reason = PendingReason(record["reason"])
    user.status = UserStatus.PENDING
    user.pending_reason = reason
    user.pending_since = entry.queue_entered_at
    user.licensed_at = None
    user.licensed_until = parse_time(record["licensed_until"])
    undo.compute.append(entry.user_id)
    return Outcome(f"back in the queue ({reason.value}), waiting for an admin", held=True)


async def _release(undo: _Undo, entry: AuditEntry, record: dict[str, Any]) -> Outcome:
    user = await undo.user(entry.user_id)
    if await undo.over_limit() >= 0:
        user.pending_reason = PendingReason.OVER_LIMIT
        return Outcome("no license is free, so it stays in the queue (OVER_LIMIT)")
    user.status = UserStatus.LICENSED
    user.licensed_at = parse_time(record["licensed_at"])
    user.licensed_until = parse_time(record["licensed_until"])
    user.pending_reason = None
    user.pending_since = None
    # Its likely matches stay: a licensed user shows them too (docs/behaviour.md, Likely matches).
    return Outcome("licensed again")


async def _assignment(undo: _Undo, entry: AuditEntry, record: dict[str, Any]) -> Outcome:
    s = undo.session
    agent_ids: list[int] = record["agent_ids"]
    pending = values_of(USER, record["user"])
    seen = await _reported(undo, await _keys(undo, agent_ids), entry.at)
    pending["last_seen_at"] = _latest(pending["last_seen_at"], seen)
    await s.execute(sa.insert(USER).values(**pending))
    await s.execute(sa.update(Agent).where(col(Agent.id).in_(agent_ids)).values(user_id=entry.user_id))
    # With every event of those agents: what arrived since the assignment too.
    await chunks.rekey(s, {"agent_id": list(agent_ids)}, user_id=entry.user_id)
    target = await undo.user(record["target_user_id"])
    before = record["target"]
    await _times(undo, entry, target, before, pending["first_seen_at"])
    undo.near += [entry.user_id, record["target_user_id"]]
    return Outcome(
        f"back in the queue with its {len(agent_ids)} agent(s), taken back from {target.display_name}"
    )


async def _merger(undo: _Undo, entry: AuditEntry, record: dict[str, Any]) -> Outcome:
    s = undo.session
    assert undo.account.id is not None
    target = await s.get(Agent, record["target_agent_id"], populate_existing=True)
    assert target is not None, "checked before"
    pending = values_of(USER, record["user"])
    folded = [values_of(AGENT, a) for a in record["agents"]]
    followed: dict[str, list[str]] = record["followed"]
    for agent in folded:
        # Seen since: reports under its key (or an alias that followed it) came as the target's.
        keys = [agent["key"], *followed.get(str(agent["id"]), [])]
        seen = await _reported(undo, keys, entry.at)
        agent["last_seen_at"] = _latest(agent["last_seen_at"], seen)
        pending["last_seen_at"] = _latest(pending["last_seen_at"], seen)
    await s.execute(sa.insert(USER).values(**pending))
    await s.execute(sa.insert(AGENT), folded)
    await s.execute(
        sa.delete(AgentAlias).where(
            col(AgentAlias.account_id) == undo.account.id, col(AgentAlias.key).in_([a["key"] for a in folded])
        )
    )
    for agent in folded:
        keys = followed.get(str(agent["id"]), [])
        if keys:
            await s.execute(
                sa.update(AgentAlias)
                .where(col(AgentAlias.account_id) == undo.account.id, col(AgentAlias.key).in_(keys))
                .values(agent_id=agent["id"])
            )
        # Its events, re-keyed by the merge or reported under its key since, go back to it...
        back = agent["id"]
        await chunks.rekey(
            s,
            {"agent_id": target.id, "origin_agent_id": back},
            agent_id=back,
            user_id=entry.user_id,
        )
        # ... and so do those reported under the aliases that followed it.
        origins = sa.select(col(AgentAlias.origin_agent_id)).where(col(AgentAlias.agent_id) == agent["id"])
        await chunks.rekey(
            s,
            {"agent_id": target.id, "origin_agent_id": origins},
            agent_id=back,
            user_id=entry.user_id,
        )
    first = min(parse_time(a["first_seen_at"]) or undo.now for a in record["agents"])
    before = record["target"]
    if target.first_seen_at == min(parse_time(before["first_seen_at"]) or first, first):
        target.first_seen_at = parse_time(before["first_seen_at"]) or target.first_seen_at
    seen = await _reported(undo, await _keys(undo, [record["target_agent_id"]]), entry.at)
    target.last_seen_at = _latest(parse_time(before["last_seen_at"]), seen) or target.last_seen_at
    owner = await undo.user(record["owner_user_id"])
    await _times(undo, entry, owner, record["owner"], None)
    undo.refiled += [a["id"] for a in folded]
    undo.near += [entry.user_id, owner.id or 0]
    return Outcome(
        f"back in the queue with its agent(s), split from agent {target.id} of {owner.display_name}"
    )


async def _removal(undo: _Undo, entry: AuditEntry, record: dict[str, Any]) -> Outcome:
    s = undo.session
    assert undo.account.id is not None
    agent_ids = await removed.restore(s, entry.user_id)
    lifted: list[str] = record["do_not_track"]
    if lifted:
        await s.execute(
            sa.delete(DoNotTrack).where(
                col(DoNotTrack.account_id) == undo.account.id, col(DoNotTrack.key).in_(lifted)
            )
        )
    user = await undo.user(entry.user_id)
    detail = f"back with its {len(agent_ids)} agent(s) and their activity" + (
        "; its keys are off the do-not-track list" if lifted else ""
    )
    if user.status is UserStatus.LICENSED and await undo.over_limit() > 0:
        # The invariant first: it waits in the queue, keeping what it recorded while licensed.
        user.status, user.pending_reason, user.pending_since = (
            UserStatus.PENDING,
            PendingReason.OVER_LIMIT,
            undo.now,
        )
        user.licensed_at, user.licensed_until = None, undo.now
        detail += "; no license is free, so it is in the queue (OVER_LIMIT)"
    undo.refiled += agent_ids
    undo.near.append(entry.user_id)
    return Outcome(detail)


_UNDO: dict[QueueAction, Callable[[_Undo, AuditEntry, dict[str, Any]], Awaitable[Outcome]]] = {
    QueueAction.APPROVED: _approval,
    QueueAction.RELEASED: _release,
    QueueAction.ASSIGNED: _assignment,
    QueueAction.MERGED: _merger,
    QueueAction.REMOVED: _removal,
}


# ---------------------------------------------------------------------------- seen times


def _latest(*times: datetime | None) -> datetime | None:
    known = [t for t in times if t is not None]
    return max(known) if known else None


async def _keys(undo: _Undo, agent_ids: Sequence[int]) -> list[str]:
    """The keys reports of these agents come under: theirs and their aliases'."""
    found = await undo.session.execute(
        sa.union_all(
            sa.select(col(Agent.key)).where(col(Agent.id).in_(list(agent_ids))),
            sa.select(col(AgentAlias.key)).where(col(AgentAlias.agent_id).in_(list(agent_ids))),
        )
    )
    return list(found.scalars())


async def _reported(undo: _Undo, keys: Sequence[str], since: datetime) -> datetime | None:
    """When the latest report under one of these keys since ``since`` arrived (ingestion keeps
    each batch's id, with its time, for a week: longer than an undo window)."""
    return (
        await undo.session.execute(
            sa.select(sa.func.max(col(IngestBatch.created_at))).where(
                col(IngestBatch.account_id) == undo.account.id,
                col(IngestBatch.agent_key).in_(list(keys)),
                col(IngestBatch.created_at) >= since,
            )
        )
    ).scalar()


async def _times(
    undo: _Undo, entry: AuditEntry, user: User, before: dict[str, Any], gained_first: datetime | None
) -> None:
    """A user that kept its own agents: its seen times as if it had not gained the others.

    ``first_seen_at`` goes back if it is still what the action set (``gained_first``: the
    earliest first-seen time of what it gained); ``last_seen_at`` is the later of its time
    before and the latest report under its own agents' keys since the action.
    """
    first = parse_time(before["first_seen_at"])
    if first is not None and gained_first is not None and user.first_seen_at == min(first, gained_first):
        user.first_seen_at = first
    await undo.session.flush()
    own = await undo.session.execute(sa.select(col(Agent.id)).where(col(Agent.user_id) == user.id))
    seen = await _reported(undo, await _keys(undo, [a for a in own.scalars() if a is not None]), entry.at)
    user.last_seen_at = _latest(parse_time(before["last_seen_at"]), seen) or user.last_seen_at
