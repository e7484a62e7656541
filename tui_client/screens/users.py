"""The Users tab: every tracked person, licensed and pending, searchable, paged lazily."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input, Static

from tui_client import format as fmt
from tui_client.api import ApiError, Page, User
from tui_client.screens.base import ApiView
from tui_client.widgets.paged_table import PagedTable

COLUMNS = [
    ("name", "Name", 22),
    ("status", "Status", 9),
    ("logon", "Logon", 22),
    ("devices", "Devices", 20),
    ("first", "First seen", 16),
    ("last", "Last seen", 16),
]
STATUSES: list[str | None] = [None, "LICENSED", "PENDING"]


@dataclass
class UsersLoaded(Message):
    generation: int
    page: Page[User]
    replace: bool


class UsersView(ApiView):
    BINDINGS = [
        Binding("slash", "search", "Search"),
        Binding("f", "cycle_status", "Status"),
    ]

    def __init__(self, page_size: int = 100, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.page_size = page_size
        self.search = ""
        self.status: str | None = None
        self.ids: set[str] = set()
        self.has_next = False
        self.end_cursor: str | None = None
        self.total = 0
        self._generation = 0
        self._loading_more = False
        self.stale = True

    def compose(self) -> ComposeResult:
        yield Input(placeholder="Search users by name, logon or device", id="users-search")
        yield PagedTable(id="users-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="users-info", classes="status-line")

    def on_mount(self) -> None:
        table = self.query_one(PagedTable)
        for key, label, width in COLUMNS:
            table.add_column(label, key=key, width=width)

    def refresh_data(self) -> None:
        self._generation += 1
        self._fetch(self._generation, None)

    @work(exclusive=True, group="users-page", exit_on_error=False)
    async def _fetch(self, generation: int, after: str | None) -> None:
        try:
            page = await self.api.users(self.page_size, after, self.search, self.status)
        except ApiError as exc:
            self._loading_more = False
            self.fail("Could not load users", exc)
            return
        self.post_message(UsersLoaded(generation, page, after is None))

    def on_paged_table_near_end(self, event: PagedTable.NearEnd) -> None:
        if self.has_next and not self._loading_more:
            self._loading_more = True
            self._fetch(self._generation, self.end_cursor)

    def on_users_loaded(self, message: UsersLoaded) -> None:
        if message.generation != self._generation:
            return
        table = self.query_one(PagedTable)
        if message.replace:
            table.clear()
            self.ids.clear()
        tz = self.admin_app.tz
        for u in message.page.items:
            if u.id in self.ids:
                continue
            self.ids.add(u.id)
            first = u.agents[0] if u.agents else None
            devices = ", ".join(sorted({a.device_name for a in u.agents}))
            status = "licensed" if u.status == "LICENSED" else "[b $warning]pending[/]"
            table.add_row(
                u.display_name,
                status,
                first.logon if first else "—",
                devices or "—",
                fmt.when(u.first_seen_at, tz),
                fmt.when(u.last_seen_at, tz),
                key=u.id,
            )
        self.has_next = message.page.has_next_page
        self.end_cursor = message.page.end_cursor
        self.total = message.page.total_count
        self._loading_more = False
        which = {None: "users", "LICENSED": "licensed users", "PENDING": "pending users"}[self.status]
        info = f"Showing {len(self.ids):,} of {self.total:,} {which}"
        if self.search:
            info += f" · search “{self.search}”"
        self.query_one("#users-info", Static).update(info)

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
        self.status = STATUSES[(STATUSES.index(self.status) + 1) % len(STATUSES)]
        self.refresh_data()
