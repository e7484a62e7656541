"""A tab that lists one kind of item, a page at a time, loading the next as the cursor nears the end.

Subclasses say how a page is fetched (:meth:`PagedListView.fetch`), how an item becomes a
row (:meth:`PagedListView.row`) and what the status line reads; where the paging stands
(opaque cursors, one load at a time, stale answers dropped) is a plain
:class:`~tui_client.paged_list.PagedList`, and drawing it lives here once. So does sizing
the columns: each is as wide as its widest cell while the row fits the table, and the least
useful give way first when it does not (:func:`tui_client.columns.fit`), again whenever the
table's width or the widest cell changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any, ClassVar, Generic, TypeVar

from textual import work
from textual.content import Content
from textual.message import Message
from textual.widgets import Static

from tui_client import safe
from tui_client.api import ApiError
from tui_client.columns import Col, ContentWidths, fit
from tui_client.paged_list import HasId, PagedList
from tui_client.screens.base import ApiView
from tui_client.types import Page
from tui_client.widgets.paged_table import PagedTable

T = TypeVar("T", bound=HasId)


class PagedListView(ApiView, Generic[T]):
    #: The columns, in order; :meth:`row` gives a value for each.
    COLUMNS: ClassVar[Sequence[Col]] = ()
    #: The notification title when the first page, or a later one, cannot be loaded.
    FAILURE: ClassVar[str] = "Could not load the list"
    FAILURE_MORE: ClassVar[str | None] = None
    #: The status line's widget, and what it reads until a first page is in (None: as composed).
    STATUS: ClassVar[str] = ".status-line"
    WAITING: ClassVar[str | None] = None

    @dataclass
    class PageLoaded(Message):
        """A page answered: the load worker's result, posted to its own view."""

        bubble: ClassVar[bool] = False

        view: PagedListView[Any]
        generation: int
        page: Page[Any]
        replace: bool

    def __init__(
        self,
        page_size: int = 100,
        *,
        model: PagedList[T] | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.page_size = page_size
        self.model: PagedList[T] = PagedList() if model is None else model
        self.stale = True
        self._content = ContentWidths()
        #: The columns in the table now, and their widths (the others are cut).
        self.fitted: dict[str, int] = {}

    # What a subclass provides.

    async def fetch(self, first: int, after: str | None) -> Page[T]:
        raise NotImplementedError

    def row(self, item: T, tz: tzinfo | None) -> Sequence[object]:
        raise NotImplementedError

    def status_line(self) -> str | Content:
        """The status line once a page is in; text is shown plain, never as markup."""
        return f"Showing {len(self.model.rows):,} of {self.model.total:,}"

    # The paging.

    @property
    def table(self) -> PagedTable:
        return self.query_one(PagedTable)

    def on_mount(self) -> None:
        self._set_columns(self._fit())

    # The columns.

    def _fit(self) -> dict[str, int]:
        table = self.table
        # A table not laid out yet (a tab not shown so far) will most likely span the screen.
        room = table.room if table.size.width else self.app.size.width - table.styles.scrollbar_size_vertical
        return fit(self.COLUMNS, self._content.widths, room)

    def _set_columns(self, widths: dict[str, int]) -> None:
        """Put exactly these columns in the table (its rows go: the caller adds them again)."""
        table = self.table
        table.clear(columns=True)
        for col in self.COLUMNS:
            if col.key in widths:
                table.add_column(col.label, key=col.key, width=widths[col.key])
        self.fitted = widths

    def fit_columns(self) -> None:
        """Size the columns to the content and the table's width: in place, or drawn again
        when a column is cut or comes back."""
        widths = self._fit()
        if list(widths) != list(self.fitted):
            self.redraw()
        elif widths != self.fitted:
            self.fitted = widths
            self.table.set_widths(widths)

    def on_paged_table_resized(self, event: PagedTable.Resized) -> None:
        self.fit_columns()

    def cells(self, item: T) -> dict[str, object]:
        """Each column's value for ``item``, by key."""
        tz = self.admin_app.tz
        return {c.key: value for c, value in zip(self.COLUMNS, self.row(item, tz), strict=True)}

    def add_item(self, item: T) -> None:
        """A row at the end of the table (call :meth:`fit_columns` after a batch)."""
        cells = self.cells(item)
        self._content.add(cells.items())
        self.table.add_row(*(cells[key] for key in self.fitted), key=item.id)

    def update_item(self, item: T) -> None:
        """Draw a row again, in place (call :meth:`fit_columns` after a batch)."""
        cells = self.cells(item)
        self._content.add(cells.items())
        for key in self.fitted:
            self.table.update_cell(item.id, key, cells[key])

    def refresh_data(self) -> None:
        self.reload()

    def reload(self, first: int | None = None) -> None:
        """Re-query from the top, ``first`` rows (a page by default); earlier answers are dropped."""
        self._load(self.model.reload(), first or self.page_size, None)

    def on_paged_table_near_end(self, event: PagedTable.NearEnd) -> None:
        step = self.model.next_page()
        if step is not None:
            generation, cursor = step
            self._load(generation, self.page_size, cursor)

    @work(exclusive=True, group="page", exit_on_error=False)
    async def _load(self, generation: int, first: int, after: str | None) -> None:
        try:
            page = await self.fetch(first, after)
        except ApiError as exc:
            self.model.failed(generation)
            self.fail(self.FAILURE if after is None else self.FAILURE_MORE or self.FAILURE, exc)
            self.show_status()
            return
        self.post_message(self.PageLoaded(self, generation, page, replace=after is None))

    def on_paged_list_view_page_loaded(self, message: PageLoaded) -> None:
        self.show_page(message.generation, message.page, replace=message.replace)

    def show_page(self, generation: int, page: Page[T], *, replace: bool) -> bool:
        """Draw an answer; False when a newer query superseded it."""
        added = self.model.accept(generation, page, replace=replace)
        if added is None:
            return False
        table = self.table
        if replace:
            self.redraw()
        else:
            for item in added:
                self.add_item(item)
            self.fit_columns()
        self.show_status()
        # The cursor may still be near the end (a small page, a jump to the end): keep going.
        table.call_after_refresh(table.check_near_end)
        return True

    def redraw(self) -> None:
        """Draw every row again: after a re-query, when rows changed places, or when a column is
        cut or comes back."""
        rows = [(item.id, self.cells(item)) for item in self.model.rows.values()]
        self._content.clear()
        for _, cells in rows:
            self._content.add(cells.items())
        widths = self._fit()
        if list(widths) != list(self.fitted):
            self._set_columns(widths)
        else:
            self.table.clear()
            if widths != self.fitted:
                self.fitted = widths
                self.table.set_widths(widths)
        for key, cells in rows:
            self.table.add_row(*(cells[k] for k in self.fitted), key=key)

    def show_status(self, text: str | None = None) -> None:
        """Show ``text`` (plain: it may carry names or the search), or the list's state."""
        line = text if text is not None else self.status_line() if self.model.loaded else self.WAITING
        if line is not None:
            self.query_one(self.STATUS, Static).update(safe.plain(line) if isinstance(line, str) else line)
