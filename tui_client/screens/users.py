"""The Users tab: every tracked person, licensed and pending, searchable, paged lazily."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import tzinfo

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Input, Static

from tui_client import format as fmt
from tui_client.columns import Col
from tui_client.screens.user_list import UserListView
from tui_client.types import Page, User, UserStatus
from tui_client.widgets.detail_pane import DetailPane
from tui_client.widgets.paged_table import PagedTable

#: What ``f`` cycles through, and what the status line calls each.
STATUSES: dict[UserStatus | None, str] = {
    None: "users",
    UserStatus.LICENSED: "licensed users",
    UserStatus.PENDING: "pending users",
}


class UsersView(UserListView):
    BINDINGS = [
        Binding("slash", "search", "Search"),
        Binding("f", "cycle_status", "Status"),
    ]
    COLUMNS = [
        Col("name", "Name", None, keep=90, max=40),
        Col("status", "Status", None, keep=85),
        Col("logon", "Logon", 12, keep=60),
        Col("devices", "Devices", 10, keep=50, max=40),
        Col("suggestion", "Likely match", 14, keep=80),
        Col("first", "First seen", None, keep=30),
        Col("last", "Last seen", None, keep=40),
    ]
    FAILURE = "Could not load users"

    def __init__(
        self,
        page_size: int = 100,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(page_size, name=name, id=id, classes=classes)
        self.search = ""
        self.status: UserStatus | None = None

    def compose(self) -> ComposeResult:
        yield Input(placeholder="Search users by name, logon or device", id="users-search")
        with Horizontal(classes="list-and-detail"):
            yield PagedTable(id="users-table", cursor_type="row", zebra_stripes=True)
            yield DetailPane(id="users-detail")
        yield Static("", id="users-info", classes="status-line")

    async def fetch(self, first: int, after: str | None) -> Page[User]:
        return await self.api.users(first, after, self.search, self.status)

    def row(self, item: User, tz: tzinfo | None) -> Sequence[object]:
        first = item.agents[0] if item.agents else None
        devices = ", ".join(sorted({a.device_name for a in item.agents}))
        return (
            item.display_name,
            fmt.status(item.status),
            first.logon if first else "—",
            devices or "—",
            fmt.match(item.suggestions[0] if item.suggestions else None),
            fmt.when(item.first_seen_at, tz),
            fmt.when(item.last_seen_at, tz),
        )

    def status_line(self) -> str:
        info = f"Showing {len(self.model.rows):,} of {self.model.total:,} {STATUSES[self.status]}"
        if self.search:
            info += f" · search “{self.search}”"
        return info

    def action_search(self) -> None:
        self.query_one("#users-search", Input).focus()

    @on(Input.Changed, "#users-search")
    def _changed(self, event: Input.Changed) -> None:
        self._debounced(event.value.strip())

    @work(exclusive=True, group="users-search")
    async def _debounced(self, value: str) -> None:
        await asyncio.sleep(0.25)
        if value != self.search:
            self.search = value
            self.refresh_data()

    @on(Input.Submitted, "#users-search")
    def _submitted(self) -> None:
        self.query_one(PagedTable).focus()

    def action_cycle_status(self) -> None:
        order = list(STATUSES)
        self.status = order[(order.index(self.status) + 1) % len(order)]
        self.refresh_data()
