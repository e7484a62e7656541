"""A fake of the server's queue for the client's queue model tests: the pending users in
queue order (entered, then id), and for each change the event the server publishes after
its commit; and builders of users, pages and loaded queues."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from tui_client.pending_queue import PendingQueue
from tui_client.types import (
    Account,
    AgentRef,
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
