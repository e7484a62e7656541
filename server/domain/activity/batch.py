"""An ingest batch as an agent sends it: its limits, and parsing it into a :class:`Batch`.

Nothing of a batch is stored unless all of it is valid: :func:`parse_batch` collects every
problem with the field at fault (:class:`BatchInvalid`) or refuses an oversized batch
(:class:`BatchTooLarge`) before anything reaches the database.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, overload

import msgspec

from server.domain.admission import AgentReport
from server.domain.models import Productivity
from server.domain.text import app_problem, free_text_problem, name_problem, unstorable

MAX_EVENTS = 5_000
MAX_DURATION = 86_400
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
MAX_CLOCK_SKEW = timedelta(days=1)
_PRODUCTIVITY = {p.value for p in Productivity}
# The chunk codec's productivity codes (server.domain.activity.chunks): stored data, never reorder.
PRODUCTIVITY_CODES = ("neutral", "productive", "unproductive")
_CODE_OF: dict[Any, int] = {p: n for n, p in enumerate(PRODUCTIVITY_CODES)}
_CODE_OF[None] = _CODE_OF["neutral"]  # null means neutral, as an absent productivity does
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_EARLIEST_US = (EARLIEST - _EPOCH) // _US
_fromisoformat = datetime.fromisoformat


class BatchInvalid(ValueError):
    """The batch is malformed; ``details`` lists each problem with the field at fault."""

    def __init__(self, details: list[dict[str, str]]) -> None:
        super().__init__(f"{len(details)} problem(s) in the batch")
        self.details = details


class BatchTooLarge(ValueError):
    """More events than one batch may carry."""


@dataclass(frozen=True, slots=True)
class Event:
    start: datetime
    duration_seconds: int
    app: str
    title: str | None
    url: str | None
    productivity: str


# An event as it is stored: (start in µs since the epoch, seconds, app, title, url, productivity
# code). Exactly the tuples the chunk codec serialises (server.domain.activity.chunks).
Row = tuple[int, int, str, str | None, str | None, int]


def event_row(e: Event) -> Row:
    return ((e.start - _EPOCH) // _US, e.duration_seconds, e.app, e.title, e.url, _CODE_OF[e.productivity])


def row_event(row: Row) -> Event:
    s, d, a, t, u, p = row
    return Event(_EPOCH + s * _US, d, a, t, u, PRODUCTIVITY_CODES[p])


class EventRows(Sequence[Event]):
    """The events :func:`parse_batch` accepted, kept as the rows they are stored as; read as
    :class:`Event` (each made when read). Storage takes :attr:`rows` as they are."""

    __slots__ = ("rows",)
    __hash__ = None  # type: ignore[assignment]  # a list's, as a batch's events were

    def __init__(self, rows: list[Row]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, i: int) -> Event: ...

    @overload
    def __getitem__(self, i: slice) -> list[Event]: ...

    def __getitem__(self, i: int | slice) -> Event | list[Event]:
        if isinstance(i, slice):
            return [row_event(r) for r in self.rows[i]]
        return row_event(self.rows[i])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, EventRows):
            return self.rows == other.rows
        if isinstance(other, list):
            return list(self) == other
        return NotImplemented

    def __repr__(self) -> str:
        return f"EventRows({list(self)!r})"


@dataclass(frozen=True, slots=True)
class Batch:
    batch_id: str
    agent: AgentReport
    events: Sequence[Event]


class _Problems:
    LIMIT = 50

    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, field: str, message: str) -> None:
        if len(self.items) < self.LIMIT:
            self.items.append({"field": field, "message": message})


def _name(
    obj: dict[str, Any], key: str, where: str, problems: _Problems, required: bool = True
) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            problems.add(f"{where}.{key}", "required")
        return None
    if not isinstance(value, str):
        problems.add(f"{where}.{key}", "must be a string")
    elif (why := name_problem(value)) is not None:
        problems.add(f"{where}.{key}", why)
    else:
        return value
    return None


def _optional_text(obj: dict[str, Any], key: str, where: str, limit: int, problems: _Problems) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        problems.add(f"{where}.{key}", "must be a string or null")
    elif (why := free_text_problem(value, limit)) is not None:
        problems.add(f"{where}.{key}", why)
    else:
        return value
    return None


def _event(raw: Any, where: str, problems: _Problems, latest: datetime) -> Event | None:
    if not isinstance(raw, dict):
        problems.add(where, "must be an object")
        return None
    before = len(problems.items)
    start: datetime | None = None
    raw_start = raw.get("start")
    if not isinstance(raw_start, str):
        problems.add(f"{where}.start", "required: an ISO 8601 date-time with a zone")
    else:
        try:
            start = datetime.fromisoformat(raw_start)
        except ValueError:
            problems.add(f"{where}.start", f"not an ISO 8601 date-time: {raw_start[:40]!r}")
        else:
            if start.tzinfo is None:
                problems.add(f"{where}.start", "needs a zone (e.g. Z or +02:00)")
                start = None
            elif not EARLIEST <= start <= latest:
                # Far-future starts would never expire from retention (and year 9999 would
                # overflow the expiry date); far-past ones are clock errors.
                problems.add(f"{where}.start", f"must be from {EARLIEST.date()} to a day from now")
                start = None
            else:
                start = start.astimezone(UTC)
    duration = raw.get("durationSeconds")
    if isinstance(duration, bool) or not isinstance(duration, int):
        problems.add(f"{where}.durationSeconds", "required: a whole number of seconds")
    elif not 0 <= duration <= MAX_DURATION:
        problems.add(f"{where}.durationSeconds", f"must be from 0 to {MAX_DURATION}")
    app = raw.get("app")
    if not isinstance(app, str):
        problems.add(f"{where}.app", "required: a non-empty string")
    elif (why := app_problem(app)) is not None:
        problems.add(f"{where}.app", why)
    title = _optional_text(raw, "title", where, 2048, problems)
    url = _optional_text(raw, "url", where, 2048, problems)
    productivity = raw.get("productivity", "neutral")
    if productivity is None:
        productivity = "neutral"
    if type(productivity) is not str or productivity not in _PRODUCTIVITY:
        problems.add(f"{where}.productivity", "must be productive, unproductive or neutral")
    if len(problems.items) != before:
        return None
    assert start is not None and isinstance(duration, int) and isinstance(app, str)
    return Event(start, duration, app, title, url, productivity)


def _plain_row(raw: Any, earliest: int, latest: int, apps: dict[str, bool]) -> Row | None:
    """A well-formed event in one pass (the common case), straight to its stored row; ``None``
    when anything is off, and then :func:`_event` says what. Accepts exactly what
    :func:`_event` accepts, and its row is :func:`event_row` of that event; each distinct app
    of a batch is checked once (``apps``). ``earliest``, ``latest``: the bounds of a start, in
    µs since the epoch (comparing instants, as comparing aware datetimes does)."""
    if type(raw) is not dict:
        return None
    get = raw.get
    start_raw, duration, app = get("start"), get("durationSeconds"), get("app")
    if type(start_raw) is not str or type(duration) is not int or type(app) is not str:
        return None
    return _checked_row(
        start_raw,
        duration,
        app,
        get("title"),
        get("url"),
        get("productivity", "neutral"),
        earliest,
        latest,
        apps,
    )


def _checked_row(
    start_raw: str,
    duration: int,
    app: str,
    title: Any,
    url: Any,
    productivity: Any,
    earliest: int,
    latest: int,
    apps: dict[str, bool],
) -> Row | None:
    """:func:`_plain_row` once the start, duration and app are known to be a str, an int and a str."""
    if not 0 <= duration <= MAX_DURATION:
        return None
    app_ok = apps.get(app)
    if app_ok is None:
        app_ok = apps[app] = app_problem(app) is None
    if not app_ok or not (_plain_text(title) and _plain_text(url)):
        return None
    code = _CODE_OF.get(productivity) if type(productivity) is str or productivity is None else None
    if code is None:
        return None  # the detailed check says what is wrong
    try:
        start = _fromisoformat(start_raw)
    except ValueError:
        return None
    if start.tzinfo is None:
        return None
    s = (start - _EPOCH) // _US
    if not earliest <= s <= latest:
        return None
    return (s, duration, app, title, url, code)


def _plain_text(value: Any) -> bool:
    """A title or url :func:`free_text_problem` accepts; ASCII without NUL in two C calls."""
    if value is None:
        return True
    if type(value) is not str:
        return False
    if value.isascii() and len(value) <= 2048:
        return "\x00" not in value
    return free_text_problem(value, 2048) is None


def _header(batch_id: Any, agent_raw: Any, problems: _Problems) -> tuple[Any, AgentReport | None]:
    """A batch's ``batchId`` and ``agent`` as given, checked; each problem added to ``problems``."""
    if not isinstance(batch_id, str) or not 1 <= len(batch_id) <= 128:
        problems.add("batchId", "required: a string of 1 to 128 characters")
    elif (why := unstorable(batch_id)) is not None:
        problems.add("batchId", why)
    agent: AgentReport | None = None
    if not isinstance(agent_raw, dict):
        problems.add("agent", "required: an object with deviceName, domain, logonName, displayName")
    else:
        device = _name(agent_raw, "deviceName", "agent", problems)
        domain = _name(agent_raw, "domain", "agent", problems)
        logon = _name(agent_raw, "logonName", "agent", problems)
        display = _name(agent_raw, "displayName", "agent", problems, required=False)
        if device and domain and logon:
            agent = AgentReport(device, domain, logon, display or logon)
    return batch_id, agent


class _PlainEvent(msgspec.Struct):
    """An event whose fields have the types :func:`_plain_row` wants; other keys are ignored."""

    start: str
    durationSeconds: int
    app: str
    title: Any = None
    url: Any = None
    productivity: Any = "neutral"


class _PlainBody(msgspec.Struct):
    batchId: Any = None
    agent: Any = None
    events: Annotated[list[_PlainEvent], msgspec.Meta(max_length=MAX_EVENTS)] | None = None


_decode_plain = msgspec.json.Decoder(_PlainBody).decode


def parse_body(raw: bytes, now: datetime, loads: Callable[[bytes], Any]) -> Batch:
    """:func:`parse_batch` of the JSON ``raw`` (decoded by ``loads``), with the same answers.

    The common body (every event well formed) is decoded and type-checked by msgspec in C,
    straight into typed events, then checked by :func:`_checked_row` as :func:`parse_batch`
    checks a plain event; anything else (not JSON msgspec takes, a field of another type, an
    event that fails a check) is parsed again by ``loads`` and :func:`parse_batch`, which
    says what is wrong or accepts it, as before. ``loads``' own errors propagate.
    """
    try:
        body = _decode_plain(raw)
    except msgspec.DecodeError:  # ValidationError is one
        return parse_batch(loads(raw), now)
    batch = _plain_batch(body, now)
    return batch if batch is not None else parse_batch(loads(raw), now)


def _plain_batch(body: _PlainBody, now: datetime) -> Batch | None:
    problems = _Problems()
    batch_id, agent = _header(body.batchId, body.agent, problems)
    if problems.items or body.events is None:
        return None
    latest_us = (now + MAX_CLOCK_SKEW - _EPOCH) // _US
    apps: dict[str, bool] = {}
    rows: list[Row] = []
    append = rows.append
    for e in body.events:
        row = _checked_row(
            e.start, e.durationSeconds, e.app, e.title, e.url, e.productivity, _EARLIEST_US, latest_us, apps
        )
        if row is None:
            return None
        append(row)
    assert isinstance(batch_id, str) and agent is not None
    return Batch(batch_id, agent, EventRows(rows))


def parse_batch(body: Any, now: datetime | None = None) -> Batch:
    """Validate a decoded ``/ingest`` body; raises :class:`BatchInvalid` or :class:`BatchTooLarge`.

    ``now`` bounds event starts (at most a day ahead, for clock skew); default: the real time.
    """
    problems = _Problems()
    latest = (now or datetime.now(UTC)) + MAX_CLOCK_SKEW
    if not isinstance(body, dict):
        raise BatchInvalid([{"field": "", "message": "the body must be a JSON object"}])
    batch_id, agent = _header(body.get("batchId"), body.get("agent"), problems)
    events_raw = body.get("events")
    rows: list[Row] = []
    if not isinstance(events_raw, list):
        problems.add("events", "required: a list (may be empty)")
    elif len(events_raw) > MAX_EVENTS:
        raise BatchTooLarge(f"a batch carries at most {MAX_EVENTS} events; this one has {len(events_raw)}")
    else:
        apps: dict[str, bool] = {}
        latest_us = (latest - _EPOCH) // _US
        append = rows.append
        for i, raw in enumerate(events_raw):
            row = _plain_row(raw, _EARLIEST_US, latest_us, apps)
            if row is None:
                event = _event(raw, f"events[{i}]", problems, latest)
                if event is None:
                    continue
                row = event_row(event)
            append(row)
    if problems.items:
        raise BatchInvalid(problems.items)
    assert isinstance(batch_id, str) and agent is not None
    return Batch(batch_id, agent, EventRows(rows))
