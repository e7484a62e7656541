"""``DateTime`` is serialized as Strawberry's is (``isoformat()``), by a faster path for UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import strawberry
from hypothesis import given, settings
from hypothesis import strategies as st

from server.graphql.execution import Executor
from server.graphql.schema import schema
from server.graphql.types.base import DATETIME, _isoformat

ZONES = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(minutes=-330)), None])


@given(st.datetimes(timezones=ZONES))
def test_any_time_is_written_as_isoformat_writes_it(value: datetime) -> None:
    assert _isoformat(value) == value.isoformat()


def test_utc_times_take_the_fast_path_and_keep_every_digit() -> None:
    for value, text in [
        (datetime(2026, 11, 27, 8, 54, 50, 888392, tzinfo=UTC), "2026-11-27T08:54:50.888392+00:00"),
        (datetime(2026, 11, 27, 8, 54, 50, tzinfo=UTC), "2026-11-27T08:54:50+00:00"),
        (datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=UTC), "2026-01-01T00:00:00.000001+00:00"),
        (datetime(1, 1, 1, tzinfo=UTC), "0001-01-01T00:00:00+00:00"),
        (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "9999-12-31T23:59:59.999999+00:00"),
    ]:
        assert _isoformat(value) == text == value.isoformat()


def test_the_schema_serializes_datetime_with_it() -> None:
    scalar = schema._schema.type_map["DateTime"]
    assert scalar.serialize is _isoformat  # type: ignore[attr-defined]
    assert scalar.description == "Date with time (isoformat)"


@strawberry.type
class Stamped:
    at: datetime
    maybe: datetime | None


_STAMPS: list[Stamped] = []


@strawberry.type
class StampQuery:
    @strawberry.field
    def stamps(self) -> list[Stamped]:
        return _STAMPS


STAMP_SCHEMA = strawberry.Schema(
    StampQuery, scalar_overrides={datetime: DATETIME}, execution_context_class=Executor
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.datetimes(timezones=ZONES), st.none() | st.datetimes(timezones=ZONES)), max_size=6)
)
def test_the_generated_completion_writes_times_as_isoformat_does(
    values: list[tuple[datetime, datetime | None]],
) -> None:
    """The completion written out for DateTime (completion.inline: UTC times without the
    call) answers every time, in any zone, as isoformat(); and what the generated function
    does not take, the call answers."""
    _STAMPS[:] = [Stamped(at=a, maybe=b) for a, b in values]
    for _ in range(3):  # the generated function is made on first use, then settles
        result = STAMP_SCHEMA.execute_sync("{ stamps { at maybe } }")
        assert result.errors is None
        assert result.data == {
            "stamps": [
                {"at": a.isoformat(), "maybe": None if b is None else b.isoformat()} for a, b in values
            ]
        }
