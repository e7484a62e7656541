"""Turns: a few entries per turn of the event loop (as many as fit in its budget), first come
first served; cheap work in between."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

import pytest

from server.infra.turns import MAX_PER_TURN, Turns


class TurnCounter:
    """The loop's turns, counted by a callback that puts itself back each time it runs."""

    def __init__(self) -> None:
        self.turn = 0
        self._loop = asyncio.get_running_loop()
        self._handle = self._loop.call_soon(self._tick)

    def _tick(self) -> None:
        self.turn += 1
        self._handle = self._loop.call_soon(self._tick)

    def stop(self) -> None:
        self._handle.cancel()


async def enter(turns: Turns, name: str, log: list[str], body: Callable[[], None] | None = None) -> None:
    async with turns:
        log.append(name)
        if body is not None:
            body()


async def test_an_entry_alone_goes_straight_in() -> None:
    turns = Turns(budget=0)
    log: list[str] = []
    loop_ran: list[str] = []
    asyncio.get_running_loop().call_soon(loop_ran.append, "loop")
    await enter(turns, "a", log)
    # Entered without giving the loop a turn, and nothing was counted as a wait.
    assert log == ["a"] and loop_ran == []
    assert turns.waits.count == 0 and turns.waiting == 0


async def test_entries_ready_together_take_one_turn_each_in_arrival_order() -> None:
    turns = Turns(budget=0)
    counter = TurnCounter()
    entered: list[tuple[str, int]] = []

    async def one(name: str) -> None:
        async with turns:
            entered.append((name, counter.turn))

    try:
        await asyncio.gather(*(one(f"e{i}") for i in range(6)))
    finally:
        counter.stop()
    assert [name for name, _ in entered] == [f"e{i}" for i in range(6)]
    at = [turn for _, turn in entered]
    assert all(later > earlier for earlier, later in itertools.pairwise(at))
    assert turns.waits.count == 5 and turns.waits.seconds >= 0 and turns.waiting == 0


async def test_work_that_becomes_ready_during_an_entry_runs_before_the_next_entry() -> None:
    loop = asyncio.get_running_loop()
    log: list[str] = []

    def schedule_cheap_work() -> None:
        # As an ingest answer handed over from the group commit's thread, or a live event.
        loop.call_soon(log.append, "cheap")

    turns = Turns(budget=0)
    await asyncio.gather(enter(turns, "first", log, schedule_cheap_work), enter(turns, "second", log))
    assert log == ["first", "cheap", "second"]


async def test_without_turns_the_burst_runs_first() -> None:
    """The same burst through a semaphore (what Turns replaces): the cheap work waits for all."""
    loop = asyncio.get_running_loop()
    log: list[str] = []
    gate = asyncio.Semaphore(1)

    async def one(name: str, body: Callable[[], None] | None = None) -> None:
        async with gate:
            log.append(name)
            if body is not None:
                body()

    await asyncio.gather(one("first", lambda: loop.call_soon(log.append, "cheap")), one("second"))
    assert log == ["first", "second", "cheap"]


async def test_a_waiter_cancelled_while_waiting_leaves_the_queue() -> None:
    turns = Turns(budget=0)
    log: list[str] = []
    first = asyncio.ensure_future(enter(turns, "first", log))
    second = asyncio.ensure_future(enter(turns, "second", log))
    third = asyncio.ensure_future(enter(turns, "third", log))
    await asyncio.sleep(0)  # all three have tried: the first went in, two wait
    assert log == ["first"] and turns.waiting == 2
    second.cancel()
    await asyncio.gather(first, third)
    with pytest.raises(asyncio.CancelledError):
        await second
    assert log == ["first", "third"]
    assert turns.waiting == 0


async def test_a_waiter_cancelled_once_its_turn_came_passes_the_turn_on() -> None:
    loop = asyncio.get_running_loop()
    turns = Turns(budget=0)
    log: list[str] = []
    tasks: list[asyncio.Task[None]] = []

    def cancel_second_after_its_turn_is_given() -> None:
        # Turns hands the next turn out at the start of the next loop turn; this runs right
        # after that, before the second entry's task has resumed.
        loop.call_soon(tasks[1].cancel)

    tasks.append(asyncio.ensure_future(enter(turns, "first", log, cancel_second_after_its_turn_is_given)))
    tasks.append(asyncio.ensure_future(enter(turns, "second", log)))
    tasks.append(asyncio.ensure_future(enter(turns, "third", log)))
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)
    assert isinstance(results[1], asyncio.CancelledError)
    assert log == ["first", "third"]
    assert turns.waiting == 0


async def test_an_entry_that_raises_still_passes_the_turn_on() -> None:
    turns = Turns(budget=0)
    log: list[str] = []

    def fail() -> None:
        raise RuntimeError("boom")

    results = await asyncio.gather(
        enter(turns, "first", log, fail), enter(turns, "second", log), return_exceptions=True
    )
    assert isinstance(results[0], RuntimeError) and results[1] is None
    assert log == ["first", "second"]


class Clock:
    """A clock that entries advance by their own duration."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_as_many_entries_share_a_turn_as_fit_in_its_budget() -> None:
    clock = Clock()
    turns = Turns(budget=0.005, clock=clock)
    assert turns.per_turn == 1  # nothing measured yet

    def takes(seconds: float) -> Callable[[], None]:
        def body() -> None:
            clock.now += seconds

        return body

    log: list[str] = []
    await enter(turns, "measured", log, takes(0.0015))
    assert turns.per_turn == 3  # 5 ms / 1.5 ms
    counter = TurnCounter()
    entered: list[tuple[str, int]] = []

    async def one(name: str) -> None:
        async with turns:
            entered.append((name, counter.turn))
            clock.now += 0.0015

    try:
        await asyncio.gather(*(one(f"e{i}") for i in range(7)))
    finally:
        counter.stop()
    assert [name for name, _ in entered] == [f"e{i}" for i in range(7)]
    by_turn: dict[int, int] = {}
    for _, turn in entered:
        by_turn[turn] = by_turn.get(turn, 0) + 1
    assert list(by_turn.values()) == [3, 3, 1]


async def test_an_entry_longer_than_the_budget_has_a_turn_to_itself() -> None:
    clock = Clock()
    turns = Turns(budget=0.005, clock=clock)
    log: list[str] = []

    def slow() -> None:
        clock.now += 0.012

    await enter(turns, "slow", log, slow)
    assert turns.per_turn == 1
    # Cheap entries bring the mean down, and the turn's room back up (at most MAX_PER_TURN).
    for i in range(60):
        await enter(turns, f"cheap{i}", log)
    assert turns.per_turn == MAX_PER_TURN


async def test_cheap_work_still_runs_between_turns_of_several_entries() -> None:
    loop = asyncio.get_running_loop()
    clock = Clock()
    turns = Turns(budget=0.005, clock=clock)
    log: list[str] = []

    def cheap_work_then(seconds: float) -> Callable[[], None]:
        def body() -> None:
            loop.call_soon(log.append, "cheap")
            clock.now += seconds

        return body

    await enter(turns, "measured", [], cheap_work_then(0.002))  # two per turn from now on
    log.clear()
    await asyncio.gather(*(enter(turns, f"e{i}", log, cheap_work_then(0.002)) for i in range(4)))
    # Two entries start per turn; the cheap work each scheduled runs before the next turn's.
    assert log.index("cheap") < log.index("e2") and log.index("cheap") < log.index("e3")
