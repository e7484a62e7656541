"""The Reclaim tab's list as the client holds it: licensed users idle for ``days`` days, idle
longest first (never active first of all), as far as paged in, and the admin's selection.

Plain Python, no Textual: :class:`~tui_client.screens.reclaim.ReclaimView` draws it. The list
is re-read from the top whenever it may have changed (a release, a swap, a live event), and
the selection keeps the users still in it.
"""

from __future__ import annotations

from tui_client.api import MAX_IDS
from tui_client.paged_list import PagedList
from tui_client.types import Page, User

#: What ``d`` cycles through: a user idle this many days or more is listed.
DAYS = (7, 14, 30, 60, 90, 180, 365)
DEFAULT_DAYS = 14


class ReclaimList(PagedList[User]):
    def __init__(self) -> None:
        super().__init__()
        self.days = DEFAULT_DAYS
        self.selected: set[str] = set()

    def accept(self, generation: int, page: Page[User], *, replace: bool) -> list[User] | None:
        added = super().accept(generation, page, replace=replace)
        if added is not None:
            self.selected &= self.rows.keys()
        return added

    def cycle_days(self) -> int:
        """The next number of idle days (a re-read from the top follows)."""
        later = [d for d in DAYS if d > self.days]
        self.days = later[0] if later else DAYS[0]
        return self.days

    # ------------------------------------------------------------------ selection

    def toggle(self, user_id: str) -> None:
        if user_id in self.selected:
            self.selected.discard(user_id)
        elif user_id in self.rows:
            self.selected.add(user_id)

    def select_all(self) -> list[str]:
        """Select the first rows (up to what one release takes), or unselect them if all are
        selected: the rows whose mark may have changed."""
        ids = list(self.rows)[:MAX_IDS]
        if set(ids) <= self.selected:
            self.selected.difference_update(ids)
        else:
            self.selected.update(ids)
        return ids

    def clear_selection(self) -> list[str]:
        cleared = list(self.selected)
        self.selected.clear()
        return cleared

    def targets(self, cursor: str | None) -> list[User]:
        """Whom an action works on: the selection in the list's order, else the cursor's row."""
        if self.selected:
            return [user for uid, user in self.rows.items() if uid in self.selected]
        return [] if cursor is None or cursor not in self.rows else [self.rows[cursor]]
