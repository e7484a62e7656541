"""The Reclaim tab's list as the client holds it: licensed users idle for ``days`` days, idle
longest first (never active first of all), as far as paged in, and the admin's selection.

Plain Python, no Textual: :class:`~tui_client.screens.reclaim.ReclaimView` draws it. The list
is re-read from the top whenever it may have changed (a release, a swap, a live event), and
the selection keeps the users still in it.
"""

from __future__ import annotations

from tui_client.paged_list import SelectableList
from tui_client.types import User

#: What ``d`` cycles through: a user idle this many days or more is listed.
DAYS = (7, 14, 30, 60, 90, 180, 365)
DEFAULT_DAYS = 14


class ReclaimList(SelectableList[User]):
    def __init__(self) -> None:
        super().__init__()
        self.days = DEFAULT_DAYS

    def cycle_days(self) -> int:
        """The next number of idle days (a re-read from the top follows)."""
        later = [d for d in DAYS if d > self.days]
        self.days = later[0] if later else DAYS[0]
        return self.days

    # ------------------------------------------------------------------ selection

    def targets(self, cursor: str | None) -> list[User]:
        """Whom an action works on: the selection in the list's order, else the cursor's row."""
        if self.selected:
            return [user for uid, user in self.rows.items() if uid in self.selected]
        return [] if cursor is None or cursor not in self.rows else [self.rows[cursor]]
