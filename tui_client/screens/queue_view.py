"""The Pending Licenses queue, drawn live: rows paged in, live changes, selection, filter.

The queue itself (rows, selection, filter, live events) is a plain
:class:`~tui_client.pending_queue.PendingQueue`. This view pages it in as the cursor nears
the end (:class:`~tui_client.screens.paged.PagedListView`) and redraws what each change
touched; a re-query (on reconnect or after a refused action) keeps the cursor on its user.
After live events it re-reads the rows in sight (debounced): an event can change rows it is
not about, a likely match above all.
The keys and the admin's actions are :class:`~tui_client.screens.pending.PendingView`'s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Input, LoadingIndicator, Static

from tui_client import format as fmt
from tui_client import safe
from tui_client.api import ApiError
from tui_client.columns import Col
from tui_client.messages import AccountChanged
from tui_client.pending_queue import Change, PendingQueue
from tui_client.screens.user_list import UserListView
from tui_client.types import Page, PendingPage, QueueEvent, User
from tui_client.widgets.detail_pane import DetailPane
from tui_client.widgets.paged_table import PagedTable

# Each as wide as its content while the row fits; when it does not, the lowest ``keep``
# gives way first: the expiry date and the device (the detail pane shows both), then the
# retained data and the entry time; the name and the likely match stay longest. A ``None``
# minimum is shown whole or not at all: a name, a reason, a time.
COLUMNS = [
    Col("sel", " ", None, keep=100),
    Col("name", "Name", None, keep=90, max=40),
    Col("logon", "Logon", 12, keep=60),
    Col("device", "Device", 10, keep=30),
    Col("suggestion", "Likely match", 14, keep=80),
    Col("reason", "Reason", None, keep=50),
    Col("entered", "Entered", None, keep=45),
    Col("retained", "Retained", 9, keep=40),
    Col("expires", "Expires", None, keep=20),
]


#: How an overdue row's name and entry time are drawn (a "!" follows the time, for those who
#: cannot tell the colour).
OVERDUE = "bold red"


def _now() -> datetime:
    return datetime.now(UTC)


class QueueView(UserListView):
    COLUMNS = COLUMNS
    #: Seconds between looks for rows in sight whose due time passed since they were read.
    DUE_CHECK_SECONDS = 60.0
    #: Seconds between a live event and the re-read of the rows in sight: events come in
    #: bursts (a bulk action, a fleet's arrivals) and one re-read covers a burst.
    REREAD_DELAY = 0.5
    FAILURE = "Could not load the queue"
    FAILURE_MORE = "Could not load more of the queue"
    STATUS = "#pending-info"
    WAITING = "Waiting for the server…"

    def __init__(
        self,
        page_size: int = 100,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        queue = PendingQueue()
        super().__init__(page_size, model=queue, name=name, id=id, classes=classes)
        self.queue = queue
        self.stale = False  # the app loads the queue at start and on every reconnect
        self._busy = 0
        self._reread_due = False
        self._rereading = False
        #: The client's clock, for when to ask the server whether rows became overdue.
        self.clock: Callable[[], datetime] = _now
        self._due_checked = datetime.min.replace(tzinfo=UTC)

    def on_mount(self) -> None:
        self.set_interval(self.DUE_CHECK_SECONDS, self.check_due)

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        search = Input(
            placeholder="Filter by name, logon or device — enter to keep, esc to clear", id="pending-filter"
        )
        search.display = False
        yield search
        with Horizontal(classes="list-and-detail"):
            yield PagedTable(id="pending-table", cursor_type="row", zebra_stripes=True)
            yield DetailPane(id="pending-detail")
        with Horizontal(id="pending-status", classes="status-line"):
            yield Static("Loading the queue…", id="pending-info")
            busy = LoadingIndicator(id="pending-busy")
            busy.display = False
            yield busy

    # ------------------------------------------------------------------ data

    async def fetch(self, first: int, after: str | None) -> Page[User]:
        return await self.api.pending_users(first, after, self.queue.search, self.queue.reason)

    def refresh_data(self) -> None:
        """Re-query from the top, as many rows as are shown, so the cursor can stay on its user."""
        self.reload(self.queue.reload_size(self.page_size))

    def show_page(self, generation: int, page: Page[User], *, replace: bool) -> bool:
        if not super().show_page(generation, page, replace=replace):
            return False
        # Replayed events carry newer usage than the answer they were replayed over.
        if replace and not self.queue.replayed and isinstance(page, PendingPage):
            self.post_message(AccountChanged(page.account))
        return True

    def apply_event(self, event: QueueEvent) -> None:
        """A live change: redraw the rows it touched; the header follows elsewhere."""
        self._redraw(self.queue.apply(event))
        self.show_status()
        if self.queue.loaded and self.queue.has_next:
            self.table.check_near_end()  # rows left: page in more before the table runs dry
        self.reread_in_sight()

    def reread_in_sight(self) -> None:
        """Re-read the rows in sight soon: one read for a burst of events, never two at once."""
        self._reread_due = True
        if not self._rereading:
            self._rereading = True
            self._reread()

    def check_due(self) -> None:
        """Rows in sight whose due time passed since they were read: read them again, so they
        show overdue. The server's answer decides (its clock), the client's clock only says when
        to ask, once per due time."""
        now = self.clock()
        top, bottom = self._in_sight()
        shown = [u.pending for u in list(self.queue.rows.values())[top : bottom + 1]]
        if any(p and p.due_at and not p.overdue and self._due_checked < p.due_at <= now for p in shown):
            self._due_checked = now
            self.reread_in_sight()

    def _in_sight(self) -> tuple[int, int]:
        table = self.table
        top = int(table.scroll_y)
        return top, top + table.scrollable_content_region.height

    @work(group="pending-reread", exit_on_error=False)
    async def _reread(self) -> None:
        try:
            while self._reread_due:
                self._reread_due = False
                await asyncio.sleep(self.REREAD_DELAY)
                if not self.queue.loaded or not self.queue.rows:
                    continue
                after, first = self.queue.window(*self._in_sight())
                generation = self.queue.reread()
                try:
                    page = await self.api.pending_users(first, after, self.queue.search, self.queue.reason)
                except ApiError:
                    # The live loop reports a lost server and re-queries when it is back.
                    self.queue.reread_failed()
                    continue
                self._redraw(self.queue.refreshed(generation, page))
        finally:
            self._rereading = False

    # ------------------------------------------------------------------ rows

    def row(self, item: User, tz: tzinfo | None) -> list[object]:
        p = item.pending
        first = item.agents[0] if item.agents else None
        more = f" +{len(item.agents) - 1}" if len(item.agents) > 1 else ""
        retained = "—"
        if p is not None and p.retained_event_count:
            retained = f"{fmt.duration(p.retained_active_seconds)}, {p.retained_event_count:,} ev"
        name: object = item.display_name
        entered: object = fmt.short(p.entered_at if p else None, tz)
        if p is not None and p.overdue:
            name, entered = safe.text(item.display_name, OVERDUE), safe.text(f"{entered} !", OVERDUE)
        return [
            self._mark(item.id),
            name,
            (first.logon + more) if first else "—",
            first.device_name if first else "—",
            fmt.match(item.suggestions[0] if item.suggestions else None),
            fmt.reason(p.reason) if p else "—",
            entered,
            retained,
            fmt.day(p.data_expires_at if p else None, tz),
        ]

    def _mark(self, user_id: str) -> Text | str:
        return Text("✓", style="bold") if user_id in self.queue.selected else " "

    def redraw(self) -> None:
        """Every row again, the cursor kept on its user."""
        keep = self.table.cursor_key()
        super().redraw()
        if keep is not None and keep in self.queue.rows:
            self.table.move_cursor(row=self.table.get_row_index(keep), animate=False)

    def _redraw(self, change: Change) -> None:
        if change.reordered:
            self.redraw()
            return
        for user_id in change.removed:
            self.table.remove_row(user_id)
        for user in change.updated:
            self.update_item(user)
        for user in change.added:
            self.add_item(user)
        if change.updated or change.added:
            self.fit_columns()
        self.changed(u.id for u in change.updated)

    def _drop(self, user_ids: list[str]) -> None:
        self._redraw(Change(removed=self.queue.drop(user_ids)))
        self.show_status()

    # ------------------------------------------------------------------ status line

    def status_line(self) -> str | Content:
        q = self.queue
        if not q.rows:
            return "No pending user matches." if q.search or q.reason else "The queue is empty."
        parts: list[str | tuple[str, str]] = [f"Showing {len(q.rows):,} of {q.total:,} pending"]
        if q.selected:
            parts += [" · ", (f"{len(q.selected):,} selected", "b")]
        if q.search:
            parts += [" · filter “", q.search, "”"]
        if q.reason:
            parts.append(f" · reason: {fmt.reason(q.reason)}")
        return safe.styled(*parts)

    def _begin(self, text: str) -> None:
        self._busy += 1
        self.query_one("#pending-busy").display = True
        self.show_status(text)

    def _end(self) -> None:
        self._busy = max(0, self._busy - 1)
        if not self._busy:
            self.query_one("#pending-busy").display = False
        self.show_status()

    # ------------------------------------------------------------------ selection and filter

    def action_toggle_select(self) -> None:
        uid = self.table.cursor_key()
        if uid is None:
            return
        self.queue.toggle(uid)
        table = self.table
        table.update_cell(uid, "sel", self._mark(uid))
        if table.cursor_row < table.row_count - 1:
            table.move_cursor(row=table.cursor_row + 1)
        self.show_status()

    def action_select_all(self) -> None:
        for uid in self.queue.select_all():
            self.table.update_cell(uid, "sel", self._mark(uid))
        self.show_status()

    def action_clear(self) -> None:
        box = self.query_one("#pending-filter", Input)
        if box.has_focus or (box.display and not self.queue.selected):
            box.value = ""
            box.display = False
            self.table.focus()
            return
        for uid in self.queue.clear_selection():
            self.table.update_cell(uid, "sel", self._mark(uid))
        self.show_status()

    def action_filter(self) -> None:
        box = self.query_one("#pending-filter", Input)
        box.display = True
        box.focus()

    @on(Input.Changed, "#pending-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self._apply_filter(event.value.strip())

    @work(exclusive=True, group="pending-filter")
    async def _apply_filter(self, value: str) -> None:
        await asyncio.sleep(0.25)  # debounce typing
        if value != self.queue.search:
            self.queue.search = value
            self.reload()

    @on(Input.Submitted, "#pending-filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            event.input.display = False
        self.table.focus()

    def action_cycle_reason(self) -> None:
        reason = self.queue.cycle_reason()
        self.reload()
        self.notify(f"Showing {fmt.reason(reason) if reason else 'all reasons'}", timeout=2)
