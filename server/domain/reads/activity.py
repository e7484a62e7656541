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

**Cost.** Aggregated in SQL, never by loading events: for any number of users, one
statement groups by user and UTC day and one ranks each user's apps (both a range of
``ix_activity_user_start`` per user); the latest end is one statement whose work per user is
an index seek and the last day of its events (an event lasts at most a day).

The UTC day and the shifted timestamps are the two things SQLite (naive UTC text, sorting
as time) and PostgreSQL (``timestamptz``) spell differently: :class:`utc_date` and
:class:`plus_seconds` compile for each.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from server.domain.activity.batch import MAX_CLOCK_SKEW, MAX_DURATION
from server.domain.activity.report import TOP_APPS, AppUsage
from server.domain.errors import DomainError, ErrorCode
from server.domain.models import ActivityEvent, UTCDateTime
from server.domain.reads.rows import USER
from server.domain.retention import cutoff

MAX_DAYS = 90

_EV = sa.inspect(ActivityEvent).local_table.c


# ---------------------------------------------------------------------------- dialects


class utc_date(FunctionElement[date]):
    """The UTC calendar date of a timestamp column."""

    type = sa.Date()
    inherit_cache = True


@compiles(utc_date, "sqlite")
def _utc_date_sqlite(element: utc_date, compiler: SQLCompiler, **kw: Any) -> str:
    # Stored as naive UTC text, "YYYY-MM-DD HH:MM:SS.ffffff".
    return f"substr({compiler.process(element.clauses, **kw)}, 1, 10)"


@compiles(utc_date, "postgresql")
def _utc_date_postgresql(element: utc_date, compiler: SQLCompiler, **kw: Any) -> str:
    # Whatever the session's time zone.
    return f"CAST(timezone('UTC', {compiler.process(element.clauses, **kw)}) AS DATE)"


class plus_seconds(FunctionElement[datetime]):
    """A timestamp column plus a whole number of seconds (a column or a literal), as a timestamp."""

    type = UTCDateTime()
    inherit_cache = True


@compiles(plus_seconds, "sqlite")
def _plus_seconds_sqlite(element: plus_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    ts, seconds = (compiler.process(c, **kw) for c in element.clauses)
    # Whole seconds leave the fraction as it is: keep the stored text's (strftime's %f
    # would round it to milliseconds), so the result compares with stored values as text.
    return f"(strftime('%Y-%m-%d %H:%M:%S', {ts}, CAST({seconds} AS TEXT) || ' seconds') || substr({ts}, 20))"


@compiles(plus_seconds, "postgresql")
def _plus_seconds_postgresql(element: plus_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    ts, seconds = (compiler.process(c, **kw) for c in element.clauses)
    return f"({ts} + {seconds} * INTERVAL '1 second')"


# ---------------------------------------------------------------------------- statements

_IN_WINDOW = sa.and_(
    _EV.user_id.in_(sa.bindparam("ids", expanding=True)),
    _EV.start >= sa.bindparam("lo"),
    _EV.start <= sa.bindparam("hi"),
)


def _seconds(productivity: str | None = None) -> Any:
    value = (
        _EV.duration_seconds
        if productivity is None
        else sa.case((_EV.productivity == productivity, _EV.duration_seconds), else_=0)
    )
    return sa.func.coalesce(sa.func.sum(value), 0)


_DAY = utc_date(_EV.start)
_BY_DAY = (
    sa.select(_EV.user_id, _DAY, _seconds(), _seconds("productive"), _seconds("unproductive"))
    .where(_IN_WINDOW)
    .group_by(_EV.user_id, _DAY)
)

_APP_SECONDS = sa.func.sum(_EV.duration_seconds)
_APPS_RANKED = (
    sa.select(
        _EV.user_id,
        _EV.app,
        _APP_SECONDS.label("seconds"),
        sa.func.row_number()
        .over(partition_by=_EV.user_id, order_by=(_APP_SECONDS.desc(), _EV.app))
        .label("rank"),
    )
    .where(_IN_WINDOW)
    .group_by(_EV.user_id, _EV.app)
    .subquery()
)
_TOP_APPS = (
    sa.select(_APPS_RANKED.c.user_id, _APPS_RANKED.c.app, _APPS_RANKED.c.seconds)
    .where(_APPS_RANKED.c.rank <= TOP_APPS)
    .order_by(_APPS_RANKED.c.user_id, _APPS_RANKED.c.rank)
)

# The latest end: found among the events that start at most a day (the longest event)
# before the user's latest start, which an index seek finds. Correlated subqueries per
# user, so both databases run one index seek and one short range scan per user (a join on
# the shifted start lets PostgreSQL's planner scan the whole table instead).
_LATEST, _ENDED = (sa.inspect(ActivityEvent).local_table.alias(name) for name in ("latest", "ended"))
_LATEST_START = (
    sa.select(sa.func.max(_LATEST.c.start))
    .where(_LATEST.c.user_id == USER.c.id)
    .correlate(USER)
    .scalar_subquery()
)
_LAST_END = sa.select(
    USER.c.id,
    sa.select(sa.func.max(plus_seconds(_ENDED.c.start, _ENDED.c.duration_seconds)))
    .where(
        _ENDED.c.user_id == USER.c.id,
        _ENDED.c.start >= plus_seconds(_LATEST_START, sa.literal_column(str(-MAX_DURATION))),
    )
    .correlate(USER)
    .scalar_subquery(),
).where(USER.c.account_id == sa.bindparam("account_id"), USER.c.id.in_(sa.bindparam("ids", expanding=True)))


# ---------------------------------------------------------------------------- reads


@dataclass(frozen=True, slots=True)
class DayActivity:
    """One UTC day's row."""

    day: date
    active_seconds: int = 0
    productive_seconds: int = 0
    unproductive_seconds: int = 0


@dataclass(frozen=True, slots=True)
class ActivitySummary:
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
    params = {"ids": ids, "lo": window.start, "hi": window.end + MAX_CLOCK_SKEW}
    today = window.end.astimezone(UTC).date()
    per_day: dict[int, dict[date, tuple[int, int, int]]] = defaultdict(dict)
    for user_id, day, active, productive, unproductive in await session.execute(_BY_DAY, params):
        # The window's hours before the first row's midnight count in the first row.
        row = min(max(day, window.first_day), today)
        a, p, u = per_day[user_id].get(row, (0, 0, 0))
        per_day[user_id][row] = (a + int(active), p + int(productive), u + int(unproductive))
    apps: dict[int, list[AppUsage]] = defaultdict(list)
    for user_id, app, seconds in await session.execute(_TOP_APPS, params):
        apps[user_id].append(AppUsage(app, int(seconds)))
    dates = [window.first_day + timedelta(days=i) for i in range(days)]
    out: dict[int, ActivitySummary] = {}
    for user_id in ids:
        found = per_day.get(user_id, {})
        daily = [DayActivity(d, *found[d]) if d in found else DayActivity(d) for d in dates]
        out[user_id] = ActivitySummary(
            days=days,
            active_seconds=sum(d.active_seconds for d in daily),
            productive_seconds=sum(d.productive_seconds for d in daily),
            unproductive_seconds=sum(d.unproductive_seconds for d in daily),
            top_apps=apps.get(user_id, []),
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
