"""The one-pass check of a well-formed event accepts only what the detailed check accepts,
and makes the same event of it (server.domain.activity.batch)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from server.domain.activity.batch import _event, _plain_event, _Problems

NOW = datetime(2026, 11, 26, 9, tzinfo=UTC)
LATEST = NOW + timedelta(days=1)

_texts = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.sampled_from(["Q3.xlsx", "a\x00b", "x" * 2049, "é" * 2049, "\ud800", "tab\there", "\u202eevil"]),
    st.integers(),
)
_starts = st.one_of(
    st.datetimes(
        min_value=datetime(1999, 12, 30),
        max_value=datetime(2026, 11, 28),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-8))]),
    ).map(lambda t: t.isoformat()),
    st.sampled_from(["2026-11-26T09:00:00", "not a date", "2026-11-26T09:00:00Z", ""]),
    st.integers(),
    st.none(),
)
_events = st.fixed_dictionaries(
    {},
    optional={
        "start": _starts,
        "durationSeconds": st.one_of(st.integers(-2, 86_401), st.booleans(), st.floats(0, 10), st.none()),
        "app": st.one_of(st.sampled_from(["excel.exe", "", "a\x1bb", "x" * 257, "\u200bapp"]), _texts),
        "title": _texts,
        "url": _texts,
        "productivity": st.sampled_from(["productive", "neutral", "unproductive", None, "busy", 3]),
    },
)


@settings(max_examples=2_000, deadline=None)
@given(st.one_of(_events, st.lists(st.integers(), max_size=2), st.none()))
def test_the_fast_path_agrees_with_the_detailed_check(raw: Any) -> None:
    fast = _plain_event(raw, LATEST, {})
    problems = _Problems()
    detailed = _event(raw, "events[0]", problems, LATEST)
    if fast is not None:
        assert detailed == fast and not problems.items
