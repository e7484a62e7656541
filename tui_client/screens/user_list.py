"""A list of users with the detail pane beside it: the queue and the Users tab.

The pane follows the cursor (:class:`~tui_client.widgets.detail_pane.DetailPane` reads the
row a moment after the cursor rests on it), enter opens or closes it, and a change to the
row under the cursor reads it again.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual import events
from textual.widgets import DataTable

from tui_client.screens.paged import PagedListView
from tui_client.types import User
from tui_client.widgets.detail_pane import DetailPane


class UserListView(PagedListView[User]):
    @property
    def pane(self) -> DetailPane:
        return self.query_one(DetailPane)

    def follow_cursor(self) -> None:
        """Show the user under the cursor in the pane (nothing is read if it is the same)."""
        key = self.table.cursor_key()
        self.pane.follow(None if key is None else self.model.rows.get(key))

    def changed(self, user_ids: Iterable[str]) -> None:
        """Rows changed: the pane reads its user again if it is one of them, and follows the
        cursor if its row went."""
        key = self.table.cursor_key()
        if key is not None and key in set(user_ids):
            self.pane.follow(self.model.rows.get(key))
            self.pane.load()
        else:
            self.follow_cursor()

    def redraw(self) -> None:
        super().redraw()
        self.follow_cursor()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.follow_cursor()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.pane.toggle()

    def on_resize(self, event: events.Resize) -> None:
        self.pane.fit()
