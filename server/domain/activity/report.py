"""The activity report: per licensed user, what they did on the days asked for.

Reports stay open whatever the queue holds: only ``LICENSED`` users are reported, every one
of them (zero activity included), most active first.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from server.domain.activity.batch import EARLIEST
from server.domain.errors import DomainError, ErrorCode
from server.domain.models import ActivityRollup, User, UserStatus

MAX_REPORT_DAYS = 366
TOP_APPS = 5


@dataclass(frozen=True, slots=True)
class AppUsage:
    app: str
    active_seconds: int


@dataclass(frozen=True, slots=True)
class UserActivity:
    user: User
    active_seconds: int
    productive_seconds: int
    unproductive_seconds: int
    top_apps: list[AppUsage]


def _day_bounds(from_day: date, to_day: date) -> tuple[datetime, datetime]:
    if to_day < from_day:
        raise DomainError(ErrorCode.INVALID_INPUT, "'to' is before 'from'", "to")
    if (to_day - from_day).days + 1 > MAX_REPORT_DAYS:
        raise DomainError(ErrorCode.INVALID_INPUT, f"a report covers at most {MAX_REPORT_DAYS} days", "to")
    if from_day < EARLIEST.date() or to_day.year > 9000:
        raise DomainError(ErrorCode.INVALID_INPUT, f"dates must be from {EARLIEST.date()} on", "from")
    lo = datetime.combine(from_day, time.min, UTC)
    hi = datetime.combine(to_day + timedelta(days=1), time.min, UTC)
    return lo, hi


async def activity_report(
    session: AsyncSession, account_id: int, from_day: date, to_day: date
) -> list[UserActivity]:
    """Per licensed user, activity that started on the given UTC days (inclusive), most active
    first: whole days, so the rollups answer it alone."""
    _day_bounds(from_day, to_day)
    r = ActivityRollup.__table__.alias("r")  # type: ignore[attr-defined]
    in_range = sa.and_(r.c.user_id == User.id, r.c.day >= from_day, r.c.day <= to_day)

    def seconds(cond: Any = None) -> Any:
        value = r.c.active_seconds if cond is None else sa.case((cond, r.c.active_seconds), else_=0)
        return sa.func.coalesce(sa.func.sum(value), 0)

    active = seconds().label("active")
    rows = (
        await session.execute(
            sa.select(
                User,
                active,
                seconds(r.c.productivity == "productive"),
                seconds(r.c.productivity == "unproductive"),
            )
            .select_from(User)
            .outerjoin(r, in_range)
            .where(User.account_id == account_id, User.status == UserStatus.LICENSED)  # type: ignore[arg-type]
            .group_by(User.id)  # type: ignore[arg-type]
            .order_by(active.desc(), User.id)  # type: ignore[arg-type]
        )
    ).all()

    apps: dict[int, list[AppUsage]] = defaultdict(list)
    app_rows = await session.execute(
        sa.select(r.c.user_id, r.c.app, sa.func.sum(r.c.active_seconds).label("s"))
        .select_from(r)
        .join(User, User.id == r.c.user_id)
        .where(
            User.account_id == account_id,  # type: ignore[arg-type]
            User.status == UserStatus.LICENSED,  # type: ignore[arg-type]
            r.c.day >= from_day,
            r.c.day <= to_day,
        )
        .group_by(r.c.user_id, r.c.app)
        .order_by(r.c.user_id, sa.desc("s"), r.c.app)
    )
    for user_id, app, total in app_rows:
        if len(apps[user_id]) < TOP_APPS:
            apps[user_id].append(AppUsage(app, int(total)))
    return [UserActivity(user, int(a), int(p), int(u), apps.get(user.id or 0, [])) for user, a, p, u in rows]
