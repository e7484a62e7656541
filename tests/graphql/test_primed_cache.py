"""server.graphql.context.Primed: a DataLoader cache whose primed values wait as values."""

from __future__ import annotations

import pytest
from strawberry.dataloader import DataLoader

from server.graphql.context import Primed, loader


def _counting() -> tuple[DataLoader[int, str], list[list[int]]]:
    calls: list[list[int]] = []

    async def load(keys: list[int]) -> list[str]:
        calls.append(list(keys))
        return [f"loaded {k}" for k in keys]

    return loader(load), calls


async def test_a_primed_key_is_answered_without_the_batch_function() -> None:
    dl, calls = _counting()
    cache = dl.cache_map
    assert isinstance(cache, Primed)
    cache.prime({1: "primed 1", 2: "primed 2"})
    assert cache.holds(1) and not cache.holds(3)
    assert await dl.load_many([1, 2, 3]) == ["primed 1", "primed 2", "loaded 3"]
    assert calls == [[3]]
    # Asked again: the same futures, still no call.
    assert await dl.load(1) == "primed 1" and calls == [[3]]


async def test_priming_keeps_what_is_held_as_prime_many_does() -> None:
    dl, calls = _counting()
    assert await dl.load(1) == "loaded 1"
    cache = dl.cache_map
    assert isinstance(cache, Primed)
    cache.prime({1: "primed 1", 2: "primed 2"})
    cache.prime({2: "primed again"})
    assert await dl.load_many([1, 2]) == ["loaded 1", "primed 2"]
    assert calls == [[1]]


async def test_clearing_forgets_primed_and_loaded_keys_alike() -> None:
    dl, calls = _counting()
    cache = dl.cache_map
    assert isinstance(cache, Primed)
    cache.prime({1: "primed 1", 2: "primed 2"})
    assert await dl.load(3) == "loaded 3"
    dl.clear(1)
    dl.clear(3)
    with pytest.raises(KeyError):
        dl.clear(4)  # as Strawberry's own cache: a key never held
    assert await dl.load_many([1, 2, 3]) == ["loaded 1", "primed 2", "loaded 3"]
    dl.clear_all()
    assert not cache.holds(2)
    assert await dl.load(2) == "loaded 2"
    assert calls == [[3], [1, 3], [2]]


async def test_prime_many_through_strawberry_still_works() -> None:
    dl, calls = _counting()
    dl.prime_many({5: "primed 5"})
    assert await dl.load(5) == "primed 5" and calls == []
