"""The admin asking, the account and its license usage, the activity report and queue metrics."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import strawberry

from server.domain import models
from server.domain.activity.report import UserActivity as DomainUserActivity
from server.domain.events import AccountUsage
from server.domain.metrics import QueueMetrics as DomainQueueMetrics

from .activity import AppUsage
from .base import AutoApproveMode, QueueAction, Role, gid
from .users import UserType


@strawberry.type(name="Admin")
class AdminType:
    id: strawberry.ID
    email: str
    name: str
    role: Role  # type: ignore[valid-type]
    notify_on_pending: bool

    @classmethod
    def of(cls, admin: models.Admin) -> AdminType:
        return cls(
            id=gid(admin.id),
            email=admin.email,
            name=admin.name,
            role=admin.role,
            notify_on_pending=admin.notify_on_pending,
        )


@strawberry.type(name="Account")
class AccountType:
    id: strawberry.ID
    name: str
    license_limit: int
    licenses_used: int
    licenses_available: int
    pending_count: int
    manual_review: bool
    retention_days: int
    queue_version: str = strawberry.field(
        description="Opaque; changes with every write to the queue or the license usage. See SeatPlan."
    )
    auto_approve: AutoApproveMode  # type: ignore[valid-type]
    auto_approve_domains: list[str] = strawberry.field(
        description="Lower-case agent domains that OLDEST_FIRST approves; empty: every domain."
    )
    queue_target_hours: int | None = strawberry.field(
        description="How long a pending user may wait before it is overdue; null: no target."
    )

    @classmethod
    def of(cls, account: models.Account, usage: AccountUsage) -> AccountType:
        return cls(
            id=gid(account.id),
            name=account.name,
            license_limit=usage.license_limit,
            licenses_used=usage.licenses_used,
            licenses_available=max(usage.license_limit - usage.licenses_used, 0),
            pending_count=usage.pending_count,
            manual_review=usage.manual_review,
            retention_days=account.retention_days,
            queue_version=str(usage.plan_version),
            auto_approve=account.auto_approve,
            auto_approve_domains=list(account.auto_approve_domains),
            queue_target_hours=account.queue_target_hours,
        )


@strawberry.type
class UserActivity:
    user: UserType
    active_seconds: int
    productive_seconds: int
    unproductive_seconds: int
    top_apps: list[AppUsage]

    @classmethod
    def of(cls, row: DomainUserActivity) -> UserActivity:
        return cls(
            user=UserType.of(row.user),
            active_seconds=row.active_seconds,
            productive_seconds=row.productive_seconds,
            unproductive_seconds=row.unproductive_seconds,
            top_apps=[AppUsage.of(a) for a in row.top_apps],
        )


@strawberry.type
class ActivityReport:
    from_: date = strawberry.field(name="from")
    to: date
    rows: list[UserActivity]


@strawberry.type
class ActionCount:
    action: QueueAction  # type: ignore[valid-type]
    count: int


@strawberry.type
class QueueMetrics:
    pending_count: int
    oldest_pending_since: datetime | None
    resolved_count: int
    average_resolution_seconds: float | None
    median_resolution_seconds: float | None
    p90_resolution_seconds: float | None
    resolved_by_action: list[ActionCount]
    overdue_count: int = strawberry.field(description="Pending users past their dueAt now.")
    within_target_ratio: float | None = strawberry.field(
        description="Share of the resolutions in the window that took at most queueTargetHours; "
        "null without a target or resolutions."
    )

    @classmethod
    def of(cls, m: DomainQueueMetrics) -> QueueMetrics:
        return cls(
            pending_count=m.pending_count,
            oldest_pending_since=m.oldest_pending_since,
            resolved_count=m.resolved_count,
            average_resolution_seconds=m.average_resolution_seconds,
            median_resolution_seconds=m.median_resolution_seconds,
            p90_resolution_seconds=m.p90_resolution_seconds,
            overdue_count=m.overdue_count,
            within_target_ratio=m.within_target_ratio,
            resolved_by_action=[ActionCount(action=a, count=n) for a, n in m.resolved_by_action],
        )


FromDate = Annotated[date, strawberry.argument(name="from")]
