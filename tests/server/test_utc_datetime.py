"""UTCDateTime's one-function SQLite conversions give what the decorator's composition gives."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from server.domain.columns import UTCDateTime


def _need(process: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    assert process is not None
    return process


DIALECT = sqlite.dialect()
COLUMN = UTCDateTime()
BIND = _need(COLUMN._cached_bind_processor(DIALECT))
RESULT = _need(COLUMN._cached_result_processor(DIALECT, None))
# The decorator's general composition: process_bind_param / process_result_value around
# SQLAlchemy's own SQLite DATETIME processors (what UTCDateTime used before).
_IMPL: Any = COLUMN.dialect_impl(DIALECT)
GENERAL_BIND = _need(sa.types.TypeDecorator.bind_processor(_IMPL, DIALECT))
GENERAL_RESULT = _need(sa.types.TypeDecorator.result_processor(_IMPL, DIALECT, None))

ZONES = st.sampled_from(
    [UTC, ZoneInfo("Europe/Paris"), ZoneInfo("America/New_York"), timezone(timedelta(hours=5, minutes=30))]
)
AWARE = st.datetimes(
    min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=ZONES, allow_imaginary=False
)


def _outcome(process: Any, value: Any) -> Any:
    try:
        return process(value)
    except Exception as exc:
        return type(exc)


def test_the_fast_processors_are_in_use() -> None:
    assert BIND is not GENERAL_BIND and RESULT is not GENERAL_RESULT


@given(AWARE)
def test_bind_and_result_match_the_general_path(value: datetime) -> None:
    stored = BIND(value)
    assert stored == GENERAL_BIND(value)
    assert isinstance(stored, str) and len(stored) == 26
    back = RESULT(stored)
    # In UTC: PEP 495 makes an ambiguous local time unequal to any other zone's.
    assert back == GENERAL_RESULT(stored) == value.astimezone(UTC)
    assert back.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-26 09:00:00",
        "2026-11-26T09:00:00.5",
        "2026-11-26 09:00:00+02:00",
        "2026-11-26",
        "2026-11-26T09:00:00.123456",
        "2026-11-26 09:00:00.12+01:00",
        "not a time at all, 26 chs",
        None,
    ],
)
def test_other_texts_read_as_the_general_path_reads_them(text: str | None) -> None:
    assert _outcome(RESULT, text) == _outcome(GENERAL_RESULT, text)


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        BIND(datetime(2026, 11, 26, 9))
    assert BIND(None) is None


def test_a_real_sqlite_file_orders_and_returns_aware_utc(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'times.db'}")
    meta = sa.MetaData()
    table = sa.Table("t", meta, sa.Column("id", sa.Integer, primary_key=True), sa.Column("at", UTCDateTime()))
    meta.create_all(engine)
    paris = ZoneInfo("Europe/Paris")
    values = [
        datetime(2026, 11, 26, 10, 0, tzinfo=paris),  # 09:00 UTC
        datetime(2026, 11, 26, 8, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 11, 26, 9, 0, 0, 1, tzinfo=UTC),
    ]
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"id": i, "at": v} for i, v in enumerate(values)])
        conn.execute(table.insert(), [{"id": 9, "at": None}])
    with engine.connect() as conn:
        raw = conn.exec_driver_sql("SELECT at FROM t WHERE id = 0").scalar_one()
        got = (
            conn.execute(sa.select(table.c.at).where(table.c.at.is_not(None)).order_by(table.c.at))
            .scalars()
            .all()
        )
        later = (
            conn.execute(sa.select(table.c.id).where(table.c.at > datetime(2026, 11, 26, 9, tzinfo=UTC)))
            .scalars()
            .all()
        )
        missing = conn.execute(sa.select(table.c.at).where(table.c.id == 9)).scalar_one()
    engine.dispose()
    assert raw == "2026-11-26 09:00:00.000000"
    assert got == sorted(values) and all(v.tzinfo is UTC for v in got)
    assert later == [2]
    assert missing is None
