"""Whether an audit entry can still be undone, and until when (``AuditEntry.undoableUntil``).

One check, used twice, as seat plans are: by ``undoActions`` under the account's lock, entry
by entry, and by the audit log for the entries it shows. An entry can be undone when

* it is an approval, assignment, merge, removal or release that recorded its undo
  (:mod:`server.domain.undo.records`), not already undone, and younger than the window;
* it is still the last word on its user: no later entry for the same user stands (one that
  was itself undone does not). A user acted on again since (released, approved, removed,
  moved by a lowered limit) cannot have the earlier action taken back over the later one;
* what it changed is still there: an assignment's agents still belong to the target user;
  a merge's target agent and the aliases the merge left still exist; a removed user's rows
  are still kept, and no agent has taken one of its keys since (its agent reported again,
  and became a new user).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from server.domain.models import KEY_SEPARATOR, Agent, AgentAlias, AuditEntry, QueueAction, User, UserStatus
from server.domain.undo import removed

REVERSIBLE = frozenset(
    {
        QueueAction.APPROVED,
        QueueAction.ASSIGNED,
        QueueAction.MERGED,
        QueueAction.REMOVED,
        QueueAction.RELEASED,
    }
)


def undoable_before(entry: AuditEntry, window: timedelta) -> datetime:
    """The end of the entry's undo window."""
    return entry.at + window


async def blockers(
    session: AsyncSession, account_id: int, entries: Sequence[AuditEntry], now: datetime, window: timedelta
) -> dict[int, str]:
    """Why each of ``entries`` cannot be undone now; an entry absent from the answer can."""
    why: dict[int, str] = {}
    for e in entries:
        assert e.id is not None
        if window <= timedelta(0):
            why[e.id] = "undo is turned off (PLM_UNDO_HOURS is 0)"
        elif e.action not in REVERSIBLE or e.undo is None:
            why[e.id] = f"{e.action.value} entries cannot be undone"
        elif e.undone_by is not None:
            why[e.id] = f"it was already undone (entry {e.undone_by})"
        elif undoable_before(e, window) <= now:
            why[e.id] = f"its undo window ended at {undoable_before(e, window).isoformat()}"
    live = [e for e in entries if e.id not in why]
    if live:
        why.update(await _superseded(session, live))
        live = [e for e in live if e.id not in why]
    if live:
        why.update(await _moved_on(session, account_id, live))
    return why


async def _superseded(session: AsyncSession, entries: Sequence[AuditEntry]) -> dict[int, str]:
    later = aliased(AuditEntry)
    rows = await session.execute(
        sa.select(col(AuditEntry.id), col(later.id), col(later.action))
        .join(later, col(later.user_id) == col(AuditEntry.user_id))
        .where(
            col(AuditEntry.id).in_([e.id for e in entries]),
            col(later.account_id) == col(AuditEntry.account_id),
            col(later.id) > col(AuditEntry.id),
            col(later.action) != QueueAction.UNDONE,
            col(later.undone_by).is_(None),
        )
        .order_by(col(later.id))
    )
    names = {e.id: e.user_display_name for e in entries}
    why: dict[int, str] = {}
    for entry_id, later_id, action in rows:
        assert entry_id is not None
        why.setdefault(
            entry_id,
            f"{names[entry_id]} was acted on again since ({QueueAction(action).value}, entry {later_id})",
        )
    return why


async def _moved_on(session: AsyncSession, account_id: int, entries: Sequence[AuditEntry]) -> dict[int, str]:
    """The state checks of each kind of entry, in one query per kind."""
    why: dict[int, str] = {}
    by_action: dict[QueueAction, list[AuditEntry]] = {}
    for e in entries:
        by_action.setdefault(e.action, []).append(e)
    wanted = {
        QueueAction.APPROVED: UserStatus.LICENSED,
        QueueAction.RELEASED: UserStatus.PENDING,
    }
    users = [e for a in wanted for e in by_action.get(a, [])]
    if users:
        status = dict(
            (
                await session.execute(
                    sa.select(col(User.id), col(User.status)).where(
                        col(User.id).in_([e.user_id for e in users])
                    )
                )
            ).all()
        )
        for e in users:
            if status.get(e.user_id) != wanted[e.action]:
                why[e.id or 0] = f"{e.user_display_name} is no longer {wanted[e.action].value}"
    why.update(await _assignments(session, by_action.get(QueueAction.ASSIGNED, [])))
    why.update(await _mergers(session, account_id, by_action.get(QueueAction.MERGED, [])))
    why.update(await _removals(session, account_id, by_action.get(QueueAction.REMOVED, [])))
    return why


def _undo(entry: AuditEntry) -> dict[str, Any]:
    assert entry.undo is not None
    return entry.undo


async def _assignments(session: AsyncSession, entries: Sequence[AuditEntry]) -> dict[int, str]:
    if not entries:
        return {}
    agent_ids = [a for e in entries for a in _undo(e)["agent_ids"]]
    owner = dict(
        (
            await session.execute(
                sa.select(col(Agent.id), col(Agent.user_id)).where(col(Agent.id).in_(agent_ids))
            )
        ).all()
    )
    why: dict[int, str] = {}
    for e in entries:
        undo = _undo(e)
        if any(owner.get(a) != undo["target_user_id"] for a in undo["agent_ids"]):
            why[e.id or 0] = (
                f"the agents of {e.user_display_name} no longer belong to user {undo['target_user_id']} "
                "(it was removed, assigned or merged since)"
            )
    return why


async def _mergers(session: AsyncSession, account_id: int, entries: Sequence[AuditEntry]) -> dict[int, str]:
    if not entries:
        return {}
    keys = [a["key"] for e in entries for a in _undo(e)["agents"]]
    alias_of = dict(
        (
            await session.execute(
                sa.select(col(AgentAlias.key), col(AgentAlias.agent_id)).where(
                    col(AgentAlias.account_id) == account_id, col(AgentAlias.key).in_(keys)
                )
            )
        ).all()
    )
    targets = [_undo(e)["target_agent_id"] for e in entries]
    present = set(
        (await session.execute(sa.select(col(Agent.id)).where(col(Agent.id).in_(targets)))).scalars()
    )
    why: dict[int, str] = {}
    for e in entries:
        undo = _undo(e)
        target = undo["target_agent_id"]
        if target not in present:
            why[e.id or 0] = f"the agent it was merged into ({target}) is gone (removed or merged since)"
        elif any(alias_of.get(a["key"]) != target for a in undo["agents"]):
            why[e.id or 0] = f"the keys of {e.user_display_name} no longer lead to agent {target}"
    return why


async def _removals(session: AsyncSession, account_id: int, entries: Sequence[AuditEntry]) -> dict[int, str]:
    if not entries:
        return {}
    user_ids = [e.user_id for e in entries]
    kept = await removed.kept(session, user_ids)
    taken = await removed.keys_taken(session, account_id, user_ids)
    why: dict[int, str] = {}
    for e in entries:
        if e.user_id not in kept:
            why[e.id or 0] = f"the data of {e.user_display_name} was deleted for good"
        elif keys := taken.get(e.user_id):
            shown = ", ".join(_shown(k) for k in keys[:3])
            why[e.id or 0] = (
                f"an agent of {e.user_display_name} reported again since and is a new user now ({shown}): "
                "remove that user first"
            )
    return why


def _shown(key: str) -> str:
    device, domain, logon = key.split(KEY_SEPARATOR)
    return f"{domain}\\{logon} on {device}"


async def undoable_until(
    session: AsyncSession, account_id: int, entry_ids: Sequence[int], now: datetime, window: timedelta
) -> dict[int, datetime | None]:
    """Per entry of the account, until when it can be undone; None when it cannot (the
    audit log's ``undoableUntil``). Entries past the window are not checked further."""
    entries = list(
        (
            await session.execute(
                sa.select(AuditEntry).where(
                    col(AuditEntry.account_id) == account_id,
                    col(AuditEntry.id).in_(list(entry_ids)),
                    col(AuditEntry.at) > now - window,
                    col(AuditEntry.undo).is_not(None),
                )
            )
        ).scalars()
    )
    why = await blockers(session, account_id, entries, now, window)
    return {e.id or 0: None if e.id in why else undoable_before(e, window) for e in entries}
