"""Cursor encoding: the fast path writes exactly what the reference encoding writes."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from server.domain.reads.cursors import Keyset, _decode_cursor

KEYSET = Keyset("pending:entered", (sa.column("at"), sa.column("id")), (datetime, int))
# A zone with seconds in its offset is one orjson writes differently from isoformat().
ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=2)), timezone(timedelta(minutes=-90, seconds=-5)), None]
)
VALUES = st.one_of(
    st.datetimes(timezones=ZONES),
    st.integers(min_value=1, max_value=2**31 - 1),
    st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=20),
)


def reference(kind: str, key: list[Any]) -> str:
    """The encoding cursors have always had: compact JSON, ``isoformat()`` for times, UTF-8."""
    values = [v.isoformat() if isinstance(v, datetime) else v for v in key]
    text = json.dumps([kind, *values], separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@given(st.lists(VALUES, min_size=1, max_size=3))
def test_every_key_encodes_as_the_reference_does(key: list[Any]) -> None:
    assert KEYSET.cursor(key) == reference(KEYSET.kind, key)


@given(st.datetimes(timezones=st.just(UTC)), st.integers(min_value=1, max_value=2**31 - 1))
def test_a_utc_key_comes_back_from_its_cursor(at: datetime, row_id: int) -> None:
    assert _decode_cursor(KEYSET.kind, KEYSET.cursor([at, row_id]), KEYSET.shape) == [at, row_id]
