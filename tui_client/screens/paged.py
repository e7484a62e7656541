"""A tab that lists one kind of item, a page at a time, loading the next as the cursor nears the end.

Subclasses say how a page is fetched (:meth:`PagedListView.fetch`), how an item becomes a
row (:meth:`PagedListView.row`) and what the status line reads; where the paging stands
(opaque cursors, one load at a time, stale answers dropped) is a plain
:class:`~tui_client.paged_list.PagedList`, and drawing it lives here once.
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
from tui_client.paged_list import HasId, PagedList
from tui_client.screens.base import ApiView
from tui_client.types import Page
from tui_client.widgets.paged_table import PagedTable

T = TypeVar("T", bound=HasId)


class PagedListView(ApiView, Generic[T]):
    #: (key, label, width) of each column.
    COLUMNS: ClassVar[Sequence[tuple[str, str, int]]] = ()
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
        for key, label, width in self.COLUMNS:
            self.table.add_column(label, key=key, width=width)

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
            tz = self.admin_app.tz
            for item in added:
                table.add_row(*self.row(item, tz), key=item.id)
        self.show_status()
        # The cursor may still be near the end (a small page, a jump to the end): keep going.
        table.call_after_refresh(table.check_near_end)
        return True

    def redraw(self) -> None:
        """Draw every row again: after a re-query, or when rows changed places."""
        table, tz = self.table, self.admin_app.tz
        table.clear()
        for item in self.model.rows.values():
            table.add_row(*self.row(item, tz), key=item.id)

    def show_status(self, text: str | None = None) -> None:
        """Show ``text`` (plain: it may carry names or the search), or the list's state."""
        line = text if text is not None else self.status_line() if self.model.loaded else self.WAITING
        if line is not None:
            self.query_one(self.STATUS, Static).update(safe.plain(line) if isinstance(line, str) else line)
