"""Queue metrics from the audit trail: how long people wait in the Pending Licenses queue.

Every exit from the queue (approved, assigned, merged, removed while pending) writes an
audit entry carrying ``queue_entered_at``, so a resolution time is ``at - queue_entered_at``
of one row: no join, and the figures survive the deletion of the users they describe. An
exit that was undone (``undone_by``) is no resolution: the user went back to the queue.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.domain.errors import DomainError, ErrorCode
from server.domain.models import Account, AuditEntry, QueueAction, User, UserStatus

MAX_DAYS = 365
EXITS = (QueueAction.APPROVED, QueueAction.ASSIGNED, QueueAction.MERGED, QueueAction.REMOVED)


@dataclass(frozen=True, slots=True)
class QueueMetrics:
    pending_count: int
    oldest_pending_since: datetime | None
    resolved_count: int
    average_resolution_seconds: float | None
    median_resolution_seconds: float | None
    # Every exit action, in a fixed order, zero counts included.
    resolved_by_action: list[tuple[QueueAction, int]]
    # Nearest rank: the smallest wait at least 90% of the resolutions took no longer than.
    p90_resolution_seconds: float | None = None
    # Pending users waiting longer than the account's queue target now (0 without a target).
    overdue_count: int = 0
    # The share of the resolutions that took at most the target; None without one or them.
    within_target_ratio: float | None = None


def nearest_rank(values: list[float], percent: float) -> float | None:
    """The nearest-rank percentile: the value at rank ceil(percent/100 * n) of the sorted values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(math.ceil(percent / 100 * len(ordered)), 1)
    return ordered[rank - 1]


async def queue_metrics(session: AsyncSession, account_id: int, days: int, now: datetime) -> QueueMetrics:
    """The queue now, and its exits during the last ``days`` days (1-365)."""
    if not 1 <= days <= MAX_DAYS:
        raise DomainError(ErrorCode.INVALID_INPUT, f"'days' must be from 1 to {MAX_DAYS}; got {days}", "days")
    pending_count, oldest = (
        await session.execute(
            sa.select(sa.func.count(), sa.func.min(col(User.pending_since))).where(
                User.account_id == account_id,  # type: ignore[arg-type]
                User.status == UserStatus.PENDING,  # type: ignore[arg-type]
            )
        )
    ).one()
    rows = (
        await session.execute(
            sa.select(col(AuditEntry.action), col(AuditEntry.at), col(AuditEntry.queue_entered_at)).where(
                AuditEntry.account_id == account_id,  # type: ignore[arg-type]
                AuditEntry.action.in_(EXITS),  # type: ignore[attr-defined]
                AuditEntry.at >= now - timedelta(days=days),  # type: ignore[arg-type]
                # A licensed user's removal is no exit from the queue: it has no entry time.
                AuditEntry.queue_entered_at.is_not(None),  # type: ignore[union-attr]
                # An exit that was undone is not a resolution: the user is back in the queue.
                col(AuditEntry.undone_by).is_(None),
            )
        )
    ).all()
    target_hours = (
        await session.execute(sa.select(col(Account.queue_target_hours)).where(col(Account.id) == account_id))
    ).scalar_one_or_none()
    overdue = 0
    if target_hours is not None:
        overdue = int(
            (
                await session.execute(
                    sa.select(sa.func.count()).where(
                        User.account_id == account_id,  # type: ignore[arg-type]
                        User.status == UserStatus.PENDING,  # type: ignore[arg-type]
                        col(User.pending_since) <= now - timedelta(hours=target_hours),
                    )
                )
            ).scalar_one()
        )
    counts = dict.fromkeys(EXITS, 0)
    durations: list[float] = []
    for action, at, entered in rows:
        if entered is None:  # excluded by the query; kept for the type checker
            continue
        counts[QueueAction(action)] += 1
        durations.append(max((at - entered).total_seconds(), 0.0))
    return QueueMetrics(
        pending_count=int(pending_count),
        oldest_pending_since=oldest,
        resolved_count=len(durations),
        average_resolution_seconds=statistics.fmean(durations) if durations else None,
        median_resolution_seconds=statistics.median(durations) if durations else None,
        resolved_by_action=list(counts.items()),
        p90_resolution_seconds=nearest_rank(durations, 90),
        overdue_count=overdue,
        within_target_ratio=(
            sum(d <= target_hours * 3600 for d in durations) / len(durations)
            if target_hours is not None and durations
            else None
        ),
    )
