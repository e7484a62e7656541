"""The in-process broker: bounded queues, overflow, isolation, and the event's JSON form."""

from __future__ import annotations

import asyncio

import pytest

from server.domain.events import AccountUsage, QueueEvent
from server.domain.models import QueueAction
from server.infra.broadcast import MemoryBroker, SubscriberOverflow
from tests.support import START

USAGE = AccountUsage(account_id=1, license_limit=3, licenses_used=3, pending_count=2, manual_review=False)


def event(user_id: int, account_id: int = 1, actor_id: int | None = 7) -> QueueEvent:
    return QueueEvent(QueueAction.ENTERED, account_id, user_id, START, actor_id, USAGE, user_id)


def test_an_event_survives_its_json_form() -> None:
    assigned = QueueEvent(QueueAction.ASSIGNED, 1, 8, START, 7, USAGE, 9, target_user_id=3)
    for original in (event(5), event(6, actor_id=None), assigned):
        assert QueueEvent.from_json(original.to_json()) == original


def test_a_payload_from_a_process_without_targets_still_reads() -> None:
    """During a rolling upgrade an older process's NOTIFY has no target_user_id."""
    import json

    data = json.loads(event(5).to_json())
    del data["target_user_id"]
    assert QueueEvent.from_json(json.dumps(data)) == event(5)


async def test_a_stuck_subscriber_is_dropped_without_delaying_the_publisher_or_the_others() -> None:
    broker = MemoryBroker()
    stuck, fast = broker.subscribe(1, maxsize=3), broker.subscribe(1, maxsize=3)
    other_account = broker.subscribe(2, maxsize=3)
    for n in range(5):
        broker.deliver([event(n)])  # synchronous: the publisher never waits
        assert await fast.next_batch() == [event(n)]
    assert broker.subscriber_count(1) == 1 and stuck.overflowed
    with pytest.raises(SubscriberOverflow):
        await stuck.next_batch()
    assert other_account._queue.empty()


async def test_closing_ends_the_stream_even_with_a_full_queue() -> None:
    broker = MemoryBroker()
    sub = broker.subscribe(1, maxsize=2)
    broker.deliver([event(1), event(2)])
    sub.close()
    assert broker.subscriber_count() == 0
    assert [e async for e in sub] == [event(1), event(2)]


async def test_drop_all_tells_every_subscriber_to_resync() -> None:
    broker = MemoryBroker()
    subs = [broker.subscribe(1), broker.subscribe(2)]
    waiting = asyncio.create_task(subs[0].next_batch())
    await asyncio.sleep(0)  # let it wait on its empty queue
    assert broker.drop_all() == 2 and broker.subscriber_count() == 0
    with pytest.raises(SubscriberOverflow):
        await waiting
    with pytest.raises(SubscriberOverflow):
        await subs[1].next_batch()


async def test_waiting_for_subscribers_to_come_and_go() -> None:
    broker = MemoryBroker()
    arrived = asyncio.create_task(broker.wait_for_subscribers(1, 2))
    first, second = broker.subscribe(1), broker.subscribe(1)
    await asyncio.wait_for(arrived, 1)
    first.close()
    second.close()
    await asyncio.wait_for(broker.wait_for_subscribers(1, 0, exactly=True), 1)
