"""The Reclaim tab: licensed users idle for a while, and taking their seats back.

``inactiveUsers(days)`` lists licensed users with no activity in the last ``days`` days, idle
longest first (never active first of all), paged in like every list, with the detail pane
beside it. ``r`` releases the row or the selection to the queue (``releaseLicenses``) after
a question that names them and the usage after; ``s`` swaps the row's license to a pending
user picked from the queue (``swapLicense``: one transaction, usage unchanged), after a
question showing who goes to the queue and who gets the license. A refusal (``CONFLICT``,
``NOT_PENDING``, ``NOT_FOUND``) changed nothing: the admin reads why, and the list is read again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from datetime import tzinfo

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Static

from tui_client import format as fmt
from tui_client import safe
from tui_client.actions import AdminAction
from tui_client.api import MAX_IDS, ActionResult, ApiError
from tui_client.columns import Col
from tui_client.messages import AccountChanged
from tui_client.reclaim_list import ReclaimList
from tui_client.screens.confirm import ConfirmScreen
from tui_client.screens.pickers import PendingPicker
from tui_client.screens.plan import listed
from tui_client.screens.user_list import UserListView
from tui_client.types import Account, AutoApproveMode, Page, QueueAction, User, UserRef
from tui_client.undo import OFFER_SECONDS
from tui_client.widgets.detail_pane import DetailPane
from tui_client.widgets.paged_table import PagedTable

RELEASED = (
    "They wait in the queue (reason released) with all their history, and can be approved "
    "again; a report from them keeps them there."
)
RULE_ON = (
    "The auto-approval rule is on: it gives the freed licenses to the oldest users waiting "
    "(never back to these)."
)
SWAPPED = (
    "One transaction: the seat goes to no one else in between, and the account never goes over its limit."
)


def _refs(users: Sequence[User]) -> tuple[UserRef, ...]:
    return tuple(UserRef(id=u.id, display_name=u.display_name) for u in users)


def idle_since(user: User, tz: tzinfo | None) -> str:
    """When the user was last active: a time, or "never"."""
    return "never" if user.last_activity_at is None else fmt.when(user.last_activity_at, tz)


def release_plan(users: Sequence[User], account: Account | None) -> Content:
    """What releasing ``users`` does: usage before and after, who goes, what follows."""
    lines = []
    if account is not None:
        after = max(0, account.licenses_used - len(users))
        lines.append(
            safe.styled(
                "Licenses used: ",
                (f"{account.licenses_used:,}", "b"),
                " → ",
                (f"{after:,}", "b"),
                f" of {account.license_limit:,}",
            )
        )
    lines += listed("Released to the queue", _refs(users))
    lines += [Content(""), Content(RELEASED)]
    if account is not None and account.auto_approve is AutoApproveMode.OLDEST_FIRST:
        lines.append(Content(RULE_ON))
    return Content("\n").join(lines)


def swap_plan(release: User, approve: User, account: Account | None, tz: tzinfo | None) -> Content:
    """What swapping does: usage unchanged, who goes to the queue, who gets the license."""
    lines = []
    if account is not None:
        used = f"{account.licenses_used:,}"
        lines.append(
            safe.styled(
                "Licenses used: ",
                (used, "b"),
                " → ",
                (used, "b"),
                f" of {account.license_limit:,} (unchanged)",
            )
        )
    p = approve.pending
    waiting = f"{fmt.reason(p.reason)}, waiting since {fmt.when(p.entered_at, tz)}" if p else "pending"
    lines += [
        Content(""),
        safe.styled(("To the queue (released): ", "b"), release.display_name),
        safe.styled(("  last active ", "dim"), (idle_since(release, tz), "dim")),
        safe.styled(("Gets the license: ", "b"), approve.display_name),
        safe.styled(("  ", "dim"), (waiting, "dim")),
        Content(""),
        Content(SWAPPED),
    ]
    return Content("\n").join(lines)


class ReclaimView(UserListView):
    BINDINGS = [
        Binding("space", "toggle_select", "Select"),
        Binding("r", AdminAction.RELEASE, "Release"),
        Binding("s", AdminAction.SWAP, "Swap"),
        Binding("d", "cycle_days", "Days"),
        Binding("ctrl+a", "select_all", "Select all", show=False),
        Binding("escape", "clear", "Clear", show=False),
    ]
    COLUMNS = [
        Col("sel", " ", None, keep=100),
        Col("name", "Name", None, keep=90, max=40),
        Col("idle", "Last active", None, keep=85),
        Col("logon", "Logon", 12, keep=60),
        Col("devices", "Devices", 10, keep=40, max=40),
        Col("suggestion", "Likely match", 14, keep=70),
        Col("licensed", "Licensed since", None, keep=30),
    ]
    FAILURE = "Could not load the idle users"
    STATUS = "#reclaim-info"
    WAITING = "Loading the idle users…"

    def __init__(
        self,
        page_size: int = 100,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        idle = ReclaimList()
        super().__init__(page_size, model=idle, name=name, id=id, classes=classes)
        self.idle = idle

    def compose(self) -> ComposeResult:
        with Horizontal(classes="list-and-detail"):
            yield PagedTable(id="reclaim-table", cursor_type="row", zebra_stripes=True)
            yield DetailPane(id="reclaim-detail")
        yield Static(self.WAITING, id="reclaim-info", classes="status-line")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if AdminAction.named(action) is not None and not self.admin_app.can_act:
            return None  # shown dimmed: a VIEWER may read but not act
        return True

    # ------------------------------------------------------------------ the list

    async def fetch(self, first: int, after: str | None) -> Page[User]:
        return await self.api.inactive_users(self.idle.days, first, after)

    def row(self, item: User, tz: tzinfo | None) -> Sequence[object]:
        first = item.agents[0] if item.agents else None
        devices = ", ".join(sorted({a.device_name for a in item.agents}))
        return (
            self._mark(item.id),
            item.display_name,
            idle_since(item, tz),
            first.logon if first else "—",
            devices or "—",
            fmt.match(item.suggestions[0] if item.suggestions else None),
            fmt.when(item.licensed_at, tz),
        )

    def _mark(self, user_id: str) -> Text | str:
        return Text("✓", style="bold") if user_id in self.idle.selected else " "

    def status_line(self) -> str | Content:
        idle = self.idle
        if not idle.rows:
            return f"No licensed user has been idle for {idle.days} days or more · d changes the days"
        parts: list[str | tuple[str, str]] = [
            f"Showing {len(idle.rows):,} of {idle.total:,} licensed users idle for {idle.days}+ days, "
            "longest first"
        ]
        if idle.selected:
            parts += [" · ", (f"{len(idle.selected):,} selected", "b")]
        return safe.styled(*parts)

    def redraw(self) -> None:
        """Every row again, the cursor kept on its user."""
        keep = self.table.cursor_key()
        super().redraw()
        if keep is not None and keep in self.idle.rows:
            self.table.move_cursor(row=self.table.get_row_index(keep), animate=False)

    # ------------------------------------------------------------------ selection and days

    def _marked(self, ids: list[str]) -> None:
        for uid in ids:
            self.table.update_cell(uid, "sel", self._mark(uid))
        self.show_status()

    def action_toggle_select(self) -> None:
        uid = self.table.cursor_key()
        if uid is None:
            return
        self.idle.toggle(uid)
        self._marked([uid])
        if self.table.cursor_row < self.table.row_count - 1:
            self.table.move_cursor(row=self.table.cursor_row + 1)

    def action_select_all(self) -> None:
        self._marked(self.idle.select_all())

    def action_clear(self) -> None:
        self._marked(self.idle.clear_selection())

    def action_cycle_days(self) -> None:
        days = self.idle.cycle_days()
        self.idle.selected.clear()
        self.reload()
        self.notify(f"Licensed users idle for {days} days or more", timeout=2)

    # ------------------------------------------------------------------ release

    def _targets(self) -> list[User]:
        users = self.idle.targets(self.table.cursor_key())
        if not users:
            self.notify("No idle licensed user here: nothing to act on.", severity="warning")
        return users

    def action_release(self) -> None:
        users = self._targets()
        if not users:
            return
        if len(users) > MAX_IDS:
            self.notify(f"Release at most {MAX_IDS} users at once.", severity="warning")
            return
        one = len(users) == 1
        names = users[0].display_name if one else fmt.plural(len(users), "user")
        title = f"Release {names}'s license?" if one else f"Release the licenses of {names}?"

        def answered(yes: bool | None) -> None:
            if yes:
                call = self.api.release([u.id for u in users])
                self._act(f"Released {names}.", "Release refused", call, undo=f"the release of {names}")

        body = release_plan(users, self.admin_app.account)
        self.app.push_screen(ConfirmScreen(title, body, "Release"), answered)

    # ------------------------------------------------------------------ swap

    def action_swap(self) -> None:
        users = self._targets()
        if not users:
            return
        if len(users) > 1:
            self.notify(
                "A swap gives one user's license; press esc to clear the selection.", severity="warning"
            )
            return
        release = users[0]
        picker = PendingPicker(self.api, release)

        def picked(choice: tuple[str, str] | None) -> None:
            if choice is None or choice[0] not in picker.users:
                return
            self._confirm_swap(release, picker.users[choice[0]])

        self.app.push_screen(picker, picked)

    def _confirm_swap(self, release: User, approve: User) -> None:
        given, taken = approve.display_name, release.display_name
        # Undone from the Audit log: a swap is two entries (released, approved), u offers one.
        done = f"{given} has {taken}'s license; {taken} waits in the queue. The Audit log (3) can undo it."

        def answered(yes: bool | None) -> None:
            if yes:
                self._act(done, "Swap refused", self.api.swap(release.id, approve.id))

        body = swap_plan(release, approve, self.admin_app.account, self.admin_app.tz)
        title = f"Give {release.display_name}'s license to {approve.display_name}?"
        self.app.push_screen(ConfirmScreen(title, body, "Swap"), answered)

    # ------------------------------------------------------------------ the round trip

    @work(group="reclaim-action", exit_on_error=False)
    async def _act(self, done: str, refused: str, call: Awaitable[ActionResult], *, undo: str = "") -> None:
        """One mutation: done, the admin is told with the usage after (and, for a release, that
        ``u`` undoes it); refused, why (nothing changed). Either way the list is read again."""
        self.show_status("Working…")
        try:
            result = await call
        except ApiError as exc:
            self.fail(f"{refused}: nothing changed", exc)
            self.refresh_data()
            return
        a = result.account
        self.post_message(AccountChanged(a))
        self.idle.selected.clear()
        self.refresh_data()
        offer = ""
        if undo:
            offer = " " + self.admin_app.offer_undo(QueueAction.RELEASED, result.user_ids, undo)
        usage = f"Licenses: {a.licenses_used:,}/{a.license_limit:,} used, {a.licenses_available:,} available."
        self.notify(
            f"{done} {usage}{offer}",
            title="Done",
            timeout=OFFER_SECONDS if undo else None,
        )
