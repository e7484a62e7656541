"""A DataTable that asks for the next page as the cursor or the scroll nears its end.

The table never holds more than what was paged in; ``NearEnd`` lets the owning view fetch
the next page with the connection's cursor, so 10,000 rows cost nothing until reached.

Its cells hold server data, and a ``DataTable`` parses a ``str`` cell as markup: every cell
goes through :func:`tui_client.safe.cell` on its way in (plain ``Text``, no control).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from rich.text import Text, TextType
from textual import events
from textual.message import Message
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

from tui_client import safe

LOOKAHEAD = 25  # rows left below the cursor (or the viewport) when the next page is asked for


class PagedTable(DataTable[object]):
    _fitted_to = -1  # the width the last Resized was posted for

    @dataclass
    class NearEnd(Message):
        table: PagedTable

    @dataclass
    class Resized(Message):
        """The table's width changed: its columns are to be fitted again."""

        table: PagedTable

    @property
    def room(self) -> int:
        """The cells a row may take: the table's width less a vertical scrollbar's, shown or not
        (so a growing list never makes the columns jump)."""
        return max(0, self.size.width - self.styles.scrollbar_size_vertical)

    def set_widths(self, widths: Mapping[str, int]) -> None:
        """Resize columns in place (the set of columns stays as it is).

        ``DataTable`` has no public way to resize a fixed-width column: its render caches are
        keyed by ``_update_count`` and its virtual size is recomputed on idle when
        ``_require_update_dimensions`` is set, as its own ``update_cell`` does.
        """
        changed = False
        for key, width in widths.items():
            column = self.columns.get(ColumnKey(key))
            if column is not None and column.width != width:
                column.width = width
                changed = True
        if changed:
            self._update_count += 1
            self._require_update_dimensions = True
            self.check_idle()
            self.refresh(layout=True)

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width != self._fitted_to:
            self._fitted_to = event.size.width
            self.post_message(self.Resized(self))

    def add_row(
        self,
        *cells: object,
        height: int | None = 1,
        key: str | None = None,
        label: TextType | None = None,
    ) -> RowKey:
        shown = None if label is None else cast(Text, safe.cell(label))
        return super().add_row(*map(safe.cell, cells), height=height, key=key, label=shown)

    def update_cell(
        self,
        row_key: RowKey | str,
        column_key: ColumnKey | str,
        value: object,
        *,
        update_width: bool = False,
    ) -> None:
        super().update_cell(row_key, column_key, safe.cell(value), update_width=update_width)

    def cursor_key(self) -> str | None:
        """The key of the cursor's row; None when the table is empty."""
        if self.row_count == 0:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return row_key.value

    def check_near_end(self) -> None:
        """Ask for more when fewer than ``LOOKAHEAD`` rows remain below the cursor or the view."""
        if self.row_count == 0:
            return
        bottom_visible = int(self.scroll_y) + self.scrollable_content_region.height
        if self.cursor_row >= self.row_count - LOOKAHEAD or bottom_visible >= self.row_count - LOOKAHEAD:
            self.post_message(self.NearEnd(self))

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self.check_near_end()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.check_near_end()
