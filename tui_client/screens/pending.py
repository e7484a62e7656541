"""The Pending Licenses tab: the live queue and every action on it.

Rows are paged in as the cursor nears the end; live events add, change and remove rows in
place. A re-query (on reconnect or after a refused action) keeps the cursor on its user.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, LoadingIndicator, Static

from tui_client import format as fmt
from tui_client import safe
from tui_client.actions import AdminAction
from tui_client.api import MAX_IDS, ActionResult, ApiError
from tui_client.messages import AccountChanged
from tui_client.screens.base import ApiView
from tui_client.screens.confirm import ConfirmRemove
from tui_client.screens.pickers import AgentPicker, UserPicker
from tui_client.screens.suggestions import SuggestionsScreen
from tui_client.types import ErrorCode, PendingPage, PendingReason, QueueEvent, Suggestion, User, UserStatus
from tui_client.widgets.paged_table import PagedTable

# Sized so the whole row fits a 120-column terminal, scrollbar included.
COLUMNS = [
    ("sel", " ", 1),
    ("name", "Name", 15),
    ("logon", "Logon", 14),
    ("device", "Device", 12),
    ("suggestion", "Likely match", 16),
    ("reason", "Reason", 10),
    ("entered", "Entered", 12),
    ("retained", "Retained", 12),
    ("expires", "Expires", 7),
]
REASON_FILTERS: list[PendingReason | None] = [None, PendingReason.OVER_LIMIT, PendingReason.MANUAL_REVIEW]


def matches(user: User, search: str) -> bool:
    """A client-side approximation of the server's search (name, logon, device), for arrivals."""
    needle = search.casefold()
    hay = [user.display_name] + [f"{a.logon_name}\n{a.device_name}" for a in user.agents]
    return any(needle in h.casefold() for h in hay)


@dataclass
class PageLoaded(Message):
    generation: int
    result: PendingPage
    replace: bool


class PendingView(ApiView):
    BINDINGS = [
        Binding("space", "toggle_select", "Select"),
        Binding("a", AdminAction.APPROVE, "Approve"),
        Binding("s", AdminAction.ASSIGN, "Assign"),
        Binding("m", AdminAction.MERGE, "Merge"),
        Binding("x,delete", AdminAction.REMOVE, "Remove"),
        Binding("y", AdminAction.ACCEPT_MATCH, "Accept match"),
        Binding("w", "suggestions", "Matches"),
        Binding("slash", "filter", "Filter"),
        Binding("f", "cycle_reason", "Reason", show=False),
        Binding("ctrl+a", "select_all", "Select all", show=False),
        Binding("escape", "clear", "Clear", show=False),
    ]

    def __init__(self, page_size: int = 100, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.page_size = page_size
        self.users: dict[str, User] = {}
        self.selected: set[str] = set()
        self.total = 0
        self.has_next = False
        self.end_cursor: str | None = None
        self.search = ""
        self.reason: PendingReason | None = None
        self.loaded = False
        self._generation = 0
        self._loading_more = False
        self._busy = 0
        # Events that arrive while a re-query is in flight, replayed over its answer: the answer
        # may predate them, and they must not be lost.
        self._replay: list[QueueEvent] | None = None

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Input(
            placeholder="Filter by name, logon or device — enter to keep, esc to clear", id="pending-filter"
        )
        yield PagedTable(id="pending-table", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="pending-status", classes="status-line"):
            yield Static("Loading the queue…", id="pending-info")
            yield LoadingIndicator(id="pending-busy")

    def on_mount(self) -> None:
        table = self.table
        for key, label, width in COLUMNS:
            table.add_column(label, key=key, width=width)
        self.query_one("#pending-busy").display = False
        self.query_one("#pending-filter").display = False

    @property
    def table(self) -> PagedTable:
        return self.query_one("#pending-table", PagedTable)

    # ------------------------------------------------------------------ data

    def refresh_data(self) -> None:
        self.reload()

    def reload(self, fresh: bool = False) -> None:
        """Re-query from the top: one page when ``fresh`` (a new filter), else as many rows as
        are shown now, so the cursor can stay on its user."""
        self._generation += 1
        self._loading_more = False
        want = self.page_size if fresh else min(max(len(self.users), self.page_size), MAX_IDS)
        self._replay = []
        self._fetch(self._generation, want, None, replace=True)

    @work(exclusive=True, group="pending-page", exit_on_error=False)
    async def _fetch(self, generation: int, first: int, after: str | None, replace: bool) -> None:
        try:
            result = await self.api.pending_users(first, after, self.search, self.reason)
        except ApiError as exc:
            self._loading_more = False
            self._replay = None
            self.fail("Could not load the queue", exc)
            self._set_info()
            return
        self.post_message(PageLoaded(generation, result, replace))

    def on_paged_table_near_end(self, event: PagedTable.NearEnd) -> None:
        if self.has_next and not self._loading_more and self.loaded:
            self._loading_more = True
            self._fetch_more(self._generation, self.end_cursor)

    @work(exclusive=True, group="pending-more", exit_on_error=False)
    async def _fetch_more(self, generation: int, after: str | None) -> None:
        try:
            result = await self.api.pending_users(self.page_size, after, self.search, self.reason)
        except ApiError as exc:
            self._loading_more = False
            self.fail("Could not load more of the queue", exc)
            return
        self.post_message(PageLoaded(generation, result, replace=False))

    def on_page_loaded(self, message: PageLoaded) -> None:
        if message.generation != self._generation:
            return  # a newer query (filter, catch-up) superseded this one
        page = message.result
        table = self.table
        keep: str | None = None
        if message.replace:
            keep = self._cursor_user_id()
            table.clear()
            self.users.clear()
        for user in page.items:
            if user.id not in self.users:
                self._add_row(user)
        self.total = page.total_count
        self.has_next = page.has_next_page
        self.end_cursor = page.end_cursor
        self.selected &= set(self.users)
        self._loading_more = False
        self.loaded = True
        if message.replace:
            replay, self._replay = self._replay or [], None
            for event in replay:
                self.apply_event(event)
            if keep is not None and keep in self.users:
                table.move_cursor(row=table.get_row_index(keep), animate=False)
            if not replay:
                self.post_message(AccountChanged(message.result.account))
        self._set_info()
        table.call_after_refresh(table.check_near_end)

    # ------------------------------------------------------------------ rows

    def _cells(self, user: User) -> list[object]:
        tz = self.admin_app.tz
        p = user.pending
        first = user.agents[0] if user.agents else None
        more = f" +{len(user.agents) - 1}" if len(user.agents) > 1 else ""
        mark = Text("✓", style="bold") if user.id in self.selected else " "
        retained = "—"
        if p is not None and p.retained_event_count:
            retained = f"{fmt.duration(p.retained_active_seconds)}, {p.retained_event_count:,} ev"
        top = user.suggestions[0] if user.suggestions else None
        return [
            mark,
            user.display_name,
            (first.logon + more) if first else "—",
            first.device_name if first else "—",
            f"{top.kind.title()} {top.target_name} {top.score:.0%}" if top else "—",
            fmt.reason(p.reason) if p else "—",
            fmt.short(p.entered_at if p else None, tz),
            retained,
            fmt.day(p.data_expires_at if p else None, tz),
        ]

    def _add_row(self, user: User) -> None:
        self.users[user.id] = user
        self.table.add_row(*self._cells(user), key=user.id)

    def _update_row(self, user: User) -> None:
        self.users[user.id] = user
        for (key, _, _), value in zip(COLUMNS, self._cells(user), strict=True):
            self.table.update_cell(user.id, key, value)

    def _remove_row(self, user_id: str) -> None:
        if user_id in self.users:
            del self.users[user_id]
            self.selected.discard(user_id)
            self.table.remove_row(user_id)

    def _cursor_user_id(self) -> str | None:
        table = self.table
        if table.row_count == 0:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return row_key.value

    def _wanted(self, user: User) -> bool:
        if user.status is not UserStatus.PENDING or user.pending is None:
            return False
        if self.reason is not None and user.pending.reason != self.reason:
            return False
        return not self.search or matches(user, self.search)

    def apply_event(self, event: QueueEvent) -> None:
        """A live change: add, update or remove the user's row; the header follows elsewhere."""
        if self._replay is not None:
            self._replay.append(event)
        user = event.user
        if user is not None and self._wanted(user):
            if user.id in self.users:
                self._update_row(user)
            else:
                self.total += 1
                # The queue is oldest first, so an arrival belongs at the end: show it now only
                # if the end is already paged in; otherwise paging reaches it.
                if not self.has_next and self.loaded:
                    self._add_row(user)
        elif event.user_id in self.users:
            self._remove_row(event.user_id)
            self.total = max(0, self.total - 1)
        target = event.target
        if target is not None and target.id in self.users and self._wanted(target):
            # Assigned or merged into a queued user: its row gained agents and activity.
            self._update_row(target)
        if not self.search and self.reason is None:
            self.total = event.account.pending_count
        self._set_info()
        if self.loaded and self.has_next:
            self.table.check_near_end()  # rows left: page in more before the table runs dry

    def _drop(self, user_ids: list[str]) -> None:
        for uid in user_ids:
            if uid in self.users:
                self._remove_row(uid)
                self.total = max(0, self.total - 1)
        self._set_info()

    # ------------------------------------------------------------------ status line

    def _set_info(self, text: str | None = None) -> None:
        """Show ``text`` (plain, never markup: it may carry names), or the queue's state."""
        info = self.query_one("#pending-info", Static)
        if text is not None:
            info.update(safe.plain(text))
        elif not self.loaded:
            info.update("Waiting for the server…")
        elif not self.users:
            filtered = self.search or self.reason
            info.update("No pending user matches." if filtered else "The queue is empty.")
        else:
            parts: list[str | tuple[str, str]] = [f"Showing {len(self.users):,} of {self.total:,} pending"]
            if self.selected:
                parts += [" · ", (f"{len(self.selected):,} selected", "b")]
            if self.search:
                parts += [" · filter “", self.search, "”"]
            if self.reason:
                parts.append(f" · reason: {fmt.reason(self.reason)}")
            info.update(safe.styled(*parts))

    def _begin(self, text: str) -> None:
        self._busy += 1
        self.query_one("#pending-busy").display = True
        self._set_info(text)

    def _end(self) -> None:
        self._busy = max(0, self._busy - 1)
        if not self._busy:
            self.query_one("#pending-busy").display = False
        self._set_info()

    # ------------------------------------------------------------------ selection and filter

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if AdminAction.named(action) is not None and not self.admin_app.can_act:
            return None  # shown dimmed: a VIEWER may read but not act
        return True

    def action_toggle_select(self) -> None:
        uid = self._cursor_user_id()
        if uid is None:
            return
        if uid in self.selected:
            self.selected.discard(uid)
        else:
            self.selected.add(uid)
        self.table.update_cell(uid, "sel", self._cells(self.users[uid])[0])
        if self.table.cursor_row < self.table.row_count - 1:
            self.table.move_cursor(row=self.table.cursor_row + 1)
        self._set_info()

    def action_select_all(self) -> None:
        ids = list(self.users)[:MAX_IDS]
        everything = set(ids) <= self.selected
        for uid in ids:
            (self.selected.discard if everything else self.selected.add)(uid)
            self.table.update_cell(uid, "sel", self._cells(self.users[uid])[0])
        self._set_info()

    def action_clear(self) -> None:
        box = self.query_one("#pending-filter", Input)
        if box.has_focus or (box.display and not self.selected):
            box.value = ""
            box.display = False
            self.table.focus()
            return
        for uid in list(self.selected):
            self.selected.discard(uid)
            self.table.update_cell(uid, "sel", " ")
        self._set_info()

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
        if value != self.search:
            self.search = value
            self.reload(fresh=True)

    @on(Input.Submitted, "#pending-filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            event.input.display = False
        self.table.focus()

    def action_cycle_reason(self) -> None:
        self.reason = REASON_FILTERS[(REASON_FILTERS.index(self.reason) + 1) % len(REASON_FILTERS)]
        self.reload(fresh=True)
        label = fmt.reason(self.reason) if self.reason else "all reasons"
        self.notify(f"Showing {label}", timeout=2)

    # ------------------------------------------------------------------ actions

    def _targets(self) -> list[str]:
        if self.selected:
            return [uid for uid in self.users if uid in self.selected]
        uid = self._cursor_user_id()
        if uid is None:
            self.notify("The queue is empty: nothing to act on.", severity="warning")
            return []
        return [uid]

    def _one_target(self, verb: str) -> User | None:
        ids = self._targets()
        if not ids:
            return None
        if len(ids) > 1:
            self.notify(
                f"{verb} works on one user at a time; press esc to clear the selection.", severity="warning"
            )
            return None
        return self.users[ids[0]]

    def _names(self, ids: list[str]) -> str:
        if len(ids) == 1:
            return self.users[ids[0]].display_name
        return fmt.plural(len(ids), "user")

    def action_approve(self) -> None:
        ids = self._targets()
        if not ids:
            return
        if len(ids) > MAX_IDS:
            self.notify(f"Approve at most {MAX_IDS} users at once.", severity="warning")
            return
        self._approve(ids, self._names(ids))

    @work(group="pending-action", exit_on_error=False)
    async def _approve(self, ids: list[str], names: str) -> None:
        self._begin(f"Approving {names}…")
        try:
            result = await self.api.approve(ids)
        except ApiError as exc:
            if exc.code == ErrorCode.LICENSE_LIMIT_EXCEEDED:
                self.notify(
                    f"{safe.clean(exc.message)}\nNothing was approved. Approve fewer users, raise the limit, "
                    "or remove licensed users.",
                    title="Not enough licenses",
                    severity="error",
                    timeout=10,
                )
            else:
                self.fail("Approve failed", exc)
                self.reload()
            return
        finally:
            self._end()
        self._drop(result.user_ids or ids)
        self.post_message(AccountChanged(result.account))
        a = result.account
        self.notify(
            f"Approved {names}. Licenses: {a.licenses_used}/{a.license_limit} used, "
            f"{a.licenses_available} available.",
            title="Approved",
        )

    def action_assign(self) -> None:
        self._pick_and_resolve(AdminAction.ASSIGN)

    def action_merge(self) -> None:
        self._pick_and_resolve(AdminAction.MERGE)

    def _pick_and_resolve(self, action: AdminAction) -> None:
        """Pick a target for the row's user (a user, or an agent to merge into), then act."""
        merge = action is AdminAction.MERGE
        user = self._one_target("Merge" if merge else "Assign")
        if user is None:
            return

        def chosen(target: tuple[str, str] | None) -> None:
            if target is not None:
                self._resolve(action, user, target[0])

        picker = AgentPicker(self.api, user) if merge else UserPicker(self.api, user)
        self.app.push_screen(picker, chosen)

    async def _mutate(self, action: AdminAction, user_id: str, target_id: str) -> ActionResult:
        """Assign (to a user) or merge (into an agent): the same round trip, another mutation."""
        if action is AdminAction.MERGE:
            return await self.api.merge(user_id, target_id)
        return await self.api.assign(user_id, target_id)

    @work(group="pending-action", exit_on_error=False)
    async def _resolve(self, action: AdminAction, user: User, target_id: str) -> None:
        merge = action is AdminAction.MERGE
        self._begin(f"{'Merging' if merge else 'Assigning'} {user.display_name}…")
        try:
            result = await self._mutate(action, user.id, target_id)
        except ApiError as exc:
            self.fail(f"{'Merge' if merge else 'Assign'} failed", exc)
            self.reload()
            return
        finally:
            self._end()
        self._drop([user.id])
        self.post_message(AccountChanged(result.account))
        if merge:
            self.notify(f"{user.display_name} merged into {result.target}.", title="Merged")
        else:
            self.notify(f"{user.display_name}'s devices now belong to {result.target}.", title="Assigned")

    def action_remove(self) -> None:
        ids = self._targets()
        if not ids:
            return
        if len(ids) > MAX_IDS:
            self.notify(f"Remove at most {MAX_IDS} users at once.", severity="warning")
            return
        names = [self.users[uid].display_name for uid in ids]

        def confirmed(do_not_track: bool | None) -> None:
            if do_not_track is not None:
                self._remove(ids, self._names(ids), do_not_track)

        self.app.push_screen(ConfirmRemove(names), confirmed)

    @work(group="pending-action", exit_on_error=False)
    async def _remove(self, ids: list[str], names: str, do_not_track: bool) -> None:
        self._begin(f"Removing {names}…")
        try:
            result = await self.api.remove(ids, do_not_track)
        except ApiError as exc:
            self.fail("Remove failed", exc)
            self.reload()
            return
        finally:
            self._end()
        self._drop(result.user_ids or ids)
        self.post_message(AccountChanged(result.account))
        tail = " Their devices will be ignored from now on." if do_not_track else ""
        self.notify(f"Removed {names}.{tail}", title="Removed")

    # ------------------------------------------------------------------ likely matches

    def action_suggestions(self) -> None:
        user = self._one_target("Showing matches")
        if user is None:
            return

        def chosen(suggestion: Suggestion | None) -> None:
            if suggestion is not None:
                self._accept([(user, suggestion)])

        self.app.push_screen(SuggestionsScreen(self.api, user, can_act=self.admin_app.can_act), chosen)

    def action_accept_suggestion(self) -> None:
        """The cursor row's best match, or every selected row's: one keystroke per user.

        The server stores only matches above its threshold, so a row with a match qualifies;
        rows without one are left for the admin.
        """
        ids = self._targets()
        if not ids:
            return
        todo = [
            (self.users[uid], self.users[uid].suggestions[0]) for uid in ids if self.users[uid].suggestions
        ]
        if not todo:
            self.notify("No likely match for this selection; press w to see why.", severity="warning")
            return
        skipped = len(ids) - len(todo)
        self._accept(todo, skipped)

    @work(group="pending-action", exit_on_error=False)
    async def _accept(self, todo: list[tuple[User, Suggestion]], skipped: int = 0) -> None:
        what = todo[0][0].display_name if len(todo) == 1 else fmt.plural(len(todo), "user")
        self._begin(f"Accepting the likely match for {what}…")
        done: list[str] = []
        failed: list[str] = []
        account = None
        try:
            for user, s in todo:
                try:
                    result = await self._mutate(AdminAction.resolving(s.kind), user.id, s.target_id)
                except ApiError as exc:
                    failed.append(f"{safe.clean(user.display_name)}: {safe.clean(exc.message)}")
                    continue
                account = result.account
                done.append(user.id)
                self._drop([user.id])
        finally:
            self._end()
        if account is not None:
            self.post_message(AccountChanged(account))
        if len(todo) == 1 and done:
            user, s = todo[0]
            verb = "merged into" if AdminAction.resolving(s.kind) is AdminAction.MERGE else "assigned to"
            self.notify(f"{user.display_name} {verb} {s.target}.", title="Likely match accepted")
        elif done:
            tail = f"; {fmt.plural(skipped, 'user')} without a likely match left alone" if skipped else ""
            self.notify(
                f"Resolved {fmt.plural(len(done), 'user')} by their likely match{tail}.", title="Accepted"
            )
        if failed:
            self.notify(
                "\n".join(failed[:5]),
                title="Some matches could not be accepted",
                severity="error",
                timeout=10,
            )
            self.reload()
