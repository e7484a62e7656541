"""Activity: validating and storing an ingest batch, and the activity report (SPEC §3, §7).

A batch is stored in one transaction together with its admission and a record of its
``batchId``, so a replay answers the first call's response and nothing is half-stored.
Events go in with one Core ``INSERT`` executemany: the ORM's unit of work would insert
them row by row.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.domain import admission, changes
from server.domain.admission import AdmissionStatus, AgentReport
from server.domain.changes import bump_queue_version
from server.domain.errors import DomainError, ErrorCode
from server.domain.models import ActivityEvent, Agent, IngestBatch, Productivity, User, UserStatus

MAX_EVENTS = 5_000
MAX_DURATION = 86_400
MAX_REPORT_DAYS = 366
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
MAX_CLOCK_SKEW = timedelta(days=1)
TOP_APPS = 5
_PRODUCTIVITY = {p.value for p in Productivity}


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


@dataclass(frozen=True, slots=True)
class Batch:
    batch_id: str
    agent: AgentReport
    events: list[Event]


@dataclass(frozen=True, slots=True)
class IngestResult:
    agent_id: int | None
    user_id: int | None
    status: str
    accepted: int
    duplicate: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "agentId": None if self.agent_id is None else str(self.agent_id),
            "userId": None if self.user_id is None else str(self.user_id),
            "status": self.status,
            "accepted": self.accepted,
            "duplicate": self.duplicate,
        }


# ---------------------------------------------------------------------------- parsing


# Each kind of text an agent reports has one check, used by every field of that kind:
# agent names (:func:`_name_problem`), app names (:func:`_app_problem`), and free text
# (:func:`_free_text_problem`: window titles, urls). All of them go through
# :func:`unstorable`.

# C0 controls, DEL, C1 controls; and the line and paragraph separators (line breaks).
_CONTROLS = "\x00-\x1f\x7f-\x9f\u2028\u2029"
# ALM, LRM, RLM; LRE, RLE, PDF, LRO, RLO; LRI, RLI, FSI, PDI.
_BIDI_CONTROLS = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
# Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt) less the bidi controls:
# soft hyphen, combining grapheme joiner, Hangul fillers, Khmer inherent vowels, Mongolian
# variation selectors and vowel separator, zero-width space/non-joiner/joiner, word joiner,
# invisible operators, deprecated format characters, variation selectors, zero-width no-break
# space (BOM), shorthand format and musical formatting controls, tags, and the code points
# reserved for more of them; plus the interlinear annotation marks (U+FFF9-U+FFFB), which
# hide the text between them.
_INVISIBLE = (
    "\u00ad\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200d\u2060-\u2065\u206a-\u206f"
    "\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff"
)
_REFUSED = re.compile(f"[{_CONTROLS}{_BIDI_CONTROLS}{_INVISIBLE}]")
_BIDI = re.compile(f"[{_BIDI_CONTROLS}]")
_CONFUSABLE_SCRIPTS = ("LATIN", "CYRILLIC", "GREEK")


def unstorable(s: str) -> str | None:
    """Why a text cannot be stored as is on every database, or ``None``.

    PostgreSQL refuses NUL in text, and a lone surrogate (valid in JSON, not in UTF-8)
    cannot be encoded for either database. Every text an agent reports is checked for it,
    and so is every text a client binds into a query (a search, a cursor).
    """
    if "\x00" in s:
        return "must not contain NUL characters"
    if not s.isascii():
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            return "must be valid Unicode text (no lone surrogates)"
    return None


def _hidden_or_control(s: str) -> str | None:
    """Why ``s`` would not show what it holds, or ``None``: the check of names and app names.

    - C0 and C1 controls (U+0000-U+001F, U+007F-U+009F) and line breaks: terminal escape
      injection. ESC (or the C1 CSI) starts a sequence that a terminal runs rather than shows:
      ``evil\\x1b]0;pwned\\x07.exe`` retitles the window, others move the cursor and repaint
      what an admin reads.
    - Bidirectional controls: Trojan Source (CVE-2021-42574). They reorder how the text is
      displayed: ``Jane \\u202eeoD`` shows as "Jane Doe".
    - Invisible (default-ignorable) characters: ``jd\\u200boe`` shows as "jdoe" but is another
      agent and another user, a duplicate an admin cannot tell apart. Emoji that need a
      zero-width joiner or a variation selector are refused with them; plain emoji are not.

    The message names the first such character by its code point (never the character).
    """
    if s.isascii() and s.isprintable():  # the common case, without the regex: no C0, no DEL
        return None
    found = _REFUSED.search(s)
    if found is None:
        return None
    char = found.group()
    code = f"U+{ord(char):04X}"
    if _BIDI.match(char):
        return f"must not contain bidirectional control characters ({code})"
    if unicodedata.category(char) in ("Cc", "Zl", "Zp"):
        return f"must not contain control characters or line breaks ({code})"
    return f"must not contain invisible characters ({code})"


def _script(char: str) -> str | None:
    """LATIN, CYRILLIC or GREEK for a letter of one of those scripts, else ``None``.

    :mod:`unicodedata` has no Script property, but the letters of these scripts are named
    after it ("CYRILLIC SMALL LETTER A", "FULLWIDTH LATIN CAPITAL LETTER A", "MODIFIER LETTER
    SMALL GREEK GAMMA") and no letter of another script is. The few named otherwise count
    for no script: signs (micro, Kelvin, Ohm), a few modifier letters (U+1D43), and the
    mathematical alphanumerics, which UTS #39 counts as Common anyway.
    """
    if not char.isalpha():
        return None
    words = unicodedata.name(char, "").split()
    return next((w for w in _CONFUSABLE_SCRIPTS if w in words), None)


def _mixed_script(s: str) -> str | None:
    """Why ``s`` holds a mixed-script confusable, or ``None``.

    Latin, Cyrillic and Greek share look-alike letters (Latin "a", Cyrillic U+0430 and
    Greek U+03B1 look the same; so do "o", U+043E and U+03BF, or "J" and U+0408), so a word
    mixing them (Latin "paypal" with a Cyrillic U+0430) passes for another name. A word (a
    run of letters and combining marks) must keep to one of them. Anything else separates
    words, so device names such as "PC-" or "LAPTOP-" followed by a Cyrillic place or person pass: refusing a real
    machine's name would cost its agent every batch, while a look-alike needs letters side
    by side to pass for a name. Words of other scripts (kana and kanji, Arabic, Hangul) mix
    freely. A name written wholly in Cyrillic that looks Latin (whole-script confusable) is
    not detected: that needs Unicode's confusables table.
    """
    if s.isascii():
        return None
    first: str | None = None
    for i, char in enumerate(s):
        if not (char.isalpha() or unicodedata.category(char).startswith("M")):
            first = None  # a word ends
            continue
        script = _script(char)
        if script is None:
            continue
        if first is None:
            first = script
        elif script != first:
            return (
                f"must not mix {first.title()} and {script.title()} letters in one word "
                f"(U+{ord(char):04X} {unicodedata.name(char)} in {s[max(0, i - 20) : i + 20]!r})"
            )
    return None


def _name_problem(value: str) -> str | None:
    """What is wrong with an agent name (device, domain, logon or display name), or ``None``.

    Admins decide from these names who gets a license, and they are shown everywhere an
    admin looks (the queue, reports, a terminal client, email digests): each must read as
    exactly what it is. So no controls, bidi controls or invisible characters
    (:func:`_hidden_or_control`), and no word mixing look-alike scripts
    (:func:`_mixed_script`).
    """
    if not 1 <= len(value) <= 256:
        return "must be 1 to 256 characters"
    if (why := _hidden_or_control(value)) is not None:
        return why
    if (why := _mixed_script(value)) is not None:
        return why
    return unstorable(value)


def _app_problem(value: str) -> str | None:
    """What is wrong with an event's app (an executable's name), or ``None``.

    Shown in reports and the admin client like a name, so it refuses what would not show
    as it is (:func:`_hidden_or_control`). Mixed scripts are let through: an app name is
    not what anyone is told apart by.
    """
    if not value:
        return "required: a non-empty string"
    if len(value) > 256:
        return "must be at most 256 characters"
    if (why := _hidden_or_control(value)) is not None:
        return why
    return unstorable(value)


def _free_text_problem(value: str, limit: int) -> str | None:
    """What is wrong with a window title or url, or ``None``.

    These are free text, as the user's apps showed it: a title may hold a tab, or the bidi
    marks of a right-to-left page. SPEC §7 refuses controls only in names and app, so they
    are kept as reported, controls included, and every client escapes stored text on
    display. Only what cannot be stored (:func:`unstorable`) is refused.
    """
    if len(value) > limit:
        return f"must be at most {limit} characters"
    return unstorable(value)


class _Problems:
    LIMIT = 50

    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, field: str, message: str) -> None:
        if len(self.items) < self.LIMIT:
            self.items.append({"field": field, "message": message})


def _name(obj: dict[str, Any], key: str, where: str, problems: _Problems, required: bool = True) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            problems.add(f"{where}.{key}", "required")
        return None
    if not isinstance(value, str):
        problems.add(f"{where}.{key}", "must be a string")
    elif (why := _name_problem(value)) is not None:
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
    elif (why := _free_text_problem(value, limit)) is not None:
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
    elif (why := _app_problem(app)) is not None:
        problems.add(f"{where}.app", why)
    title = _optional_text(raw, "title", where, 2048, problems)
    url = _optional_text(raw, "url", where, 2048, problems)
    productivity = raw.get("productivity", "neutral")
    if productivity is None:
        productivity = "neutral"
    if productivity not in _PRODUCTIVITY:
        problems.add(f"{where}.productivity", "must be productive, unproductive or neutral")
    if len(problems.items) != before:
        return None
    assert start is not None and isinstance(duration, int) and isinstance(app, str)
    return Event(start, duration, app, title, url, productivity)


def parse_batch(body: Any, now: datetime | None = None) -> Batch:
    """Validate a decoded ``/ingest`` body; raises :class:`BatchInvalid` or :class:`BatchTooLarge`.

    ``now`` bounds event starts (at most a day ahead, for clock skew); default: the real time.
    """
    problems = _Problems()
    latest = (now or datetime.now(UTC)) + MAX_CLOCK_SKEW
    if not isinstance(body, dict):
        raise BatchInvalid([{"field": "", "message": "the body must be a JSON object"}])
    batch_id = body.get("batchId")
    if not isinstance(batch_id, str) or not 1 <= len(batch_id) <= 128:
        problems.add("batchId", "required: a string of 1 to 128 characters")
    elif (why := unstorable(batch_id)) is not None:
        problems.add("batchId", why)
    agent_raw = body.get("agent")
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
    events_raw = body.get("events")
    events: list[Event] = []
    if not isinstance(events_raw, list):
        problems.add("events", "required: a list (may be empty)")
    elif len(events_raw) > MAX_EVENTS:
        raise BatchTooLarge(f"a batch carries at most {MAX_EVENTS} events; this one has {len(events_raw)}")
    else:
        for i, raw in enumerate(events_raw):
            event = _event(raw, f"events[{i}]", problems, latest)
            if event is not None:
                events.append(event)
    if problems.items:
        raise BatchInvalid(problems.items)
    assert isinstance(batch_id, str) and agent is not None
    return Batch(batch_id, agent, events)


# ---------------------------------------------------------------------------- ingestion


async def ingest(session: AsyncSession, account_id: int, batch: Batch, now: datetime) -> IngestResult:
    """Admit the batch's agent and store its events, once per ``(agent, batchId)``."""
    (result,) = await ingest_many(session, [(account_id, batch)], now)
    return result


async def ingest_many(
    session: AsyncSession, items: Sequence[tuple[int, Batch]], now: datetime
) -> list[IngestResult]:
    """Store several ``(account_id, batch)`` in the caller's transaction; one result each, in order.

    The work is done in a fixed number of statements whatever the number of batches (one
    look-up of stored batch ids, one of known agents and aliases, one insert of all events,
    ...), new agents included (:func:`admission.admit_many`). This
    is what lets the ingest endpoint commit concurrent batches together (group commit).
    """
    # Every writer that touches an account's users takes the account's lock first (admin
    # actions, admission, retention). Ingestion updates users and agents too, so it does the
    # same: on PostgreSQL that keeps lock order uniform and rules out deadlocks with an
    # admin action on the same rows; on SQLite the transaction already holds the write lock.
    await changes.lock_accounts(session, (account_id for account_id, _ in items))
    batch_keys = [(account_id, b.agent.key, b.batch_id) for account_id, b in items]
    stored = await _stored_responses(session, batch_keys)
    known = await admission.resolve_keys(session, {(account_id, b.agent.key) for account_id, b in items})

    # Admit the new keys first, per account and in arrival order, in bulk.
    fresh: dict[int, list[int]] = defaultdict(list)
    seen_batches: set[tuple[int, str, str]] = set()
    for n, ((account_id, batch), bkey) in enumerate(zip(items, batch_keys, strict=True)):
        if bkey in stored or bkey in seen_batches:
            continue
        seen_batches.add(bkey)
        if (account_id, batch.agent.key) not in known:
            fresh[account_id].append(n)
    admissions: dict[int, admission.Admission] = {}
    for account_id, positions in fresh.items():
        admitted = await admission.admit_many(
            session, account_id, [items[n][1].agent for n in positions], now, known=known
        )
        admissions.update(zip(positions, admitted, strict=True))

    results: list[IngestResult] = []
    first_in_group: dict[tuple[int, str, str], IngestResult] = {}
    rows: list[tuple[Any, ...]] = []  # in _EVENT_COLUMNS order
    agents_seen: set[int] = set()
    users_seen: set[int] = set()
    pending_accounts: set[int] = set()
    batch_rows: list[dict[str, Any]] = []
    for n, ((account_id, batch), bkey) in enumerate(zip(items, batch_keys, strict=True)):
        if bkey in stored:
            results.append(_replayed(stored[bkey]))
            continue
        if bkey in first_in_group:
            first = first_in_group[bkey]
            # An ignored batch is never stored, so its replay is not a duplicate either.
            results.append(first if first.status == AdmissionStatus.IGNORED else replace(first, duplicate=True))
            continue
        entered = False
        if n in admissions:
            outcome = admissions[n]
            if outcome.status == AdmissionStatus.IGNORED:
                # Do-not-track: accepted and dropped; nothing is stored, not even the batch id.
                ignored = IngestResult(None, None, AdmissionStatus.IGNORED, 0)
                first_in_group[bkey] = ignored
                results.append(ignored)
                continue
            assert outcome.agent_id is not None and outcome.user_id is not None
            agent = (outcome.agent_id, outcome.user_id, outcome.status)
            entered = outcome.entered_queue
        else:
            agent = known[(account_id, batch.agent.key)]
        agent_id, user_id, status = agent
        rows.extend(
            (user_id, agent_id, e.start, e.duration_seconds, e.app, e.title, e.url, e.productivity)
            for e in batch.events
        )
        agents_seen.add(agent_id)
        users_seen.add(user_id)
        if status == AdmissionStatus.PENDING and not entered:
            # A pending user's retained activity, last-seen times and agents are part of
            # what the queue shows: even a heartbeat changes it, and cached queue pages
            # are keyed by the account's queue version.
            pending_accounts.add(account_id)
        result = IngestResult(agent_id, user_id, status, len(batch.events))
        first_in_group[bkey] = result
        results.append(result)
        batch_rows.append(
            {
                "account_id": account_id,
                "agent_key": bkey[1],
                "batch_id": bkey[2],
                "response": json.dumps(result.to_json()),
                "created_at": now,
            }
        )

    if rows:
        await _insert_events(session, rows)
    if agents_seen:
        await session.execute(
            sa.update(Agent).where(Agent.id.in_(agents_seen)).values(last_seen_at=now)  # type: ignore[union-attr]
        )
        await session.execute(
            sa.update(User).where(User.id.in_(users_seen)).values(last_seen_at=now)  # type: ignore[union-attr]
        )
    if batch_rows:
        await session.execute(sa.insert(IngestBatch.__table__), batch_rows)  # type: ignore[attr-defined]
    for account_id in sorted(pending_accounts):
        await bump_queue_version(session, account_id)
    return results


_EVENT_COLUMNS = ("user_id", "agent_id", "start", "duration_seconds", "app", "title", "url", "productivity")
_PLACEHOLDERS: dict[str, Callable[[int], str]] = {"qmark": lambda n: "?", "numeric_dollar": lambda n: f"${n}", "format": lambda n: "%s"}


# Probes for the fast timestamp binder: microseconds, a day and year boundary, an offset zone.
_BIND_PROBES = (
    datetime(2026, 11, 26, 9, 5, 7, 123456, tzinfo=UTC),
    datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC),
    datetime(2027, 1, 1, 0, 30, 0, 1, tzinfo=timezone(timedelta(hours=2))),
)
_binders: dict[str, Callable[[datetime], Any]] = {}


def _start_binder(dialect: sa.Dialect) -> Callable[[datetime], Any]:
    """How an event's start is bound: exactly as a Core statement binds it, so stored values
    compare and sort the same as every other timestamp (on SQLite they are text).

    SQLAlchemy's own processor (the column type's, then SQLite's ``DATETIME`` formatting in
    Python) was about a tenth of the server's CPU while ingesting. On SQLite the same text
    comes from C:
    naive UTC ``isoformat(" ", "microseconds")``. That fast form is used only when it gives
    exactly SQLAlchemy's text on the probes; otherwise, and on other databases, the
    dialect's processor is.
    """
    binder = _binders.get(dialect.name)
    if binder is None:
        start_type = ActivityEvent.__table__.c.start.type.dialect_impl(dialect)  # type: ignore[attr-defined]
        slow: Callable[[datetime], Any] = start_type.bind_processor(dialect) or (lambda v: v)
        binder = slow
        if dialect.name == "sqlite":

            def fast(t: datetime) -> str:
                return t.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")

            if all(fast(p) == slow(p) for p in _BIND_PROBES):
                binder = fast
        _binders[dialect.name] = binder
    return binder


async def _insert_events(session: AsyncSession, rows: list[tuple[Any, ...]]) -> None:
    """Insert activity rows (tuples in :data:`_EVENT_COLUMNS` order) with one executemany.

    The hottest statement of the server: tens of thousands of rows a second. SQLAlchemy's
    per-row parameter processing costs more than the database's insert itself, so the rows
    go to the driver as plain tuples; only the timestamp goes through its column type's own
    bind processor (how it is stored differs per database). A dialect with another
    parameter style takes the ordinary Core executemany.
    """
    conn = await session.connection()
    dialect = conn.dialect
    table = ActivityEvent.__table__  # type: ignore[attr-defined]
    placeholder = _PLACEHOLDERS.get(dialect.paramstyle)
    if placeholder is None:
        await conn.execute(sa.insert(table), [dict(zip(_EVENT_COLUMNS, r, strict=True)) for r in rows])
        return
    to_db = _start_binder(dialect)
    sql = (
        f"INSERT INTO {dialect.identifier_preparer.format_table(table)} ({', '.join(_EVENT_COLUMNS)}) "
        f"VALUES ({', '.join(placeholder(i + 1) for i in range(len(_EVENT_COLUMNS)))})"
    )
    await conn.exec_driver_sql(sql, [(u, a, to_db(t), *rest) for u, a, t, *rest in rows])


def _replayed(stored: str) -> IngestResult:
    first = json.loads(stored)
    return IngestResult(
        agent_id=None if first["agentId"] is None else int(first["agentId"]),
        user_id=None if first["userId"] is None else int(first["userId"]),
        status=first["status"],
        accepted=first["accepted"],
        duplicate=True,
    )


async def _stored_responses(
    session: AsyncSession, keys: Sequence[tuple[int, str, str]]
) -> dict[tuple[int, str, str], str]:
    if not keys:
        return {}
    rows = await session.execute(
        sa.select(col(IngestBatch.account_id), col(IngestBatch.agent_key), col(IngestBatch.batch_id), col(IngestBatch.response)).where(
            sa.tuple_(IngestBatch.account_id, IngestBatch.agent_key, IngestBatch.batch_id).in_(keys)
        )
    )
    return {(a, k, b): r for a, k, b, r in rows}


# ---------------------------------------------------------------------------- reports


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
        raise DomainError(
            ErrorCode.INVALID_INPUT, "'to' is before 'from'", "to"
        )
    if (to_day - from_day).days + 1 > MAX_REPORT_DAYS:
        raise DomainError(
            ErrorCode.INVALID_INPUT, f"a report covers at most {MAX_REPORT_DAYS} days", "to"
        )
    if from_day < EARLIEST.date() or to_day.year > 9000:
        raise DomainError(ErrorCode.INVALID_INPUT, f"dates must be from {EARLIEST.date()} on", "from")
    lo = datetime.combine(from_day, time.min, UTC)
    hi = datetime.combine(to_day + timedelta(days=1), time.min, UTC)
    return lo, hi


async def activity_report(
    session: AsyncSession, account_id: int, from_day: date, to_day: date
) -> list[UserActivity]:
    """Per licensed user, activity that started on the given UTC days (inclusive), most active first."""
    lo, hi = _day_bounds(from_day, to_day)
    e = ActivityEvent.__table__.alias("e")  # type: ignore[attr-defined]
    in_range = sa.and_(e.c.user_id == User.id, e.c.start >= lo, e.c.start < hi)

    def seconds(cond: Any = None) -> Any:
        value = e.c.duration_seconds if cond is None else sa.case((cond, e.c.duration_seconds), else_=0)
        return sa.func.coalesce(sa.func.sum(value), 0)

    active = seconds().label("active")
    rows = (
        await session.execute(
            sa.select(
                User,
                active,
                seconds(e.c.productivity == "productive"),
                seconds(e.c.productivity == "unproductive"),
            )
            .select_from(User)
            .outerjoin(e, in_range)
            .where(User.account_id == account_id, User.status == UserStatus.LICENSED)  # type: ignore[arg-type]
            .group_by(User.id)  # type: ignore[arg-type]
            .order_by(active.desc(), User.id)  # type: ignore[arg-type]
        )
    ).all()

    apps: dict[int, list[AppUsage]] = defaultdict(list)
    app_rows = await session.execute(
        sa.select(e.c.user_id, e.c.app, sa.func.sum(e.c.duration_seconds).label("s"))
        .select_from(e)
        .join(User, User.id == e.c.user_id)
        .where(
            User.account_id == account_id,  # type: ignore[arg-type]
            User.status == UserStatus.LICENSED,  # type: ignore[arg-type]
            e.c.start >= lo,
            e.c.start < hi,
        )
        .group_by(e.c.user_id, e.c.app)
        .order_by(e.c.user_id, sa.desc("s"), e.c.app)
    )
    for user_id, app, total in app_rows:
        if len(apps[user_id]) < TOP_APPS:
            apps[user_id].append(AppUsage(app, int(total)))
    return [
        UserActivity(user, int(a), int(p), int(u), apps.get(user.id or 0, []))
        for user, a, p, u in rows
    ]
