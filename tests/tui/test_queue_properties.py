"""Any sequence of changes to the queue, applied to the client's model of it, leaves the model
as the server has the queue: its order, no row twice or out of the filter, the selection
within the rows, and events replayed over a re-query answered at any point (hypothesis).
"""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.tui.fake_queue import OVER, REVIEW, FakeQueue, order
from tui_client.pending_queue import REASON_FILTERS, PendingQueue
from tui_client.types import PendingReason, QueueAction, QueueEvent, UserStatus

NAMES = ["Ada", "Alan", "Alfred", "Linus"]
Step = tuple[str, int, int]
steps: st.SearchStrategy[Step] = st.tuples(
    st.sampled_from(
        ["enter", "enter", "approve", "approve", "remove", "assign", "merge", "toggle", "select_all", "clear"]
    ),
    st.integers(0, 50),
    st.integers(0, 50),
)
filters = st.tuples(st.sampled_from(["", "al", "li"]), st.sampled_from(REASON_FILTERS))


def change(server: FakeQueue, step: Step) -> QueueEvent | None:
    """The server side of a step: a change to the queue and its event, or None."""
    kind, i, j = step
    if kind == "enter":
        return server.enter(NAMES[i % len(NAMES)], [OVER, REVIEW][j % 2])
    waiting = server.queue()
    if kind not in ("approve", "remove", "assign", "merge") or not waiting:
        return None
    user = waiting[i % len(waiting)]
    if kind == "approve":
        return server.approve(user)
    if kind == "remove":
        return server.remove(user)
    others = [u for u in [*waiting, *server.licensed.values()] if u.id != user.id]
    if not others:
        return None
    action = QueueAction.ASSIGNED if kind == "assign" else QueueAction.MERGED
    return server.assign(user, others[j % len(others)], action)


def select(queue: PendingQueue, step: Step) -> None:
    """The admin side of a step: the selection keys."""
    kind, i, _ = step
    rows = list(queue.rows)
    if kind == "toggle" and rows:
        queue.toggle(rows[i % len(rows)])
    elif kind == "select_all":
        queue.select_all()
    elif kind == "clear":
        queue.clear_selection()


def check(queue: PendingQueue, server: FakeQueue) -> None:
    users = list(queue.rows.values())
    assert all(uid == u.id for uid, u in queue.rows.items())
    assert users == sorted(users, key=order), "the queue's order: entered, then id"
    assert queue.selected <= queue.rows.keys()
    assert all(queue.wanted(u) for u in users)
    shown = [u.id for u in users]
    expected = [u.id for u in server.queue(queue)]
    if queue.search:
        # The client's search is an approximation for arrivals: a row is never a ghost.
        assert set(shown) <= set(expected)
    else:
        assert shown == expected
        assert queue.rows == {u.id: u for u in server.queue(queue)}
    if not queue.search and queue.reason is None:
        assert queue.total == len(server.pending)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(NAMES), max_size=6), filters, st.lists(steps, max_size=40))
def test_any_sequence_of_events_keeps_the_queue_as_the_server_has_it(
    first: list[str], view: tuple[str, PendingReason | None], script: list[Step]
) -> None:
    server = FakeQueue()
    for name in first:
        server.enter(name, OVER)
    queue = PendingQueue()
    queue.search, queue.reason = view
    assert queue.accept(queue.reload(), server.page(queue), replace=True) is not None
    check(queue, server)
    for step in script:
        event = change(server, step)
        if event is None:
            select(queue, step)
        else:
            before = set(queue.selected)
            queue.apply(event)
            assert queue.selected == before & queue.rows.keys(), "events never select, and keep the rest"
        check(queue, server)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.sampled_from(NAMES), max_size=6),
    st.lists(st.integers(0, 50), max_size=6),
    st.lists(steps, max_size=20),
    st.integers(0, 20),
)
# Found by a random search over this property: a replay over a newer answer carries an older
# state of a queued user (entered before it left and came back), which must move its row.
@example(
    ["Alfred", "Ada"],
    [],
    [
        ("enter", 38, 43),
        ("enter", 17, 33),
        ("approve", 32, 1),
        ("approve", 19, 14),
        ("enter", 25, 31),
        ("approve", 30, 3),
        ("enter", 48, 39),
        ("enter", 18, 2),
        ("enter", 19, 6),
        ("enter", 31, 49),
        ("enter", 10, 16),
        ("approve", 10, 13),
        ("assign", 12, 18),
        ("assign", 12, 28),
        ("remove", 43, 15),
    ],
    13,
)
@example(
    ["Alfred", "Alan", "Ada", "Linus", "Ada"],
    [],
    [
        ("clear", 17, 10),
        ("remove", 46, 21),
        ("enter", 43, 49),
        ("approve", 13, 1),
        ("clear", 45, 37),
        ("merge", 49, 0),
        ("clear", 2, 38),
        ("enter", 36, 17),
        ("enter", 43, 19),
        ("enter", 8, 4),
        ("select_all", 18, 11),
        ("approve", 20, 44),
        ("approve", 15, 43),
        ("enter", 26, 4),
    ],
    14,
)
def test_a_requery_answered_at_any_point_during_live_changes_ends_up_as_the_server(
    first: list[str], picks: list[int], script: list[Step], answered_at: int
) -> None:
    """The answer may be read before, between or after the events that arrive meanwhile."""
    server = FakeQueue()
    for name in first:
        server.enter(name, OVER)
    queue = PendingQueue()
    assert queue.accept(queue.reload(), server.page(queue), replace=True) is not None
    for pick in picks:
        select(queue, ("toggle", pick, 0))
    selected = set(queue.selected)
    generation = queue.reload()
    answer = server.page(queue)
    left: set[str] = set()
    for n, step in enumerate(script):
        if n == answered_at:
            answer = server.page(queue)
        event = change(server, step)
        if event is not None:
            if event.user is None or event.user.status is not UserStatus.PENDING:
                left.add(event.user_id)
            queue.apply(event)
    if answered_at >= len(script):
        answer = server.page(queue)
    assert queue.accept(generation, answer, replace=True) is not None
    check(queue, server)
    assert queue.selected == (selected - left) & queue.rows.keys()
