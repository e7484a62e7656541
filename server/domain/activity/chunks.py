"""How activity is stored: compact chunks of events, and rollups kept at ingest.

Every read of activity is an aggregate (PendingInfo's retained totals, ``User.activity``,
``lastActivityAt``, reports, ``inactiveUsers``, retention), so activity is stored for them:

* :class:`~server.domain.models.ActivityRollup` holds, per agent, origin, UTC day, app and
  productivity, the number of events, their seconds, the first and last start and the last
  end. Ingestion upserts a request group's rows with one statement; a page's reads become a
  few index lookups of ``(user_id, day)``.
* :class:`~server.domain.models.ActivityChunk` keeps the events themselves, those one stored
  batch reported for one agent and UTC day, as one row: orjson, zlib-compressed. They are
  read only where a rollup row cannot answer exactly: a window or a retention cutoff that
  falls inside a row's ``[first_start, last_start]`` (one day per user, see :func:`events_of`).

Merges, assignments and their undo re-key rows of both tables by agent, never event by event.
Timestamps go to the driver as plain values through the column type's own bind processor,
as a Core statement would bind them (on SQLite they are text that sorts as time).
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from server.domain import lookups
from server.domain.activity.batch import PRODUCTIVITY_CODES, Event, EventRows, Row, event_row
from server.domain.models import ActivityChunk, ActivityRollup

CHUNK = ActivityChunk.__table__  # type: ignore[attr-defined]
ROLLUP = ActivityRollup.__table__  # type: ignore[attr-defined]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = _EPOCH.date().toordinal()
_US = timedelta(microseconds=1)
_DAY_US = 86_400_000_000
_PRODUCTIVITY = PRODUCTIVITY_CODES
_CODE = {p: n for n, p in enumerate(_PRODUCTIVITY)}


# ---------------------------------------------------------------------------- the codec


def encode(events: Sequence[tuple[int, int, str, str | None, str | None, str]]) -> bytes:
    """Events as ``(start in µs since the epoch, seconds, app, title, url, productivity)``."""
    return encode_rows([(s, d, a, t, u, _CODE[p]) for s, d, a, t, u, p in events])


def encode_rows(rows: Sequence[Row]) -> bytes:
    """Rows (:data:`~server.domain.activity.batch.Row`: the productivity as its code) as they
    are stored."""
    return zlib.compress(orjson.dumps(rows), 1)


def decode(blob: bytes) -> list[Event]:
    return [
        Event(_EPOCH + s * _US, d, a, t, u, _PRODUCTIVITY[p])
        for s, d, a, t, u, p in orjson.loads(zlib.decompress(blob))
    ]


def micros(t: datetime) -> int:
    return (t - _EPOCH) // _US


def _day(us: int) -> date:
    return date.fromordinal(_EPOCH_ORDINAL + us // _DAY_US)


def _time(us: int) -> datetime:
    return _EPOCH + us * _US


# ---------------------------------------------------------------------------- writing


_Key = tuple[int, int, int, str, int]  # agent, origin, day (µs // day), app, productivity code
# A rollup row's totals: [user_id, count, seconds, first start, last start, last end] (µs).
_Totals = list[int]


class Writes:
    """The chunks and rollup rows of a transaction's batches, written by :meth:`flush`."""

    def __init__(self) -> None:
        self.chunks: list[tuple[Any, ...]] = []
        self.rollups: dict[_Key, _Totals] = {}

    def add(self, user_id: int, agent_id: int, origin_id: int, events: Iterable[Event]) -> None:
        rows = events.rows if isinstance(events, EventRows) else [event_row(e) for e in events]
        self.add_rows(user_id, agent_id, origin_id, rows)

    def add_rows(self, user_id: int, agent_id: int, origin_id: int, rows: Sequence[Row]) -> None:
        """Events as their stored rows: one chunk per UTC day, its events in the order given;
        rollups per day, app and productivity, keyed in the order each first occurs."""
        if not rows:
            return
        rollups = self.rollups
        # The hottest loop of ingestion (once per event): locals, no calls it can spare.
        for s, seconds, app, _, _, code in rows:
            key = (agent_id, origin_id, s // _DAY_US, app, code)
            end = s + seconds * 1_000_000
            t = rollups.get(key)
            if t is None:
                rollups[key] = [user_id, 1, seconds, s, s, end]
            else:
                t[1] += 1
                t[2] += seconds
                if s < t[3]:
                    t[3] = s
                if s > t[4]:
                    t[4] = s
                if end > t[5]:
                    t[5] = end
        starts = [r[0] for r in rows]
        first, last = min(starts), max(starts)
        if first // _DAY_US == last // _DAY_US:  # one UTC day: the usual batch
            self.chunks.append(
                (user_id, agent_id, origin_id, first // _DAY_US, first, last, len(rows), encode_rows(rows))
            )
            return
        by_day: dict[int, list[Row]] = {}
        for row in rows:
            by_day.setdefault(row[0] // _DAY_US, []).append(row)
        for d, day_rows in by_day.items():
            starts = [r[0] for r in day_rows]
            self.chunks.append(
                (
                    user_id,
                    agent_id,
                    origin_id,
                    d,
                    min(starts),
                    max(starts),
                    len(day_rows),
                    encode_rows(day_rows),
                )
            )

    def rows(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The chunks and rollup rows as a Core ``INSERT``'s parameters (a migration's)."""
        chunk_rows = [
            dict(zip(_CHUNK_COLUMNS, (u, a, o, _day(d * _DAY_US), _time(f), _time(la), n, b), strict=True))
            for u, a, o, d, f, la, n, b in self.chunks
        ]
        rollup_rows = [
            dict(
                zip(
                    _ROLLUP_COLUMNS,
                    (
                        a,
                        o,
                        _day(d * _DAY_US),
                        app,
                        _PRODUCTIVITY[p],
                        u,
                        n,
                        sec,
                        _time(f),
                        _time(la),
                        _time(end),
                    ),
                    strict=True,
                )
            )
            for (a, o, d, app, p), (u, n, sec, f, la, end) in self.rollups.items()
        ]
        return chunk_rows, rollup_rows

    async def flush(self, session: AsyncSession) -> None:
        if self.chunks:
            await insert_chunks(session, self.chunks)
        if self.rollups:
            await upsert_rollups(session, self.rollups)
        self.chunks, self.rollups = [], {}


_CHUNK_COLUMNS = (
    "user_id",
    "agent_id",
    "origin_agent_id",
    "day",
    "first_start",
    "last_start",
    "event_count",
    "events",
)
ROLLUP_KEY = ("agent_id", "origin_agent_id", "day", "app", "productivity")
_ROLLUP_COLUMNS = (
    *ROLLUP_KEY,
    "user_id",
    "event_count",
    "active_seconds",
    "first_start",
    "last_start",
    "last_end",
)
_PLACEHOLDERS: dict[str, Callable[[int], str]] = {
    "qmark": lambda n: "?",
    "numeric_dollar": lambda n: f"${n}",
    "format": lambda n: "%s",
}

# Probes for the fast timestamp binder: microseconds, a day and year boundary, an offset zone.
_BIND_PROBES = (
    datetime(2026, 11, 26, 9, 5, 7, 123456, tzinfo=UTC),
    datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC),
    datetime(2027, 1, 1, 0, 30, 0, 1, tzinfo=timezone(timedelta(hours=2))),
)
_binders: dict[str, tuple[Callable[[datetime], Any], Callable[[date], Any]]] = {}


def binders(dialect: sa.Dialect) -> tuple[Callable[[datetime], Any], Callable[[date], Any]]:
    """How a timestamp and a date are bound: exactly as a Core statement binds them.

    SQLAlchemy's own timestamp processor (the column type's, then SQLite's ``DATETIME``
    formatting in Python) was about a tenth of the server's CPU while ingesting. On SQLite
    the same text comes from C: naive UTC ``isoformat(" ", "microseconds")``, used only when
    it gives exactly SQLAlchemy's text on the probes; otherwise the dialect's processor is.
    """
    found = _binders.get(dialect.name)
    if found is None:
        start_type = CHUNK.c.first_start.type.dialect_impl(dialect)
        slow: Callable[[datetime], Any] = start_type.bind_processor(dialect) or (lambda v: v)
        stamp = slow
        if dialect.name == "sqlite":

            def fast(t: datetime) -> str:
                return t.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")

            if all(fast(p) == slow(p) for p in _BIND_PROBES):
                stamp = fast
        day: Callable[[date], Any] = CHUNK.c.day.type.dialect_impl(dialect).bind_processor(dialect) or (
            lambda v: v
        )
        found = _binders[dialect.name] = (stamp, day)
    return found


_NAIVE_EPOCH = _EPOCH.replace(tzinfo=None)
_micro_binders: dict[str, Callable[[int], Any]] = {}


def micros_binder(dialect: sa.Dialect) -> Callable[[int], Any]:
    """How a timestamp given in µs since the epoch is bound: as :func:`binders` binds it, and
    on SQLite without making an aware datetime first (checked on the same probes)."""
    found = _micro_binders.get(dialect.name)
    if found is None:
        stamp, _ = binders(dialect)

        def slow(us: int) -> Any:
            return stamp(_time(us))

        def fast(us: int) -> str:
            return (_NAIVE_EPOCH + us * _US).isoformat(" ", "microseconds")

        probes = [micros(p) for p in _BIND_PROBES]
        use_fast = dialect.name == "sqlite" and all(fast(p) == slow(p) for p in probes)
        found = _micro_binders[dialect.name] = fast if use_fast else slow
    return found


def _insert_sql(conn: AsyncConnection, table: sa.Table, columns: Sequence[str]) -> str | None:
    dialect = conn.dialect
    placeholder = _PLACEHOLDERS.get(dialect.paramstyle)
    if placeholder is None:
        return None
    return (
        f"INSERT INTO {dialect.identifier_preparer.format_table(table)} ({', '.join(columns)}) "
        f"VALUES ({', '.join(placeholder(i + 1) for i in range(len(columns)))})"
    )


async def insert_chunks(session: AsyncSession, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert chunks given as tuples in ``_CHUNK_COLUMNS`` order, days and starts in µs."""
    conn = await session.connection()
    sql = _insert_sql(conn, CHUNK, _CHUNK_COLUMNS)
    if sql is None:
        await conn.execute(
            sa.insert(CHUNK),
            [
                dict(
                    zip(_CHUNK_COLUMNS, (u, a, o, _day(d * _DAY_US), _time(f), _time(la), n, b), strict=True)
                )
                for u, a, o, d, f, la, n, b in rows
            ],
        )
        return
    _, day = binders(conn.dialect)
    stamp = micros_binder(conn.dialect)
    await conn.exec_driver_sql(
        sql,
        [(u, a, o, day(_day(d * _DAY_US)), stamp(f), stamp(la), n, b) for u, a, o, d, f, la, n, b in rows],
    )


async def upsert_rollups(session: AsyncSession, rollups: dict[_Key, _Totals]) -> None:
    """Add these totals to the rollup rows, creating the missing ones, in one executemany."""
    conn = await session.connection()
    dialect = conn.dialect
    sql = _insert_sql(conn, ROLLUP, _ROLLUP_COLUMNS)
    least, greatest = ("min", "max") if dialect.name == "sqlite" else ("LEAST", "GREATEST")
    if sql is None:  # pragma: no cover - every supported driver has one of the placeholders
        raise RuntimeError(f"unsupported parameter style {dialect.paramstyle}")
    name = dialect.identifier_preparer.format_table(ROLLUP)
    sql += (
        f" ON CONFLICT ({', '.join(ROLLUP_KEY)}) DO UPDATE SET"
        f" event_count = {name}.event_count + excluded.event_count,"
        f" active_seconds = {name}.active_seconds + excluded.active_seconds,"
        f" first_start = {least}({name}.first_start, excluded.first_start),"
        f" last_start = {greatest}({name}.last_start, excluded.last_start),"
        f" last_end = {greatest}({name}.last_end, excluded.last_end)"
    )
    _, day = binders(dialect)
    stamp = micros_binder(dialect)
    days: dict[int, Any] = {}
    params = []
    productivities = _PRODUCTIVITY
    for (agent, origin, d, app, code), (user_id, count, seconds, first, last, last_end) in rollups.items():
        bound = days.get(d)
        if bound is None:
            bound = days[d] = day(_day(d * _DAY_US))
        params.append(
            (
                agent,
                origin,
                bound,
                app,
                productivities[code],
                user_id,
                count,
                seconds,
                stamp(first),
                stamp(last),
                stamp(last_end),
            )
        )
    await conn.exec_driver_sql(sql, params)


# ---------------------------------------------------------------------------- reading raw events


@dataclass(frozen=True, slots=True)
class StoredEvent:
    user_id: int
    agent_id: int
    origin_agent_id: int
    event: Event


async def events_of(session: AsyncSession, pairs: Iterable[tuple[int, date]]) -> list[StoredEvent]:
    """The stored events of these ``(user_id, UTC day)``: one index range per pair."""
    found: list[StoredEvent] = []
    for chunk in lookups.chunked(sorted(set(pairs))):
        rows = await session.execute(_chunks_of(len(chunk)), lookups.params(chunk))
        found.extend(StoredEvent(u, a, o, e) for u, a, o, blob in rows for e in decode(blob))
    return found


# A row-value IN list reads the whole table on SQLite (server.domain.lookups): user-days are
# looked up as an OR of equalities, through (user_id, day) indexes of both tables.
@functools.cache
def _chunks_of(n: int) -> sa.Select[Any]:
    return sa.select(CHUNK.c.user_id, CHUNK.c.agent_id, CHUNK.c.origin_agent_id, CHUNK.c.events).where(
        lookups.any_of((CHUNK.c.user_id, CHUNK.c.day), n)
    )


@functools.cache
def _delete_days(table: sa.Table, n: int) -> sa.Delete:
    return sa.delete(table).where(lookups.any_of((table.c.user_id, table.c.day), n))


async def rewrite(
    session: AsyncSession, pairs: Iterable[tuple[int, date]], keep: Callable[[StoredEvent], bool]
) -> int:
    """Keep only the events of these user-days that ``keep`` accepts: their chunks are
    rewritten and their rollup rows rebuilt from what remains. Returns how many went."""
    wanted = sorted(set(pairs))
    if not wanted:
        return 0
    stored = await events_of(session, wanted)
    for chunk in lookups.chunked(wanted):
        for table in (CHUNK, ROLLUP):
            await session.execute(_delete_days(table, len(chunk)), lookups.params(chunk))
    writes = Writes()
    grouped: dict[tuple[int, int, int], list[Event]] = {}
    for s in stored:
        if keep(s):
            grouped.setdefault((s.user_id, s.agent_id, s.origin_agent_id), []).append(s.event)
    for (user_id, agent_id, origin_id), events in grouped.items():
        writes.add(user_id, agent_id, origin_id, events)
    await writes.flush(session)
    return len(stored) - sum(len(v) for v in grouped.values())


# ---------------------------------------------------------------------------- re-keying


async def rekey(session: AsyncSession, match: dict[str, Any], **values: Any) -> None:
    """Move activity (chunks and rollup rows alike) to another user or agent: a merge, an
    assignment and their undo change a few rows per agent and day, never each event.

    A rollup row is keyed by its agent and origin, so a merge re-keying a folded agent's rows
    to the target agent never meets a row of the target with the same key: the target's rows
    have other origins. ``match``: column name to a value, or to a list or a select for IN.
    """
    for table in (CHUNK, ROLLUP):
        where = [
            table.c[k].in_(v) if isinstance(v, list | sa.Select) else table.c[k] == v
            for k, v in match.items()
        ]
        await session.execute(sa.update(table).where(*where).values(**values))


async def delete_users(session: AsyncSession, user_ids: Sequence[int]) -> None:
    for table in (CHUNK, ROLLUP):
        await session.execute(sa.delete(table).where(table.c.user_id.in_(list(user_ids))))


async def store(session: AsyncSession, events: Iterable[tuple[int, int, Event]]) -> int:
    """Store ``(user_id, agent_id, event)`` as ingestion would (a seed's or a bench's rows,
    reported under the agent's own key); returns how many."""
    by_agent: dict[tuple[int, int], list[Event]] = {}
    for user_id, agent_id, event in events:
        by_agent.setdefault((user_id, agent_id), []).append(event)
    writes = Writes()
    for (user_id, agent_id), found in by_agent.items():
        for i in range(0, len(found), 1_000):
            writes.add(user_id, agent_id, agent_id, found[i : i + 1_000])
    await writes.flush(session)
    return sum(len(v) for v in by_agent.values())
