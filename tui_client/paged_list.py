"""Where a keyset-paged list stands: its rows in the list's order, and the paging. Plain Python.

A view asks :meth:`PagedList.reload` or :meth:`PagedList.next_page` what to load and hands
each answer to :meth:`PagedList.accept`. One load is in flight at a time: a reload supersedes
whatever was loading, and an answer to a query that a newer reload superseded is dropped.
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

from tui_client.api import MAX_IDS
from tui_client.types import Page


class HasId(Protocol):
    @property
    def id(self) -> str: ...


T = TypeVar("T", bound=HasId)


class PagedList(Generic[T]):
    def __init__(self) -> None:
        #: The rows paged in so far, by id, in the list's order.
        self.rows: dict[str, T] = {}
        #: How many rows the whole (filtered) list has on the server.
        self.total = 0
        self.has_next = False
        self.end_cursor: str | None = None
        #: A first answer has arrived.
        self.loaded = False
        #: A query is in flight.
        self.loading = False
        self.generation = 0

    def reload(self) -> int:
        """A query from the top begins: its generation (answers to earlier ones will be dropped)."""
        self.generation += 1
        self.loading = True
        return self.generation

    def next_page(self) -> tuple[int, str | None] | None:
        """The generation and cursor to load the next page with; None when nothing is left to
        load, nothing was loaded yet, or a query is in flight."""
        if not self.loaded or not self.has_next or self.loading:
            return None
        self.loading = True
        return self.generation, self.end_cursor

    def failed(self, generation: int) -> None:
        """The query of ``generation`` failed: another may begin."""
        if generation == self.generation:
            self.loading = False

    def accept(self, generation: int, page: Page[T], *, replace: bool) -> list[T] | None:
        """Take an answer: the rows it added, or None when a newer reload superseded it.

        ``replace`` (the answer to a reload) drops the rows shown before. A row already shown
        is not added twice (a page boundary that moved under live changes).
        """
        if generation != self.generation:
            return None
        if replace:
            self.rows.clear()
        added = []
        for item in page.items:
            if item.id not in self.rows:
                self.rows[item.id] = item
                added.append(item)
        self.total = page.total_count
        self.has_next = page.has_next_page
        self.end_cursor = page.end_cursor
        self.loaded = True
        self.loading = False
        return added


class SelectableList(PagedList[T]):
    """A paged list whose rows the admin can select (space, ctrl+a) to act on several at once.

    A selection only ever holds rows the list shows: a reload drops the marks of rows it no
    longer has.
    """

    def __init__(self) -> None:
        super().__init__()
        self.selected: set[str] = set()

    def accept(self, generation: int, page: Page[T], *, replace: bool) -> list[T] | None:
        added = super().accept(generation, page, replace=replace)
        if added is not None:
            self.selected &= self.rows.keys()
        return added

    def toggle(self, row_id: str) -> None:
        if row_id in self.selected:
            self.selected.discard(row_id)
        elif row_id in self.rows:
            self.selected.add(row_id)

    def select_all(self) -> list[str]:
        """Select the first rows (up to what one action takes), or unselect them if all are
        selected: the rows whose mark may have changed."""
        ids = list(self.rows)[:MAX_IDS]
        if set(ids) <= self.selected:
            self.selected.difference_update(ids)
        else:
            self.selected.update(ids)
        return ids

    def clear_selection(self) -> list[str]:
        """Unselect everything: the rows that were selected."""
        cleared = list(self.selected)
        self.selected.clear()
        return cleared
