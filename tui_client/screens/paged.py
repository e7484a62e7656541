"""A tab that lists one kind of item, a page at a time, loading the next as the cursor nears the end.

Subclasses say how a page is fetched (:meth:`PagedListView.fetch`), how an item becomes a
row (:meth:`PagedListView.row`) and what the status line reads; the paging (opaque cursors,
one load at a time, replace on re-query, stale answers dropped) lives here once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo
from typing import ClassVar, Generic, Protocol, TypeVar

from textual import work
from textual.widgets import Static

from tui_client import safe
from tui_client.api import ApiError
from tui_client.screens.base import ApiView
from tui_client.types import Page
from tui_client.widgets.paged_table import PagedTable


class HasId(Protocol):
    @property
    def id(self) -> str: ...


T = TypeVar("T", bound=HasId)


class PagedListView(ApiView, Generic[T]):
    #: (key, label, width) of each column.
    COLUMNS: ClassVar[Sequence[tuple[str, str, int]]] = ()
    #: The notification title when a page cannot be loaded.
    FAILURE: ClassVar[str] = "Could not load the list"

    def __init__(self, page_size: int = 100, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.page_size = page_size
        self.ids: set[str] = set()
        self.has_next = False
        self.end_cursor: str | None = None
        self.total = 0
        self._generation = 0
        self._loading_more = False
        self.stale = True

    # What a subclass provides.

    async def fetch(self, first: int, after: str | None) -> Page[T]:
        raise NotImplementedError

    def row(self, item: T, tz: tzinfo | None) -> Sequence[object]:
        raise NotImplementedError

    def status_line(self) -> str:
        """Plain text, never markup."""
        return f"Showing {len(self.ids):,} of {self.total:,}"

    # The paging.

    @property
    def table(self) -> PagedTable:
        return self.query_one(PagedTable)

    def on_mount(self) -> None:
        for key, label, width in self.COLUMNS:
            self.table.add_column(label, key=key, width=width)

    def refresh_data(self) -> None:
        """Re-query from the first page; an answer to an earlier query is dropped."""
        self._generation += 1
        self._load(self._generation, None)

    def on_paged_table_near_end(self, event: PagedTable.NearEnd) -> None:
        if self.has_next and not self._loading_more:
            self._loading_more = True
            self._load(self._generation, self.end_cursor)

    @work(exclusive=True, group="page", exit_on_error=False)
    async def _load(self, generation: int, after: str | None) -> None:
        try:
            page = await self.fetch(self.page_size, after)
        except ApiError as exc:
            self._loading_more = False
            self.fail(self.FAILURE, exc)
            return
        if generation == self._generation:
            self._show(page, replace=after is None)

    def _show(self, page: Page[T], *, replace: bool) -> None:
        table = self.table
        if replace:
            table.clear()
            self.ids.clear()
        tz = self.admin_app.tz
        for item in page.items:
            if item.id not in self.ids:
                self.ids.add(item.id)
                table.add_row(*self.row(item, tz), key=item.id)
        self.has_next = page.has_next_page
        self.end_cursor = page.end_cursor
        self.total = page.total_count
        self._loading_more = False
        # Plain: a status line may echo the search text.
        self.query_one(".status-line", Static).update(safe.plain(self.status_line()))
        # The cursor may still be near the end (a small page, a jump to the end): keep going.
        table.call_after_refresh(table.check_near_end)
