"""The Audit log tab: who did what to whom, newest first, paged lazily."""

from __future__ import annotations

from dataclasses import dataclass

from textual import work
from textual.app import ComposeResult
from textual.message import Message
from textual.widgets import Static

from tui_client import format as fmt
from tui_client.api import ApiError, AuditEntry, Page
from tui_client.screens.base import ApiView
from tui_client.widgets.paged_table import PagedTable

COLUMNS = [
    ("at", "When", 16),
    ("actor", "By", 14),
    ("action", "Action", 8),
    ("user", "User", 20),
    ("detail", "Detail", 50),
]


@dataclass
class AuditLoaded(Message):
    generation: int
    page: Page[AuditEntry]
    replace: bool


class AuditView(ApiView):
    def __init__(self, page_size: int = 100, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.page_size = page_size
        self.ids: set[str] = set()
        self.has_next = False
        self.end_cursor: str | None = None
        self._generation = 0
        self._loading_more = False
        self.stale = True

    def compose(self) -> ComposeResult:
        yield PagedTable(id="audit-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="audit-info", classes="status-line")

    def on_mount(self) -> None:
        table = self.query_one(PagedTable)
        for key, label, width in COLUMNS:
            table.add_column(label, key=key, width=width)

    def refresh_data(self) -> None:
        self._generation += 1
        self._fetch(self._generation, None)

    @work(exclusive=True, group="audit-page", exit_on_error=False)
    async def _fetch(self, generation: int, after: str | None) -> None:
        try:
            page = await self.api.audit_log(self.page_size, after)
        except ApiError as exc:
            self._loading_more = False
            self.fail("Could not load the audit log", exc)
            return
        self.post_message(AuditLoaded(generation, page, after is None))

    def on_paged_table_near_end(self, event: PagedTable.NearEnd) -> None:
        if self.has_next and not self._loading_more:
            self._loading_more = True
            self._fetch(self._generation, self.end_cursor)

    def on_audit_loaded(self, message: AuditLoaded) -> None:
        if message.generation != self._generation:
            return
        table = self.query_one(PagedTable)
        if message.replace:
            table.clear()
            self.ids.clear()
        tz = self.admin_app.tz
        for e in message.page.items:
            if e.id in self.ids:
                continue
            self.ids.add(e.id)
            table.add_row(
                fmt.when(e.at, tz),
                e.actor_name or "system",
                fmt.ACTIONS.get(e.action, e.action),
                e.user_display_name,
                e.detail,
                key=e.id,
            )
        self.has_next = message.page.has_next_page
        self.end_cursor = message.page.end_cursor
        self._loading_more = False
        self.query_one("#audit-info", Static).update(
            f"Showing {len(self.ids):,} of {message.page.total_count:,} entries, newest first"
        )
