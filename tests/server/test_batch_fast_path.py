"""The one-pass check of a well-formed event accepts only what the detailed check accepts, and
makes the stored row of the same event (server.domain.activity.batch); a body decoded by
msgspec gives exactly what decoding and the detailed check give; a parsed batch packs into
exactly the chunks and rollups its events did before rows (server.domain.activity.chunks)."""

from __future__ import annotations

import json
import zlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.domain.activity import chunks
from server.domain.activity.batch import (
    _EARLIEST_US,
    BatchInvalid,
    BatchTooLarge,
    Event,
    EventRows,
    _event,
    _plain_row,
    _Problems,
    event_row,
    parse_batch,
    parse_body,
    row_event,
)
from server.web.ingest import _loads

NOW = datetime(2026, 11, 26, 9, tzinfo=UTC)
LATEST = NOW + timedelta(days=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
US = timedelta(microseconds=1)
DAY_US = 86_400_000_000
LATEST_US = (LATEST - EPOCH) // US
CODES = ("neutral", "productive", "unproductive")  # the chunk codec's, stored data

_texts = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.sampled_from(["Q3.xlsx", "a\x00b", "x" * 2049, "é" * 2049, "\ud800", "tab\there", "\u202eevil"]),
    st.integers(),
)
_zones = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-8)), None])
_starts = st.one_of(
    st.datetimes(min_value=datetime(1999, 12, 30), max_value=datetime(2026, 11, 28), timezones=_zones).map(
        lambda t: t.isoformat()
    ),
    st.sampled_from(
        [
            "2026-11-26T09:00:00",
            "not a date",
            "2026-11-26T09:00:00Z",
            "2026-11-26T10:00:00+01:00",
            "2026-11-26",
            "20261126T090000Z",
            "2026-11-26T09:00:00.5+00:00",
            "1999-12-31T23:00:00-01:00",
            "2026-11-27T09:00:00.000001+00:00",
            "",
        ]
    ),
    st.integers(),
    st.none(),
)
_productivities = st.sampled_from(["productive", "neutral", "unproductive", None, "busy", 3, True, 0, 1.0])
_events = st.fixed_dictionaries(
    {},
    optional={
        "start": _starts,
        "durationSeconds": st.one_of(st.integers(-2, 86_401), st.booleans(), st.floats(0, 10), st.none()),
        "app": st.one_of(st.sampled_from(["excel.exe", "", "a\x1bb", "x" * 257, "\u200bapp"]), _texts),
        "title": _texts,
        "url": _texts,
        "productivity": _productivities,
    },
)
_bounds = st.sampled_from([datetime(2000, 1, 1, tzinfo=UTC), LATEST]).flatmap(
    lambda t: st.tuples(st.integers(-2, 2), st.sampled_from([UTC, timezone(timedelta(hours=-8))])).map(
        lambda n_zone: (t + n_zone[0] * US).astimezone(n_zone[1]).isoformat()
    )
)
# Well-formed events of one UTC day or two (the usual batch: one chunk or two), and some
# starts at a bound, to the microsecond.
_good_events = st.builds(
    lambda start, seconds, app, title, productivity: {
        "start": start,
        "durationSeconds": seconds,
        "app": app,
        "title": title,
        "url": None,
        "productivity": productivity,
    },
    st.one_of(
        st.tuples(st.integers(0, 59), st.sampled_from([UTC, timezone(timedelta(hours=2))])).map(
            lambda m_zone: (
                (datetime(2026, 11, 25, 23, 30, tzinfo=UTC) + timedelta(minutes=m_zone[0]))
                .astimezone(m_zone[1])
                .isoformat()
            )
        ),
        _bounds,
    ),
    st.integers(0, 86_400),
    st.sampled_from(["excel.exe", "chrome.exe", "teams.exe"]),
    st.one_of(st.none(), st.sampled_from(["Q3.xlsx", "é"])),
    st.sampled_from(["productive", "neutral", "unproductive", None]),
)


@settings(max_examples=3_000, deadline=None)
@given(st.one_of(_events, _good_events, st.lists(st.integers(), max_size=2), st.none()))
def test_the_fast_path_agrees_with_the_detailed_check(raw: Any) -> None:
    fast = _plain_row(raw, _EARLIEST_US, LATEST_US, {})
    problems = _Problems()
    detailed = _event(raw, "events[0]", problems, LATEST)
    if fast is not None:
        assert detailed is not None and not problems.items
        assert fast == event_row(detailed)
        # The event read back from the row is the detailed check's, in UTC.
        back = row_event(fast)
        assert back == detailed and back.start.tzinfo == detailed.start.tzinfo == UTC
        assert (back.start.isoformat(), back.productivity) == (
            detailed.start.isoformat(),
            detailed.productivity,
        )


def _reference(body: dict[str, Any]) -> list[Event]:
    """What the detailed check makes of each event, or BatchInvalid with its problems."""
    problems = _Problems()
    found = [_event(raw, f"events[{i}]", problems, LATEST) for i, raw in enumerate(body["events"])]
    if problems.items:
        raise BatchInvalid(problems.items)
    return [e for e in found if e is not None]


def _packed_before_rows(
    user_id: int, agent_id: int, origin_id: int, events: list[Event]
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Chunks and rollup rows as ingestion packed events before rows: per event from its
    datetime, rollups keyed by productivity name (the code as it was)."""
    by_day: dict[int, list[tuple[Any, ...]]] = {}
    rollups: dict[tuple[Any, ...], list[int]] = {}
    for e in events:
        s = (e.start - EPOCH) // US
        d = s // DAY_US
        by_day.setdefault(d, []).append((s, e.duration_seconds, e.app, e.title, e.url, e.productivity))
        end = s + e.duration_seconds * 1_000_000
        t = rollups.get((agent_id, origin_id, d, e.app, e.productivity))
        if t is None:
            rollups[(agent_id, origin_id, d, e.app, e.productivity)] = [1, e.duration_seconds, s, s, end]
        else:
            t[0] += 1
            t[1] += e.duration_seconds
            t[2], t[3], t[4] = min(t[2], s), max(t[3], s), max(t[4], end)
    packed = [
        (
            user_id,
            agent_id,
            origin_id,
            d,
            min(r[0] for r in day),
            max(r[0] for r in day),
            len(day),
            zlib.compress(orjson.dumps([(s, du, a, t, u, CODES.index(p)) for s, du, a, t, u, p in day]), 1),
        )
        for d, day in by_day.items()
    ]
    rows = [(*key, user_id, *totals) for key, totals in rollups.items()]
    return packed, rows


def _packed_now(
    user_id: int, agent_id: int, origin_id: int, events: Any
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    writes = chunks.Writes()
    writes.add(user_id, agent_id, origin_id, events)
    # Twice more for another origin of the same agent and for the same one: totals add up.
    writes.add(user_id, agent_id, origin_id + 1, events)
    writes.add(user_id, agent_id, origin_id, events)
    _, rollup_rows = writes.rows()
    rows = [
        (
            r["agent_id"],
            r["origin_agent_id"],
            (r["first_start"] - EPOCH) // US // DAY_US,
            r["app"],
            r["productivity"],
            r["user_id"],
            r["event_count"],
            r["active_seconds"],
            (r["first_start"] - EPOCH) // US,
            (r["last_start"] - EPOCH) // US,
            (r["last_end"] - EPOCH) // US,
        )
        for r in rollup_rows
    ]
    return writes.chunks, rows


def _packed_before_rows_thrice(
    user_id: int, agent_id: int, origin_id: int, events: list[Event]
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    a_chunks, a_rows = _packed_before_rows(user_id, agent_id, origin_id, events)
    b_chunks, b_rows = _packed_before_rows(user_id, agent_id, origin_id + 1, events)
    totals: dict[tuple[Any, ...], list[int]] = {}
    for row in [*a_rows, *b_rows, *a_rows]:
        key, (u, n, sec, f, la, end) = row[:5], row[5:]
        t = totals.get(key)
        if t is None:
            totals[key] = [u, n, sec, f, la, end]
        else:
            t[1] += n
            t[2] += sec
            t[3], t[4], t[5] = min(t[3], f), max(t[4], la), max(t[5], end)
    return [*a_chunks, *b_chunks, *a_chunks], [(*k, *v) for k, v in totals.items()]


def _body(events: list[Any]) -> dict[str, Any]:
    return {
        "batchId": "b-1",
        "agent": {"deviceName": "PC", "domain": "D", "logonName": "ann"},
        "events": events,
    }


@settings(max_examples=1_500, deadline=None)
@given(st.lists(st.one_of(_good_events, _good_events, _events), max_size=12))
def test_a_parsed_batch_is_what_the_detailed_check_makes_and_packs_as_before(raw: list[Any]) -> None:
    body = _body(raw)
    try:
        expected = _reference(body)
    except BatchInvalid as exc:
        with pytest.raises(BatchInvalid) as got:
            parse_batch(body, NOW)
        assert got.value.details == exc.details
        return
    batch = parse_batch(body, NOW)
    assert isinstance(batch.events, EventRows)
    assert list(batch.events) == expected and batch.events == expected and len(batch.events) == len(expected)
    assert [e.start.tzinfo for e in batch.events] == [UTC] * len(expected)
    assert batch.events.rows == [event_row(e) for e in expected]
    # The rows the batch is stored as: the same chunk bytes and rollups as the events made.
    assert _packed_now(7, 8, 9, batch.events) == _packed_before_rows_thrice(7, 8, 9, expected)
    assert _packed_now(7, 8, 9, expected) == _packed_before_rows_thrice(7, 8, 9, expected)


def test_the_rows_view_reads_as_a_list_of_events() -> None:
    raw = [
        {"start": "2026-11-26T10:00:00+01:00", "durationSeconds": 5, "app": "a.exe", "productivity": None},
        {"start": "2026-11-26T08:00:00Z", "durationSeconds": 7, "app": "b.exe", "title": "é", "url": "u"},
    ]
    events = parse_batch(_body(raw), NOW).events
    first = Event(datetime(2026, 11, 26, 9, tzinfo=UTC), 5, "a.exe", None, None, "neutral")
    second = Event(datetime(2026, 11, 26, 8, tzinfo=UTC), 7, "b.exe", "é", "u", "neutral")
    assert events[0] == first and events[-1] == second and events[1:] == [second]
    assert list(events) == [first, second] and events == [first, second] and events != [first]
    assert events == parse_batch(_body(raw), NOW).events and events != parse_batch(_body(raw[:1]), NOW).events
    assert first in events and events.index(second) == 1
    with pytest.raises(TypeError):
        hash(events)


@pytest.mark.parametrize("productivity", [[], {}, ["productive"], 1, True])
def test_a_productivity_that_is_not_a_string_is_a_clear_error(productivity: object) -> None:
    """A list or an object once raised TypeError in a membership test (a 500): now both paths
    refuse it as any other wrong productivity."""
    raw = {
        "start": "2026-11-26T08:00:00Z",
        "durationSeconds": 7,
        "app": "b.exe",
        "productivity": productivity,
    }
    assert _plain_row(raw, _EARLIEST_US, LATEST_US, {}) is None  # the fast path defers
    problems = _Problems()
    _event(raw, "events[0]", problems, LATEST)
    assert [p["field"] for p in problems.items] == ["events[0].productivity"]
    with pytest.raises(BatchInvalid) as refused:
        parse_batch(_body([raw]), NOW)
    assert refused.value.details == [
        {"field": "events[0].productivity", "message": "must be productive, unproductive or neutral"}
    ]


def _outcome(parse: Any) -> Any:
    """A parse's batch (its id, agent and rows), or its refusal (the exception's type and details)."""
    try:
        batch = parse()
    except (BatchInvalid, BatchTooLarge) as exc:
        return type(exc).__name__, getattr(exc, "details", str(exc))
    except (ValueError, RecursionError) as exc:  # not JSON: the route's INVALID_JSON
        return "not JSON", str(exc)
    return batch.batch_id, batch.agent, batch.events.rows


_batch_ids = st.one_of(
    st.just("b-1"), st.none(), st.just(""), st.just("x" * 129), st.just("a\x00b"), st.integers()
)
_agents = st.one_of(
    st.just({"deviceName": "PC", "domain": "D", "logonName": "ann"}),
    st.just({"deviceName": "PC", "domain": "D", "logonName": "ann", "displayName": "Ann", "extra": [1]}),
    st.just({"deviceName": "PC", "domain": "D"}),
    st.just({"deviceName": "P\u202eC", "domain": "D", "logonName": "ann", "displayName": None}),
    st.none(),
    st.just(["PC"]),
)


@settings(max_examples=1_500, deadline=None)
@given(
    events=st.one_of(
        st.lists(st.one_of(_good_events, _good_events, _events), max_size=8), st.none(), st.just({})
    ),
    batch_id=_batch_ids,
    agent=_agents,
    extra=st.booleans(),
)
def test_a_body_decoded_by_msgspec_is_parsed_as_decoding_and_checking_it_would(
    events: Any, batch_id: Any, agent: Any, extra: bool
) -> None:
    body: dict[str, Any] = {"batchId": batch_id, "agent": agent, "events": events}
    if extra:
        body["sentAt"] = "2026-11-26T09:00:00Z"  # a key the server does not read
    raw = json.dumps(body).encode()
    assert _outcome(lambda: parse_body(raw, NOW, _loads)) == _outcome(lambda: parse_batch(_loads(raw), NOW))


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b'{"batchId": "b", "events": [1e999999]}',
        b'{"batchId": "\\ud800", "agent": {}, "events": []}',
        b"[" * 5000,
        b'{"batchId": "b", "agent": {"deviceName": "PC", "domain": "D", "logonName": "a"}, "events": '
        + json.dumps([{"start": "2026-11-26T08:00:00Z", "durationSeconds": 1, "app": "a"}] * 5001).encode()
        + b"}",
        b'{"batchId": 123456789012345678901234567890, "agent": null, "events": []}',
    ],
    ids=["not JSON", "huge float", "lone surrogate", "deep nesting", "too many events", "huge integer"],
)
def test_what_msgspec_refuses_is_answered_as_before(raw: bytes) -> None:
    assert _outcome(lambda: parse_body(raw, NOW, _loads)) == _outcome(lambda: parse_batch(_loads(raw), NOW))


def test_a_well_formed_body_is_parsed_without_the_slow_decoder() -> None:
    events = [
        {"start": "2026-11-26T08:00:00Z", "durationSeconds": 7, "app": "b.exe", "title": "é", "url": None}
    ]
    raw = json.dumps(_body(events)).encode()

    def refuse(_raw: bytes) -> Any:
        raise AssertionError("the slow path decoded a well-formed body")

    batch = parse_body(raw, NOW, refuse)
    assert batch.events.rows == parse_batch(_body(events), NOW).events.rows  # type: ignore[attr-defined]
