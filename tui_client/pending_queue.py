"""The Pending Licenses queue as the client holds it: rows, selection, filter, live events.

Plain Python, no Textual: :class:`~tui_client.screens.queue_view.QueueView` draws what this
holds and redraws what each change returns.

The rows are the queue's users in its order (oldest first), as far as they are paged in.
Live events add, change and remove rows in place; events that arrive while a re-query is
in flight are kept and replayed over its answer, which may predate them.

An event carries only the users it is about, yet it can change other rows: a newcomer that
duplicates a queued user, an approval or a removal that takes a likely match away, an
assign that gives one. So after events the view re-reads the rows in sight
(:meth:`PendingQueue.window`, :meth:`PendingQueue.refreshed`), each row's keyset cursor
telling where to start; a row an event touched while that read was in flight keeps the
event's version, which is newer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from tui_client.api import MAX_IDS
from tui_client.paged_list import SelectableList
from tui_client.types import Page, PendingReason, QueueEvent, User, UserStatus

#: What ``f`` cycles through: all reasons, then each one.
REASON_FILTERS: tuple[PendingReason | None, ...] = (
    None,
    PendingReason.OVER_LIMIT,
    PendingReason.MANUAL_REVIEW,
    PendingReason.RELEASED,
)


@dataclass
class Change:
    """The rows one change touched, for the view to redraw."""

    added: list[User] = field(default_factory=list)
    updated: list[User] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    #: An arrival took its place before the end: every row is to be drawn again.
    reordered: bool = False


def matches(user: User, search: str) -> bool:
    """A client-side approximation of the server's search (name, logon, device), for arrivals."""
    needle = search.casefold()
    hay = [user.display_name] + [f"{a.logon_name}\n{a.device_name}" for a in user.agents]
    return any(needle in h.casefold() for h in hay)


def _entered(user: User) -> datetime:
    return user.pending.entered_at if user.pending is not None else datetime.min.replace(tzinfo=UTC)


def _place(user: User) -> tuple[datetime, int, str]:
    """The queue's order, as the server's: entered, then id (ids are numbers, shown as text)."""
    return _entered(user), int(user.id) if user.id.isdecimal() else 0, user.id


class PendingQueue(SelectableList[User]):
    def __init__(self) -> None:
        super().__init__()
        self.search = ""
        self.reason: PendingReason | None = None
        # Events that arrive while a re-query is in flight, replayed over its answer.
        self._replay: list[QueueEvent] | None = None
        #: Each row's cursor in the list (rows that arrived live have none).
        self.cursors: dict[str, str] = {}
        # Rows events touched while a re-read of rows in sight is in flight.
        self._touched: set[str] | None = None
        #: How many events the last answer to a re-query had replayed over it.
        self.replayed = 0

    # ------------------------------------------------------------------ paging

    def reload_size(self, page_size: int) -> int:
        """How many rows a re-query asks for: as many as are shown, so the cursor keeps its user."""
        return min(max(len(self.rows), page_size), MAX_IDS)

    def reload(self) -> int:
        self._replay = []
        return super().reload()

    def failed(self, generation: int) -> None:
        if generation == self.generation:
            self._replay = None
        super().failed(generation)

    def accept(self, generation: int, page: Page[User], *, replace: bool) -> list[User] | None:
        added = super().accept(generation, page, replace=replace)
        if added is None:
            return None
        if replace:
            self.cursors.clear()
        self.cursors.update(zip((u.id for u in page.items), page.cursors, strict=False))
        if replace:
            replay, self._replay = self._replay or [], None
            for event in replay:
                self.apply(event)
            self.replayed = len(replay)
        return added

    # ------------------------------------------------------------------ live changes

    def wanted(self, user: User) -> bool:
        """Whether ``user`` belongs in the queue as filtered now."""
        if user.status is not UserStatus.PENDING or user.pending is None:
            return False
        if self.reason is not None and user.pending.reason != self.reason:
            return False
        return not self.search or matches(user, self.search)

    def apply(self, event: QueueEvent) -> Change:
        """A live change: the user's row is added, updated or removed, and so is the target's."""
        if self._replay is not None:
            self._replay.append(event)
        if self._touched is not None:
            self._touched.add(event.user_id)
            if event.target is not None:
                self._touched.add(event.target.id)
        change = Change()
        user = event.user
        if user is not None and self.wanted(user):
            if user.id in self.rows:
                change.reordered = self._update(user) or change.reordered
                change.updated.append(user)
            else:
                self.total += 1
                # The queue is oldest first, so an arrival belongs at the end: shown now only if
                # the end is paged in; otherwise paging reaches it.
                if self.loaded and not self.has_next:
                    change.reordered = self._arrive(user)
                    change.added.append(user)
        elif event.user_id in self.rows:
            change.removed += self.drop([event.user_id])
        target = event.target
        if target is not None and target.id in self.rows and self.wanted(target):
            # Assigned or merged into a queued user: its row gained agents and activity.
            change.reordered = self._update(target) or change.reordered
            change.updated.append(target)
        if not self.search and self.reason is None:
            self.total = event.account.pending_count
        return change

    def _arrive(self, user: User) -> bool:
        """Add an arrival in the queue's order: True when that is not the end. It is the end
        but for replays: an answer that already shows later arrivals, and a user who left
        and came back meanwhile (approved, then moved back by a lowered limit)."""
        last = next(reversed(self.rows.values()), None)
        self.rows[user.id] = user
        if last is None or _place(last) <= _place(user):
            return False
        return self._sort()

    def _update(self, user: User) -> bool:
        """Replace a row; True when that moved it. A replay over a newer answer can carry an
        older entry time (the user left and came back since): the row goes to its place."""
        moved = _entered(self.rows[user.id]) != _entered(user)
        self.rows[user.id] = user
        return moved and self._sort()

    def _sort(self) -> bool:
        """Put the rows in the queue's order; True when that moved any."""
        ordered = dict(sorted(self.rows.items(), key=lambda row: _place(row[1])))
        if list(ordered) == list(self.rows):
            return False
        self.rows = ordered
        return True

    # ------------------------------------------------------------------ re-reading rows in sight

    def window(self, top: int, bottom: int) -> tuple[str | None, int]:
        """How to re-read rows ``top`` to ``bottom`` (positions, inclusive): after the cursor
        of the nearest row above that has one (None: from the start), and how many rows."""
        ids = list(self.rows)
        bottom = min(bottom, len(ids) - 1)
        anchor, after = -1, None
        for i in range(min(top, len(ids)) - 1, -1, -1):
            cursor = self.cursors.get(ids[i])
            if cursor is not None:
                anchor, after = i, cursor
                break
        return after, min(max(1, bottom - anchor), MAX_IDS)

    def reread(self) -> int:
        """A re-read of rows in sight begins: the generation its answer must belong to."""
        self._touched = set()
        return self.generation

    def reread_failed(self) -> None:
        self._touched = None

    def refreshed(self, generation: int, page: Page[User]) -> Change:
        """The rows a re-read found changed, updated in place. Rows it does not show are left
        to the events; rows an event touched meanwhile keep the event's version."""
        touched, self._touched = self._touched or set(), None
        change = Change()
        if generation != self.generation:
            return change  # a re-query from the top superseded it
        self.cursors.update(
            (u.id, c) for u, c in zip(page.items, page.cursors, strict=False) if u.id in self.rows
        )
        for user in page.items:
            old = self.rows.get(user.id)
            if old is None or old == user or user.id in touched or user.status is not UserStatus.PENDING:
                continue
            change.reordered = self._update(user) or change.reordered
            change.updated.append(user)
        return change

    def drop(self, user_ids: list[str]) -> list[str]:
        """Users who left the queue (an action of ours): the rows removed."""
        removed = [uid for uid in user_ids if uid in self.rows]
        for uid in removed:
            del self.rows[uid]
            self.cursors.pop(uid, None)
            self.selected.discard(uid)
            self.total = max(0, self.total - 1)
        return removed

    # ------------------------------------------------------------------ selection

    def targets(self, cursor: str | None) -> list[str]:
        """What an action works on: the selection in queue order, else the cursor's row."""
        if self.selected:
            return [uid for uid in self.rows if uid in self.selected]
        return [] if cursor is None else [cursor]

    # ------------------------------------------------------------------ filter

    def cycle_reason(self) -> PendingReason | None:
        self.reason = REASON_FILTERS[(REASON_FILTERS.index(self.reason) + 1) % len(REASON_FILTERS)]
        return self.reason
