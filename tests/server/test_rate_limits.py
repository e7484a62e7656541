"""The per-surface rate limits: what a hit answers, and what a refused hit counts."""

from __future__ import annotations

from limits import parse

from server.infra.rate_limits import RateLimits, Surface
from server.infra.settings import Settings


def _limits(graphql: str) -> RateLimits:
    return RateLimits(Settings(database_url="sqlite+aiosqlite:///:memory:", rate_limit_graphql=graphql))


async def test_one_rate_allows_its_amount_then_answers_the_windows_end() -> None:
    limits = _limits("2/minute")
    assert [await limits.hit(Surface.GRAPHQL, "7") for _ in range(2)] == [None, None]
    waits = [await limits.hit(Surface.GRAPHQL, "7") for _ in range(3)]
    assert all(wait is not None and 1 <= wait <= 60 for wait in waits)
    # Refused hits do not move the window: the wait only shrinks.
    assert waits == sorted(waits, reverse=True) and waits[0] - waits[-1] <= 1
    assert await limits.hit(Surface.GRAPHQL, "8") is None  # per key


async def test_a_hit_one_rate_refuses_is_counted_by_none_of_the_others() -> None:
    limits = _limits("2/minute;5/hour")
    assert [await limits.hit(Surface.GRAPHQL, "7") for _ in range(2)] == [None, None]
    for _ in range(4):
        wait = await limits.hit(Surface.GRAPHQL, "7")
        assert wait is not None and 1 <= wait <= 60  # the minute's window, not the hour's
    hour = await limits._limiter.get_window_stats(parse("5/hour"), Surface.GRAPHQL.value, "7")
    assert hour.remaining == 3  # the two allowed hits only
