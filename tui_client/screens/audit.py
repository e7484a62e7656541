"""The Audit log tab: who did what to whom, newest first, paged lazily."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo

from textual.app import ComposeResult
from textual.widgets import Static

from tui_client import format as fmt
from tui_client.columns import Col
from tui_client.screens.paged import PagedListView
from tui_client.types import AuditEntry, Page
from tui_client.widgets.paged_table import PagedTable


class AuditView(PagedListView[AuditEntry]):
    COLUMNS = [
        Col("at", "When", None, keep=90),
        Col("actor", "By", 10, keep=60),
        Col("action", "Action", None, keep=80),
        Col("user", "User", 12, keep=70),
        Col("detail", "Detail", 20, keep=50),
    ]
    FAILURE = "Could not load the audit log"

    def compose(self) -> ComposeResult:
        yield PagedTable(id="audit-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="audit-info", classes="status-line")

    async def fetch(self, first: int, after: str | None) -> Page[AuditEntry]:
        return await self.api.audit_log(first, after)

    def row(self, item: AuditEntry, tz: tzinfo | None) -> Sequence[object]:
        return (
            fmt.when(item.at, tz),
            item.actor_name or "system",
            fmt.action(item.action),
            item.user_display_name,
            item.detail,
        )

    def status_line(self) -> str:
        return f"Showing {len(self.model.rows):,} of {self.model.total:,} entries, newest first"
