"""The Audit log tab: who did what to whom, newest first, paged lazily; and undo.

Entries the server can still undo show until when; ``space`` selects entries and ``u``
undoes the selection (or the row), after a confirmation, all or nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from tui_client import format as fmt
from tui_client.actions import AdminAction
from tui_client.api import MAX_IDS, ApiError
from tui_client.columns import Col
from tui_client.messages import AccountChanged
from tui_client.screens.paged import PagedListView
from tui_client.screens.undo import ConfirmUndo
from tui_client.types import AuditEntry, Page, UserStatus
from tui_client.widgets.paged_table import PagedTable

MARK = "●"


class AuditView(PagedListView[AuditEntry]):
    COLUMNS = [
        Col("at", "When", None, keep=90),
        Col("actor", "By", 10, keep=60),
        Col("action", "Action", None, keep=80),
        Col("user", "User", 12, keep=70),
        # Until when the server can undo the entry (MM-DD HH:MM); a selected one is marked.
        Col("undo", "Undo until", None, keep=75),
        Col("detail", "Detail", 20, keep=50),
    ]
    FAILURE = "Could not load the audit log"
    BINDINGS = [
        Binding("space", "toggle_select", "Select"),
        Binding("u", AdminAction.UNDO_ENTRIES, "Undo"),
        Binding("escape", "clear", "Clear", show=False),
    ]

    def __init__(self, page_size: int = 100, **kwargs: Any) -> None:
        super().__init__(page_size, **kwargs)
        self.selected: set[str] = set()

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
            self._until(item, tz),
            item.detail,
        )

    def _until(self, item: AuditEntry, tz: tzinfo | None) -> str:
        if item.undoable_until is None:
            return ""
        mark = f"{MARK} " if item.id in self.selected else "  "
        return mark + fmt.when(item.undoable_until, tz)[5:]

    def status_line(self) -> str:
        picked = f"; {len(self.selected):,} selected (u undoes them)" if self.selected else ""
        return f"Showing {len(self.model.rows):,} of {self.model.total:,} entries, newest first{picked}"

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if AdminAction.named(action) is not None and not self.admin_app.can_act:
            return None  # shown dimmed: a VIEWER may read but not act
        return True

    def reload(self, first: int | None = None) -> None:
        self.selected.clear()
        super().reload(first)

    # ------------------------------------------------------------------ selection

    def action_toggle_select(self) -> None:
        key = self.table.cursor_key()
        if key is None:
            return
        entry = self.model.rows[key]
        if entry.undoable_until is None:
            self.notify("This entry cannot be undone.", severity="warning")
            return
        self.selected.symmetric_difference_update({key})
        self.update_item(entry)
        self.show_status()

    def action_clear(self) -> None:
        picked, self.selected = self.selected, set()
        for key in picked:
            self.update_item(self.model.rows[key])
        self.show_status()

    # ------------------------------------------------------------------ undo

    def action_undo_entries(self) -> None:
        cursor = self.table.cursor_key()
        ids = [i for i in self.model.rows if i in self.selected] or ([cursor] if cursor else [])
        entries = [self.model.rows[i] for i in ids]
        if not entries:
            return
        # As the server said when the page was read; it decides again when asked.
        late = [e for e in entries if e.undoable_until is None]
        if late:
            what = "this entry" if len(entries) == 1 else f"{len(late):,} of the selected entries"
            self.notify(f"{what.capitalize()} can no longer be undone.", severity="warning")
            return
        if len(entries) > MAX_IDS:
            self.notify(f"Undo at most {MAX_IDS} entries at once.", severity="warning")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._undo([e.id for e in entries])

        self.app.push_screen(ConfirmUndo(entries, self.admin_app.tz), answered)

    @work(group="audit-undo", exit_on_error=False)
    async def _undo(self, ids: list[str]) -> None:
        try:
            account, users = await self.api.undo(ids)
        except ApiError as exc:
            self.fail("Nothing was undone", exc)
            self.reload()
            return
        self.post_message(AccountChanged(account))
        waiting = [u.display_name for u in users if u.status is UserStatus.PENDING]
        self.notify(
            f"Undid {len(ids):,} {'entry' if len(ids) == 1 else 'entries'}."
            + (f" In the queue now: {', '.join(waiting[:5])}." if waiting else ""),
            title="Undone",
        )
        self.reload()
