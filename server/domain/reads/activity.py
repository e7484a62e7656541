"""One user's activity over its last days, and when its latest activity ended.

**The window** (docs/behaviour.md, Activity of one user). ``days`` (1 to :data:`MAX_DAYS`)
rows, one per UTC date from ``today - (days - 1)`` to today, oldest first, days without
activity included. The totals cover the rolling window ``[now - days x 24 h, now]``: the
rule retention applies (:func:`server.domain.retention.cutoff`), so for a user pending since
it first appeared, ``days = retentionDays`` counts exactly what retention keeps, which is
what ``PendingInfo`` counts. The window's first hours, before the oldest row's midnight, are
counted in the oldest row, so the rows always add up to the totals. An event counts where it
starts; one an agent dated ahead of the server's clock (ingestion accepts up to a day) counts
in today's row, as PendingInfo counts it. Productive and unproductive seconds come from each event's productivity; the top
apps are the :data:`~server.domain.activity.report.TOP_APPS` most active, ties by name.

**Cost.** Read from the rollups kept at ingest (:mod:`server.domain.activity.chunks`), never
by loading events: for any number of users, one statement sums the rows wholly inside the
window by user and UTC day, one by user and app and finds the rows the window's ends cut
(only its first and last day can hold one); their events alone are read from the chunks of
that day. The latest end is one statement: per user, the rows of its latest day and of the
day with rows before it (an event lasts at most a day), found by index seeks.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from server.domain.activity import chunks
from server.domain.activity.batch import MAX_CLOCK_SKEW
from server.domain.activity.chunks import ROLLUP
from server.domain.activity.report import TOP_APPS, AppUsage
from server.domain.errors import DomainError, ErrorCode
from server.domain.models import UTCDateTime
from server.domain.reads.rows import USER
from server.domain.retention import cutoff

MAX_DAYS = 90
# What `activity` answers for when no `days` is asked.
DEFAULT_DAYS = 30


# ---------------------------------------------------------------------------- statements

_R = ROLLUP.c
_IN_DAYS = sa.and_(
    _R.user_id.in_(sa.bindparam("ids", expanding=True)),
    _R.day >= sa.bindparam("lo_day", type_=sa.Date()),
    _R.day <= sa.bindparam("hi_day", type_=sa.Date()),
)
_INSIDE = sa.and_(_R.first_start >= sa.bindparam("lo"), _R.last_start <= sa.bindparam("hi"))


def _seconds(productivity: str | None = None) -> Any:
    value = (
        _R.active_seconds
        if productivity is None
        else sa.case((_R.productivity == productivity, _R.active_seconds), else_=0)
    )
    return sa.func.coalesce(sa.func.sum(value), 0)


_BY_DAY = (
    sa.select(_R.user_id, _R.day, _seconds(), _seconds("productive"), _seconds("unproductive"))
    .where(_IN_DAYS, _INSIDE)
    .group_by(_R.user_id, _R.day)
)


def _none(type_: Any) -> Any:
    return sa.cast(sa.null(), type_)


# Per user and app, the seconds of the rows wholly inside the window; and in the same
# statement (agent_id not null), the rows the window's ends cut: some of their events are in
# it, some not. Only the window's first and last days can hold one.
_APPS_AND_CUT = sa.union_all(
    sa.select(
        _R.user_id,
        _R.app,
        _seconds(),
        _none(sa.Integer()),
        _none(sa.Integer()),
        _none(sa.Date()),
        _none(sa.String()),
    )
    .where(_IN_DAYS, _INSIDE)
    .group_by(_R.user_id, _R.app),
    sa.select(
        _R.user_id, _R.app, _none(sa.BigInteger()), _R.agent_id, _R.origin_agent_id, _R.day, _R.productivity
    ).where(
        _IN_DAYS,
        _R.day.in_([sa.bindparam("lo_day", type_=sa.Date()), sa.bindparam("hi_day", type_=sa.Date())]),
        sa.not_(_INSIDE),
        _R.last_start >= sa.bindparam("lo"),
        _R.first_start <= sa.bindparam("hi"),
    ),
)


def _max_day(alias: str, before: Any = None) -> Any:
    """A user's latest day with rollup rows (before ``before``, when given): an index seek."""
    r = ROLLUP.alias(alias)
    where = [r.c.user_id == USER.c.id] + ([] if before is None else [r.c.day < before])
    return sa.select(sa.func.max(r.c.day)).where(*where).correlate(USER).scalar_subquery()


# The latest end lies among the events of the user's latest day and of the day with events
# before it (an event lasts at most a day, so one starting earlier ends before the latest
# day's first start): three index seeks and two days of rows per user, one statement.
_LATEST_DAY = _max_day("latest_day")
_FROM_DAY = sa.func.coalesce(_max_day("prior_day", _LATEST_DAY), _LATEST_DAY)
_ENDED = ROLLUP.alias("ended")
_LAST_END = sa.select(
    USER.c.id,
    sa.type_coerce(
        sa.select(sa.func.max(_ENDED.c.last_end))
        .where(_ENDED.c.user_id == USER.c.id, _ENDED.c.day >= _FROM_DAY)
        .correlate(USER)
        .scalar_subquery(),
        UTCDateTime(),
    ),
).where(USER.c.account_id == sa.bindparam("account_id"), USER.c.id.in_(sa.bindparam("ids", expanding=True)))


# ---------------------------------------------------------------------------- reads


@dataclass(frozen=True, slots=True)
class DayActivity:
    """One UTC day's row (completed as the API's ``DailyActivity`` as it is)."""

    date: dt.date
    active_seconds: int = 0
    productive_seconds: int = 0
    unproductive_seconds: int = 0


@dataclass(frozen=True, slots=True)
class ActivitySummary:
    """A user's activity over a window (completed as the API's ``ActivitySummary`` as it is)."""

    days: int
    active_seconds: int
    productive_seconds: int
    unproductive_seconds: int
    top_apps: list[AppUsage]
    daily: list[DayActivity]


@dataclass(frozen=True, slots=True)
class Window:
    """Where ``days`` of activity start and end at ``now``, and its first row's date."""

    start: datetime
    end: datetime
    first_day: date

    @classmethod
    def of(cls, days: int, now: datetime) -> Window:
        check_days(days)
        return cls(
            start=cutoff(now, days), end=now, first_day=now.astimezone(UTC).date() - timedelta(days=days - 1)
        )


def check_days(days: int) -> None:
    if not 1 <= days <= MAX_DAYS:
        raise DomainError(ErrorCode.INVALID_INPUT, f"days must be from 1 to {MAX_DAYS}; got {days}", "days")


async def activity_by_user(
    session: AsyncSession, user_ids: Sequence[int], days: int, now: datetime
) -> dict[int, ActivitySummary]:
    """Every given user's activity over the window of ``days`` ending ``now``, in two statements.

    ``user_ids`` are ids the caller already scoped to one account (as the DataLoaders' are).
    """
    window = Window.of(days, now)
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    # Events an agent dated ahead of the server's clock (ingestion accepts MAX_CLOCK_SKEW)
    # are stored, so PendingInfo counts them: they count here too, in today's row.
    hi = window.end + MAX_CLOCK_SKEW
    params = {
        "ids": ids,
        "lo": window.start,
        "hi": hi,
        "lo_day": window.start.astimezone(UTC).date(),
        "hi_day": hi.astimezone(UTC).date(),
    }
    today = window.end.astimezone(UTC).date()
    per_day: dict[int, dict[date, tuple[int, int, int]]] = defaultdict(dict)
    app_seconds: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def add_day(user_id: int, day: date, active: int, productive: int, unproductive: int) -> None:
        # The window's hours before the first row's midnight count in the first row.
        row = min(max(day, window.first_day), today)
        a, p, u = per_day[user_id].get(row, (0, 0, 0))
        per_day[user_id][row] = (a + active, p + productive, u + unproductive)

    for user_id, day, active, productive, unproductive in await session.execute(_BY_DAY, params):
        add_day(user_id, day, int(active), int(productive), int(unproductive))
    cut: set[tuple[Any, ...]] = set()
    for user_id, app, seconds, agent_id, origin_id, day, productivity in await session.execute(
        _APPS_AND_CUT, params
    ):
        if agent_id is None:
            app_seconds[user_id][app] += int(seconds)
        else:
            cut.add((user_id, agent_id, origin_id, day, app, productivity))
    if cut:
        for s in await chunks.events_of(session, {(r[0], r[3]) for r in cut}):
            e = s.event
            key = (s.user_id, s.agent_id, s.origin_agent_id, e.start.date(), e.app, e.productivity)
            if key in cut and window.start <= e.start <= hi:
                d = e.duration_seconds
                add_day(
                    s.user_id,
                    e.start.date(),
                    d,
                    d if e.productivity == "productive" else 0,
                    d if e.productivity == "unproductive" else 0,
                )
                app_seconds[s.user_id][e.app] += d
    dates = [window.first_day + timedelta(days=i) for i in range(days)]
    # A day without activity is the same for every user: one (frozen) record per date.
    idle = [DayActivity(d) for d in dates]
    out: dict[int, ActivitySummary] = {}
    for user_id in ids:
        found = per_day.get(user_id, {})
        daily = [DayActivity(d, *found[d]) if d in found else e for d, e in zip(dates, idle, strict=True)]
        ranked = sorted(app_seconds.get(user_id, {}).items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_APPS]
        out[user_id] = ActivitySummary(
            days=days,
            active_seconds=sum(d.active_seconds for d in daily),
            productive_seconds=sum(d.productive_seconds for d in daily),
            unproductive_seconds=sum(d.unproductive_seconds for d in daily),
            top_apps=[AppUsage(app, seconds) for app, seconds in ranked],
            daily=daily,
        )
    return out


async def last_activity_by_user(
    session: AsyncSession, account_id: int, user_ids: Sequence[int]
) -> dict[int, datetime]:
    """When each user's latest stored event ended (start + duration); absent when it has none."""
    if not user_ids:
        return {}
    rows = await session.execute(_LAST_END, {"account_id": account_id, "ids": sorted(set(user_ids))})
    return {int(user_id): ended for user_id, ended in rows if ended is not None}
