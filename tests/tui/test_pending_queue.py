"""The Pending Licenses queue as the client holds it (``tui_client.pending_queue``), without
Textual or a server: pages, live events, replay over a re-query, selection, the filter.
"""

from __future__ import annotations

from dataclasses import replace

from tests.tui.fake_queue import OVER, REVIEW, FakeQueue, account, loaded, names, page_of, person
from tui_client.api import MAX_IDS
from tui_client.paged_list import PagedList
from tui_client.pending_queue import REASON_FILTERS, PendingQueue
from tui_client.types import AgentRef, Page, PendingReason, QueueAction, QueueEvent, User


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
    assert seen == [OVER, REVIEW, PendingReason.RELEASED, None]


def test_a_plain_paged_list_pages_any_item_with_an_id() -> None:
    items: PagedList[AgentRef] = PagedList()
    agent = AgentRef(id="7", device_name="PC", domain="ACME", logon_name="ada")
    one = Page(items=[agent], total_count=2, has_next_page=True, end_cursor="c1")
    assert items.accept(items.reload(), one, replace=True) == [agent]
    assert items.next_page() == (1, "c1")
    items.failed(1)
    assert items.next_page() == (1, "c1")  # a failed page may be asked for again


def _with_cursors(page: Page[User]) -> Page[User]:
    return replace(page, cursors=tuple(f"c{u.id}" for u in page.items))


def test_rows_in_sight_are_re_read_from_the_nearest_row_above_with_a_cursor() -> None:
    users = [person(i, f"U{i}", i) for i in range(1, 7)]
    queue = PendingQueue()
    queue.accept(queue.reload(), _with_cursors(page_of(users)), replace=True)
    assert queue.window(0, 3) == (None, 4)  # from the start
    assert queue.window(3, 5) == ("c3", 3)  # after the row above the first in sight
    for uid in (9, 10):  # live arrivals: no cursor of their own
        arrival = person(uid, f"U{uid}", uid)
        queue.apply(
            QueueEvent(action=QueueAction.ENTERED, user_id=str(uid), user=arrival, account=account(7))
        )
    assert queue.window(7, 7) == ("c6", 2)  # U9 above has none: from U6's
    queue.drop(["3"])
    assert queue.window(2, 3) == ("c2", 2)  # U3 left: U4 is now in its place
    assert queue.window(1, 400) == ("c1", 6)  # never past the last row


def test_a_re_read_updates_changed_rows_but_never_over_a_newer_event() -> None:
    ada, alan, grace = person(1, "Ada", 1), person(2, "Alan", 2), person(3, "Grace", 3)
    queue = loaded(ada, alan, grace)
    generation = queue.reread()
    # Meanwhile an event about Grace: her row is the event's, newer than the re-read's answer.
    grace_now = replace(grace, display_name="Grace H.")
    queue.apply(QueueEvent(action=QueueAction.ENTERED, user_id="3", user=grace_now, account=account(3)))
    ada_matched = replace(ada, display_name="Ada (matched)")
    stale_grace = replace(grace, display_name="Grace (stale)")
    gone = person(7, "Gone", 7)
    change = queue.refreshed(generation, page_of([ada_matched, alan, stale_grace, gone]))
    assert change.updated == [ada_matched] and not change.reordered
    assert names(queue) == ["Ada (matched)", "Alan", "Grace H."]  # no row added by a re-read


def test_a_re_read_superseded_by_a_re_query_changes_nothing() -> None:
    ada = person(1, "Ada", 1)
    queue = loaded(ada)
    generation = queue.reread()
    queue.reload()
    change = queue.refreshed(generation, page_of([replace(ada, display_name="Ada (old)")]))
    assert change.updated == [] and names(queue) == ["Ada"]
