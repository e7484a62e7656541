"""The admin actions on the queue: approve, assign, merge, remove, and the account's settings.

Each runs inside one write transaction the caller opened, takes the account's lock first
(:func:`server.domain.changes.lock_account`), refuses with a :class:`DomainError` before
writing anything, writes one audit entry per affected user and records one queue event
per affected user, published after the commit (:func:`server.domain.changes.finish`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.domain import plans
from server.domain.activity import chunks
from server.domain.changes import (
    ActionResult,
    Actor,
    audit,
    check_ids,
    count_users,
    finish,
    load_users,
    lock_account,
    make_licensed,
    make_pending,
    queue_arrival,
    require_pending,
)
from server.domain.errors import DomainError, ErrorCode
from server.domain.models import (
    Account,
    Agent,
    AgentAlias,
    AutoApproveMode,
    DoNotTrack,
    PendingReason,
    QueueAction,
    User,
    UserStatus,
)
from server.domain.settings_history import SettingsChange
from server.domain.suggestions import store as suggestions
from server.domain.undo import records, removed


async def approve(
    session: AsyncSession,
    actor: Actor,
    user_ids: Sequence[int],
    now: datetime,
    expected_version: str | None = None,
) -> ActionResult:
    """License every given pending user, or none (docs/behaviour.md, Admin actions).

    Applies :func:`server.domain.plans.plan_approval`'s plan, the one a preview shows;
    ``expected_version``: the previewed plan's ``queueVersion`` (PLAN_CHANGED if it moved).
    """
    actor.require_admin()
    account = await lock_account(session, actor.account_id)
    plans.check_version(account, expected_version)
    plan = await plans.plan_approval(session, account, user_ids)
    changes: list[tuple[QueueAction, int, int | None]] = []
    for user in plan.approve:
        entered, reason, until = user.pending_since, user.pending_reason, user.licensed_until
        make_licensed(user, now)
        assert user.id is not None and reason is not None
        detail = f"approved (was {reason.value})"
        audit(
            session, actor, QueueAction.APPROVED, user, detail, now, entered, records.approval(reason, until)
        )
        changes.append((QueueAction.APPROVED, user.id, actor.admin_id))
    # Suggestions stay: a licensed user shows its likely matches too (docs/behaviour.md).
    usage, events = await finish(session, account, changes, now)
    return ActionResult(account=account, usage=usage, events=events, users=plan.approve)


async def assign(
    session: AsyncSession, actor: Actor, pending_user_id: int, target_user_id: int, now: datetime
) -> ActionResult:
    """Give the pending user's agents and activity to an existing user; delete the pending user."""
    actor.require_admin()
    account = await lock_account(session, actor.account_id)
    (pending,) = await load_users(session, actor.account_id, [pending_user_id], "pendingUserId")
    require_pending([pending], "pendingUserId")
    (target,) = await load_users(session, actor.account_id, [target_user_id], "targetUserId")
    if target.id == pending.id:
        raise DomainError(ErrorCode.CONFLICT, "a user cannot be assigned to itself", "targetUserId")
    assert pending.id is not None and target.id is not None
    moved = list(
        (await session.execute(sa.select(col(Agent.id)).where(col(Agent.user_id) == pending.id))).scalars()
    )
    undo = records.assignment(pending, [a for a in moved if a is not None], target)
    await session.execute(
        sa.update(Agent).where(Agent.user_id == pending.id).values(user_id=target.id)  # type: ignore[arg-type]
    )
    await chunks.rekey(session, {"user_id": pending.id}, user_id=target.id)
    target.first_seen_at = min(target.first_seen_at, pending.first_seen_at)
    target.last_seen_at = max(target.last_seen_at, pending.last_seen_at)
    audit(
        session,
        actor,
        QueueAction.ASSIGNED,
        pending,
        f"assigned to {target.display_name} ({target.id}, {target.status.value})",
        now,
        pending.pending_since,
        undo,
    )
    await session.delete(pending)
    usage, events = await finish(
        session, account, [(QueueAction.ASSIGNED, pending.id, actor.admin_id)], now, target_user_id=target.id
    )
    await suggestions.refresh_near(session, actor.account_id, [target.id], now)
    return ActionResult(account=account, usage=usage, events=events, users=[target])


async def merge(
    session: AsyncSession, actor: Actor, pending_user_id: int, target_agent_id: int, now: datetime
) -> ActionResult:
    """Fold the pending user's agent(s) into an existing agent; their keys become aliases."""
    actor.require_admin()
    account = await lock_account(session, actor.account_id)
    (pending,) = await load_users(session, actor.account_id, [pending_user_id], "pendingUserId")
    require_pending([pending], "pendingUserId")
    target = (
        await session.execute(
            sa.select(Agent).where(Agent.account_id == actor.account_id, Agent.id == target_agent_id)  # type: ignore[arg-type]
        )
    ).scalar_one_or_none()
    if target is None:
        raise DomainError(ErrorCode.NOT_FOUND, f"no agent with id {target_agent_id}", "targetAgentId")
    if target.user_id == pending.id:
        raise DomainError(
            ErrorCode.CONFLICT, "the target agent belongs to the pending user itself", "targetAgentId"
        )
    assert pending.id is not None and target.id is not None
    folded = list(
        (await session.execute(sa.select(Agent).where(Agent.user_id == pending.id))).scalars()  # type: ignore[arg-type]
    )
    folded_ids = [a.id for a in folded]
    owner = await session.get(User, target.user_id)
    assert owner is not None
    followed: dict[int, list[str]] = {a.id: [] for a in folded if a.id is not None}
    for agent_id, key in await session.execute(
        sa.select(col(AgentAlias.agent_id), col(AgentAlias.key)).where(
            col(AgentAlias.agent_id).in_(folded_ids)
        )
    ):
        followed[agent_id].append(key)
    undo = records.merger(pending, folded, target, owner, followed)
    # Each event remembers the key it was reported under (an alias's origin), so an undo
    # gives it back to its agent, and so do reports under the folded keys from now on.
    await chunks.rekey(session, {"agent_id": folded_ids}, agent_id=target.id, user_id=target.user_id)
    # Aliases the folded agents already had now lead to the target too.
    await session.execute(
        sa.update(AgentAlias).where(AgentAlias.agent_id.in_(folded_ids)).values(agent_id=target.id)  # type: ignore[attr-defined]
    )
    for agent in folded:
        session.add(
            AgentAlias(
                account_id=agent.account_id,
                agent_id=target.id,
                device_name=agent.device_name,
                domain=agent.domain,
                logon_name=agent.logon_name,
                key=agent.key,
                created_at=now,
                origin_agent_id=agent.id,
            )
        )
        target.first_seen_at = min(target.first_seen_at, agent.first_seen_at)
        target.last_seen_at = max(target.last_seen_at, agent.last_seen_at)
        await session.delete(agent)
    owner.last_seen_at = max(owner.last_seen_at, pending.last_seen_at)
    names = ", ".join(f"{a.domain}\\{a.logon_name} on {a.device_name}" for a in folded)
    audit(
        session,
        actor,
        QueueAction.MERGED,
        pending,
        f"merged {names} into agent {target.id} ({target.domain}\\{target.logon_name} on "
        f"{target.device_name}) of {owner.display_name}",
        now,
        pending.pending_since,
        undo,
    )
    # The agents' rows must go before the user's (foreign key) and after the aliases exist.
    await session.flush()
    await session.delete(pending)
    usage, events = await finish(
        session, account, [(QueueAction.MERGED, pending.id, actor.admin_id)], now, target_user_id=owner.id
    )
    await suggestions.refresh_near(session, actor.account_id, [target.user_id], now)
    return ActionResult(account=account, usage=usage, events=events, agent=target, users=[owner])


async def remove(
    session: AsyncSession,
    actor: Actor,
    user_ids: Sequence[int],
    do_not_track: bool,
    now: datetime,
) -> ActionResult:
    """Delete users of any status with their agents and activity, all or nothing.

    The rows are kept, hidden, in :mod:`server.domain.undo.removed` until the undo window ends.
    """
    actor.require_admin()
    ids = check_ids(user_ids, "userIds")
    account = await lock_account(session, actor.account_id)
    users = await load_users(session, actor.account_id, ids, "userIds")
    agents = list(
        (await session.execute(sa.select(Agent).where(Agent.user_id.in_(ids)))).scalars()  # type: ignore[attr-defined]
    )
    agent_ids = [a.id for a in agents]
    aliases = list(
        (await session.execute(sa.select(AgentAlias).where(AgentAlias.agent_id.in_(agent_ids)))).scalars()  # type: ignore[attr-defined]
    )
    added = (
        await _add_do_not_track(session, actor.account_id, [*agents, *aliases], now)
        if do_not_track
        else set()
    )
    owner_of = {a.id: a.user_id for a in agents}
    keys_of: dict[int, list[str]] = {i: [] for i in ids}
    for agent_id, key in [*((a.id, a.key) for a in agents), *((a.agent_id, a.key) for a in aliases)]:
        if key in added:
            keys_of[owner_of[agent_id]].append(key)
    await removed.keep(session, ids, now)
    await chunks.delete_users(session, ids)
    await session.execute(sa.delete(AgentAlias).where(AgentAlias.agent_id.in_(agent_ids)))  # type: ignore[attr-defined]
    await session.execute(sa.delete(Agent).where(Agent.user_id.in_(ids)))  # type: ignore[attr-defined]
    changes: list[tuple[QueueAction, int, int | None]] = []
    for user in users:
        assert user.id is not None
        detail = f"removed ({user.status.value})" + (
            "; agent keys on the do-not-track list" if do_not_track else ""
        )
        undo = records.removal(keys_of[user.id])
        audit(session, actor, QueueAction.REMOVED, user, detail, now, user.pending_since, undo)
        changes.append((QueueAction.REMOVED, user.id, actor.admin_id))
    await session.execute(sa.delete(User).where(User.id.in_(ids)))  # type: ignore[union-attr]
    for user in users:
        session.expunge(user)
    approved, by_rule = await auto_approve(session, account, now)
    usage, events = await finish(session, account, changes + by_rule, now)
    return ActionResult(account=account, usage=usage, events=events, users=approved, removed_user_ids=ids)


async def _add_do_not_track(
    session: AsyncSession, account_id: int, keyed: Sequence[Agent | AgentAlias], now: datetime
) -> set[str]:
    """Put these keys on the do-not-track list; returns those that were not on it yet."""
    keys = {k.key: k for k in keyed}
    if not keys:
        return set()
    existing = set(
        (
            await session.execute(
                sa.select(col(DoNotTrack.key)).where(
                    col(DoNotTrack.account_id) == account_id, col(DoNotTrack.key).in_(keys)
                )
            )
        ).scalars()
    )
    for key, k in keys.items():
        if key not in existing:
            session.add(
                DoNotTrack(
                    account_id=account_id,
                    device_name=k.device_name,
                    domain=k.domain,
                    logon_name=k.logon_name,
                    key=key,
                    created_at=now,
                )
            )
    return set(keys) - existing


async def update_settings(
    session: AsyncSession,
    actor: Actor,
    now: datetime,
    *,
    manual_review: bool | None = None,
    license_limit: int | None = None,
    auto_approve: AutoApproveMode | None = None,
    auto_approve_domains: Sequence[str] | None = None,
    queue_target_hours: int | None = None,
    expected_version: str | None = None,
) -> ActionResult:
    """Toggle manual review and/or change the limit; a lowered limit queues the newest licensed.

    Applies :func:`server.domain.plans.plan_settings`'s plan, the one a preview shows;
    ``expected_version``: the previewed plan's ``queueVersion`` (PLAN_CHANGED if it moved).
    """
    actor.require_admin()
    change = plans.check_settings(
        plans.SettingsInput(
            manual_review=manual_review,
            license_limit=license_limit,
            auto_approve=auto_approve,
            auto_approve_domains=auto_approve_domains,
            queue_target_hours=queue_target_hours,
        )
    )
    account = await lock_account(session, actor.account_id)
    plans.check_version(account, expected_version)
    plan = await plans.plan_settings(session, account, change)
    before = _settings_of(account)
    if change.manual_review is not None:
        account.manual_review = change.manual_review
    account.license_limit = plan.license_limit
    if change.auto_approve is not None:
        account.auto_approve = change.auto_approve
    if change.auto_approve_domains is not None:
        account.auto_approve_domains = list(change.auto_approve_domains)
    if change.queue_target_hours is not None:
        account.queue_target_hours = change.queue_target_hours or None
    changes: list[tuple[QueueAction, int, int | None]] = []
    for user in plan.move_to_pending:
        assert user.id is not None
        make_pending(user, PendingReason.OVER_LIMIT, now)
        audit(
            session,
            None,
            QueueAction.ENTERED,
            user,
            f"license limit lowered from {before.license_limit} to {plan.license_limit}",
            now,
        )
        user.licensed_until = now
        queue_arrival(session, user, await first_agent(session, user.id), now)
        changes.append((QueueAction.ENTERED, user.id, None))
    moved = len(changes)
    changes += license_by_rule(session, plan.approve, now)
    changed = _settings_of(account) != before
    if (account.manual_review, account.license_limit) != (before.manual_review, before.license_limit):
        session.add(
            SettingsChange(
                account_id=actor.account_id,
                at=now,
                actor_id=actor.admin_id,
                manual_review_before=before.manual_review,
                manual_review_after=account.manual_review,
                license_limit_before=before.license_limit,
                license_limit_after=account.license_limit,
                moved_to_pending=moved,
            )
        )
    # A no-op write changes no plan, unless the rule licensed someone into free licenses.
    usage, events = await finish(session, account, changes, now, plan_changed=changed or bool(changes))
    await suggestions.compute(
        session, actor.account_id, [uid for a, uid, _ in changes if a is QueueAction.ENTERED], now
    )
    return ActionResult(account=account, usage=usage, events=events, users=plan.approve)


@dataclass(frozen=True, slots=True)
class _Settings:
    manual_review: bool
    license_limit: int
    auto_approve: AutoApproveMode
    auto_approve_domains: tuple[str, ...]
    queue_target_hours: int | None


def _settings_of(account: Account) -> _Settings:
    return _Settings(
        account.manual_review,
        account.license_limit,
        account.auto_approve,
        tuple(account.auto_approve_domains),
        account.queue_target_hours,
    )


def license_by_rule(
    session: AsyncSession, users: Sequence[User], now: datetime
) -> list[tuple[QueueAction, int, int | None]]:
    """License the users the auto-approval rule chose (plans.auto_approvals): audited and
    published like an admin's approval, with no actor and the rule named."""
    changes: list[tuple[QueueAction, int, int | None]] = []
    for user in users:
        entered, reason, until = user.pending_since, user.pending_reason, user.licensed_until
        assert user.id is not None and reason is not None
        make_licensed(user, now)
        detail = f"approved by the auto-approval rule (was {reason.value})"
        audit(
            session, None, QueueAction.APPROVED, user, detail, now, entered, records.approval(reason, until)
        )
        changes.append((QueueAction.APPROVED, user.id, None))
    return changes


async def auto_approve(
    session: AsyncSession, account: Account, now: datetime, exclude: Sequence[int] = ()
) -> tuple[list[User], list[tuple[QueueAction, int, int | None]]]:
    """After a write that may have freed licenses: the rule's approvals, applied (docs/behaviour.md, Automation)."""
    assert account.id is not None
    await session.flush()
    used = await count_users(session, account.id, UserStatus.LICENSED)
    users = await plans.auto_approvals(
        session,
        account.id,
        account.auto_approve,
        account.auto_approve_domains,
        account.license_limit - used,
        exclude,
    )
    return users, license_by_rule(session, users, now)


async def first_agent(session: AsyncSession, user_id: int) -> Agent | None:
    return (
        await session.execute(
            sa.select(Agent).where(Agent.user_id == user_id).order_by(Agent.id).limit(1)  # type: ignore[arg-type]
        )
    ).scalar_one_or_none()
