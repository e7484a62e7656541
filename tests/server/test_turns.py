"""Turns: one entry per turn of the event loop, first come first served; cheap work in between."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

import pytest

from server.infra.turns import Turns


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
    turns = Turns()
    log: list[str] = []
    loop_ran: list[str] = []
    asyncio.get_running_loop().call_soon(loop_ran.append, "loop")
    await enter(turns, "a", log)
    # Entered without giving the loop a turn, and nothing was counted as a wait.
    assert log == ["a"] and loop_ran == []
    assert turns.waits.count == 0 and turns.waiting == 0


async def test_entries_ready_together_take_one_turn_each_in_arrival_order() -> None:
    turns = Turns()
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

    turns = Turns()
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
    turns = Turns()
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
    turns = Turns()
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
    turns = Turns()
    log: list[str] = []

    def fail() -> None:
        raise RuntimeError("boom")

    results = await asyncio.gather(
        enter(turns, "first", log, fail), enter(turns, "second", log), return_exceptions=True
    )
    assert isinstance(results[0], RuntimeError) and results[1] is None
    assert log == ["first", "second"]
