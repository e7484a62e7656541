"""The Pending Licenses queue as the client holds it (``tui_client.pending_queue``), without
Textual or a server: pages, live events, replay over a re-query, selection, the filter.

``FakeQueue`` plays the server: the pending users in queue order (entered, then id), and
for each change the event the server publishes after its commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from tui_client.api import MAX_IDS
from tui_client.paged_list import PagedList
from tui_client.pending_queue import REASON_FILTERS, PendingQueue
from tui_client.types import (
    Account,
    AgentRef,
    Page,
    PendingInfo,
    PendingPage,
    PendingReason,
    QueueAction,
    QueueEvent,
    User,
    UserStatus,
)

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
OVER, REVIEW = PendingReason.OVER_LIMIT, PendingReason.MANUAL_REVIEW


def account(pending: int) -> Account:
    return Account(
        id="1",
        name="Acme",
        license_limit=3,
        licenses_used=3,
        licenses_available=0,
        pending_count=pending,
        manual_review=False,
        retention_days=30,
    )


def person(uid: int, name: str, minute: int, reason: PendingReason = OVER, *, events: int = 1) -> User:
    at = T0 + timedelta(minutes=minute)
    return User(
        id=str(uid),
        display_name=name,
        status=UserStatus.PENDING,
        first_seen_at=at,
        last_seen_at=at,
        agents=(AgentRef(id=str(uid), device_name=f"PC-{uid}", domain="ACME", logon_name=name.lower()),),
        pending=PendingInfo(
            reason=reason, entered_at=at, retained_event_count=events, retained_active_seconds=60 * events
        ),
    )


def licensed(user: User) -> User:
    return replace(user, status=UserStatus.LICENSED, pending=None, licensed_at=user.last_seen_at)


def page_of(users: list[User], *, total: int | None = None, has_next: bool = False) -> PendingPage:
    return PendingPage(
        account=account(len(users) if total is None else total),
        items=users,
        total_count=len(users) if total is None else total,
        has_next_page=has_next,
        end_cursor=users[-1].id if users else None,
    )


def loaded(*users: User, has_next: bool = False, total: int | None = None) -> PendingQueue:
    queue = PendingQueue()
    assert (
        queue.accept(queue.reload(), page_of(list(users), total=total, has_next=has_next), replace=True)
        is not None
    )
    return queue


@dataclass
class FakeQueue:
    """The server's side: who is pending, in queue order, and the event each change publishes."""

    pending: dict[str, User] = field(default_factory=dict)
    licensed: dict[str, User] = field(default_factory=dict)
    minute: int = 0
    next_id: int = 1

    def queue(self, queue: PendingQueue | None = None) -> list[User]:
        users = sorted(self.pending.values(), key=order)
        return users if queue is None else [u for u in users if queue.wanted(u)]

    def page(self, queue: PendingQueue) -> PendingPage:
        users = self.queue(queue)
        return replace(page_of(users), account=account(len(self.pending)))

    def _event(
        self, action: QueueAction, user_id: str, user: User | None, target: User | None = None
    ) -> QueueEvent:
        return QueueEvent(
            action=action,
            user_id=user_id,
            user=user,
            account=account(len(self.pending)),
            at=None,
            target=target,
        )

    def enter(self, name: str, reason: PendingReason) -> QueueEvent:
        """A newcomer, or (when a licensed user is named) a lowered limit moving them back."""
        self.minute += 1
        back = next((u for u in self.licensed.values() if u.display_name == name), None)
        if back is not None:
            del self.licensed[back.id]
            uid = int(back.id)
        else:
            uid, self.next_id = self.next_id, self.next_id + 1
        user = person(uid, name, self.minute, reason)
        self.pending[user.id] = user
        return self._event(QueueAction.ENTERED, user.id, user)

    def approve(self, user: User) -> QueueEvent:
        del self.pending[user.id]
        self.licensed[user.id] = licensed(user)
        return self._event(QueueAction.APPROVED, user.id, self.licensed[user.id])

    def remove(self, user: User) -> QueueEvent:
        del self.pending[user.id]
        return self._event(QueueAction.REMOVED, user.id, None)

    def assign(self, user: User, into: User, action: QueueAction = QueueAction.ASSIGNED) -> QueueEvent:
        """``user`` becomes part of ``into``: its agents and activity move there."""
        del self.pending[user.id]
        grown = replace(into, agents=into.agents + user.agents)
        if into.pending is not None and user.pending is not None:
            count = into.pending.retained_event_count + user.pending.retained_event_count
            grown = replace(grown, pending=replace(into.pending, retained_event_count=count))
        (self.pending if into.id in self.pending else self.licensed)[into.id] = grown
        return self._event(action, user.id, None, grown)


def order(user: User) -> tuple[datetime, int]:
    assert user.pending is not None
    return user.pending.entered_at, int(user.id)


def names(queue: PendingQueue) -> list[str]:
    return [u.display_name for u in queue.rows.values()]


# ---------------------------------------------------------------------------- examples


def test_a_page_is_shown_in_queue_order_and_the_next_one_appended() -> None:
    ada, alan, grace = person(1, "Ada", 1), person(2, "Alan", 2), person(3, "Grace", 3)
    queue = PendingQueue()
    generation = queue.reload()
    assert queue.loading and not queue.loaded and queue.next_page() is None
    assert queue.accept(generation, page_of([ada, alan], total=3, has_next=True), replace=True) == [ada, alan]
    assert (names(queue), queue.total, queue.loaded, queue.loading) == (["Ada", "Alan"], 3, True, False)
    step = queue.next_page()
    assert step == (generation, "2")
    assert queue.next_page() is None  # one load at a time
    # The page boundary moved under live changes: Alan is not added twice.
    assert queue.accept(generation, page_of([alan, grace], total=3), replace=False) == [grace]
    assert names(queue) == ["Ada", "Alan", "Grace"]
    assert queue.next_page() is None  # nothing left


def test_an_answer_to_a_superseded_query_is_dropped() -> None:
    queue = loaded(person(1, "Ada", 1))
    old = queue.reload()
    new = queue.reload()
    assert queue.accept(old, page_of([person(2, "Alan", 2)]), replace=True) is None
    assert names(queue) == ["Ada"] and queue.loading
    queue.failed(old)
    assert queue.loading  # the newer query is still in flight
    queue.failed(new)
    assert not queue.loading


def test_an_arrival_joins_the_end_only_once_the_end_is_paged_in() -> None:
    ada, alan, grace = person(1, "Ada", 1), person(2, "Alan", 2), person(3, "Grace", 3)
    partial = loaded(ada, has_next=True, total=2)
    change = partial.apply(
        QueueEvent(action=QueueAction.ENTERED, user_id="3", user=grace, account=account(3))
    )
    assert change.added == [] and names(partial) == ["Ada"] and partial.total == 3  # paging reaches Grace

    whole = loaded(ada, alan)
    change = whole.apply(QueueEvent(action=QueueAction.ENTERED, user_id="3", user=grace, account=account(3)))
    assert change.added == [grace] and names(whole) == ["Ada", "Alan", "Grace"] and whole.total == 3


def test_every_way_out_of_the_queue_removes_the_row_and_its_selection() -> None:
    server = FakeQueue()
    for name in ("Ada", "Alan", "Grace", "Linus", "Margaret"):
        server.enter(name, OVER)
    queue = loaded(*server.queue())
    queue.select_all()
    ada, alan, grace, linus, _ = server.queue()
    for event in (server.approve(ada), server.remove(alan), server.assign(grace, linus)):
        change = queue.apply(event)
        assert change.removed == [event.user_id]
    assert names(queue) == ["Linus", "Margaret"] and queue.total == 2
    assert queue.selected == {linus.id, server.queue()[1].id}


def test_an_assign_into_a_queued_user_updates_its_row() -> None:
    server = FakeQueue()
    server.enter("Ada", OVER)
    server.enter("Alan", OVER)
    ada, alan = server.queue()
    queue = loaded(ada, alan)
    queue.toggle(ada.id)
    change = queue.apply(server.assign(alan, ada))
    assert change.removed == [alan.id] and [u.id for u in change.updated] == [ada.id]
    grown = queue.rows[ada.id]
    assert grown.pending is not None and grown.pending.retained_event_count == 2
    assert [a.logon_name for a in grown.agents] == ["ada", "alan"]
    assert queue.selected == {ada.id}  # an update keeps the selection


def test_an_assign_into_a_licensed_user_only_removes_the_row() -> None:
    server = FakeQueue()
    server.enter("Ada", OVER)
    server.enter("Alan", OVER)
    ada, alan = server.queue()
    server.approve(ada)
    queue = loaded(alan)
    change = queue.apply(server.assign(alan, server.licensed[ada.id], QueueAction.MERGED))
    assert change.removed == [alan.id] and change.updated == [] and names(queue) == []


def test_the_filter_applies_to_arrivals_and_targets() -> None:
    queue = loaded()
    queue.search, queue.reason = "al", REVIEW
    alan, alfred, albert = (
        person(1, "Alan", 1, REVIEW),
        person(2, "Alfred", 2, OVER),
        person(3, "Albert", 3, REVIEW),
    )
    for user in (alan, alfred, albert, person(4, "Bob", 4, REVIEW)):
        queue.apply(QueueEvent(action=QueueAction.ENTERED, user_id=user.id, user=user, account=account(4)))
    assert names(queue) == ["Alan", "Albert"]
    assert queue.total == 2  # filtered: counted here, not taken from the account
    other = replace(alfred, display_name="Alfred Two")
    queue.apply(QueueEvent(action=QueueAction.ASSIGNED, user_id="9", account=account(3), target=other))
    assert "Alfred Two" not in names(queue)  # a target outside the filter stays out


def test_the_total_follows_the_account_when_the_queue_is_not_filtered() -> None:
    queue = loaded(person(1, "Ada", 1), has_next=True, total=40)
    queue.apply(QueueEvent(action=QueueAction.REMOVED, user_id="77", account=account(39)))
    assert queue.total == 39 and names(queue) == ["Ada"]


def test_events_during_a_requery_are_replayed_over_its_answer() -> None:
    server = FakeQueue()
    for name in ("Ada", "Alan", "Grace"):
        server.enter(name, OVER)
    queue = loaded(*server.queue())
    generation = queue.reload()
    answer = server.page(queue)  # read before the changes below
    ada, alan, _ = server.queue()
    events = [server.remove(ada), server.enter("Linus", OVER), server.assign(alan, server.queue()[1])]
    for event in events:
        queue.apply(event)  # drawn on the rows shown meanwhile, and kept
    assert queue.accept(generation, answer, replace=True) is not None
    assert queue.replayed == 3
    assert names(queue) == ["Grace", "Linus"] and queue.total == 2
    grace = queue.rows[server.queue()[0].id]
    assert grace.pending is not None and grace.pending.retained_event_count == 2
    # The next answer has nothing to replay.
    assert queue.accept(queue.reload(), server.page(queue), replace=True) is not None
    assert queue.replayed == 0


def test_a_user_who_left_and_came_back_during_a_requery_keeps_their_place() -> None:
    """Replayed over an answer that already shows a later arrival, Alan's return is not
    appended after Grace: the queue stays in the order it entered."""
    server = FakeQueue()
    server.enter("Ada", OVER)
    queue = loaded(*server.queue())
    generation = queue.reload()
    events = [server.enter("Alan", OVER)]
    events += [server.approve(server.queue()[1]), server.enter("Alan", OVER), server.enter("Grace", OVER)]
    changes = [queue.apply(event) for event in events]
    assert [c.reordered for c in changes] == [False, False, False, False]
    assert queue.accept(generation, server.page(queue), replace=True) is not None
    assert names(queue) == ["Ada", "Alan", "Grace"] == [u.display_name for u in server.queue()]


def test_an_arrival_that_entered_before_the_last_row_takes_its_place() -> None:
    ada, alan, grace = person(1, "Ada", 1), person(2, "Alan", 2), person(3, "Grace", 3)
    queue = loaded(ada, grace)
    change = queue.apply(QueueEvent(action=QueueAction.ENTERED, user_id="2", user=alan, account=account(3)))
    assert change.reordered and change.added == [alan]
    assert names(queue) == ["Ada", "Alan", "Grace"]


def test_a_failed_requery_replays_nothing_later() -> None:
    queue = loaded(person(1, "Ada", 1))
    generation = queue.reload()
    queue.apply(QueueEvent(action=QueueAction.REMOVED, user_id="1", account=account(0)))
    queue.failed(generation)
    assert queue.accept(queue.reload(), page_of([person(1, "Ada", 1)]), replace=True) is not None
    assert names(queue) == ["Ada"] and queue.replayed == 0


def test_the_selection_survives_events_and_requeries_for_the_users_still_there() -> None:
    ada, alan, grace = person(1, "Ada", 1), person(2, "Alan", 2), person(3, "Grace", 3)
    queue = loaded(ada, alan, grace)
    queue.toggle(grace.id)
    queue.toggle(ada.id)
    assert queue.targets(cursor=alan.id) == [ada.id, grace.id]  # queue order, not selection order
    queue.apply(
        QueueEvent(
            action=QueueAction.ENTERED, user_id="1", user=replace(ada, display_name="A."), account=account(3)
        )
    )
    assert queue.selected == {ada.id, grace.id}
    assert queue.accept(queue.reload(), page_of([ada, alan]), replace=True) is not None
    assert queue.selected == {ada.id}
    queue.toggle("404")  # not a row: nothing to select
    assert queue.selected == {ada.id}


def test_select_all_takes_what_one_action_takes_and_toggles_back() -> None:
    queue = loaded(*(person(i, f"User {i}", i) for i in range(1, MAX_IDS + 3)))
    ids = queue.select_all()
    assert len(ids) == MAX_IDS and queue.selected == set(ids)
    queue.toggle(ids[0])
    assert len(queue.select_all()) == MAX_IDS and len(queue.selected) == MAX_IDS  # not all: select all
    assert queue.select_all() == ids and queue.selected == set()  # all: unselect them
    queue.toggle(ids[3])
    assert queue.clear_selection() == [ids[3]] and queue.selected == set()
    assert queue.targets(cursor=None) == [] and queue.targets(cursor=ids[1]) == [ids[1]]


def test_a_requery_keeps_as_many_rows_as_are_shown() -> None:
    queue = loaded(*(person(i, f"User {i}", i) for i in range(1, 151)))
    assert queue.reload_size(100) == 150
    assert PendingQueue().reload_size(100) == 100
    assert loaded(*(person(i, f"U{i}", i) for i in range(1, 700))).reload_size(100) == MAX_IDS


def test_the_reason_filter_cycles() -> None:
    queue = PendingQueue()
    seen = [queue.cycle_reason() for _ in REASON_FILTERS]
    assert seen == [OVER, REVIEW, None]


def test_a_plain_paged_list_pages_any_item_with_an_id() -> None:
    items: PagedList[AgentRef] = PagedList()
    agent = AgentRef(id="7", device_name="PC", domain="ACME", logon_name="ada")
    one = Page(items=[agent], total_count=2, has_next_page=True, end_cursor="c1")
    assert items.accept(items.reload(), one, replace=True) == [agent]
    assert items.next_page() == (1, "c1")
    items.failed(1)
    assert items.next_page() == (1, "c1")  # a failed page may be asked for again


# ---------------------------------------------------------------------------- any sequence of changes

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
