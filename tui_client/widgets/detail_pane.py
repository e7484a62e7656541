"""The detail pane: everything about the user under the cursor, to decide with the data in sight.

Its agents, its likely matches with the server's reasons, its retained activity as a daily
bar chart with dates, its top apps and productivity, when it was last active and when its
data expires. Read for that one user (``PlmApi.user_detail``), a moment after the cursor
stops moving, never for every row of a list. It is open on wide terminals and toggled with
enter; what it shows is plain text (:mod:`tui_client.safe`).
"""

from __future__ import annotations

import asyncio
from datetime import tzinfo
from typing import cast

from textual import work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from tui_client import chart, safe
from tui_client import format as fmt
from tui_client.api import ApiError
from tui_client.screens.base import ClientApp
from tui_client.types import ActivitySummary, User, UserDetail, UserStatus

WIDE = 160  # columns from which the pane is open without asking
CHART_HEIGHT = 4
MAX_DAYS = 90  # the most User.activity serves
DEFAULT_DAYS = 30


def heading(user: User | UserDetail, tz: tzinfo | None) -> list[Content]:
    """The name and where the user stands: known from the list's row before the read answers."""
    lines = [safe.styled((user.display_name, "b"))]
    p = user.pending
    if user.status is UserStatus.LICENSED:
        lines.append(Content(f"licensed since {fmt.when(user.licensed_at, tz)}"))
    elif p is not None:
        lines.append(
            Content(f"pending · {fmt.reason(p.reason)} · waiting since {fmt.when(p.entered_at, tz)}")
        )
    return lines


def describe(detail: UserDetail, tz: tzinfo | None, width: int) -> Content:
    """The whole pane for one user, ``width`` columns wide."""
    lines = heading(detail, tz)
    lines.append(Content(f"Last activity  {fmt.when(detail.last_activity_at, tz)}"))
    if detail.pending is not None:
        lines.append(Content(f"Data expires   {fmt.when(detail.pending.data_expires_at, tz)}"))
        if detail.pending.due_at is not None:
            due = Content(f"Due            {fmt.when(detail.pending.due_at, tz)}")
            lines.append(due + Content.styled("  overdue", "b $error") if detail.pending.overdue else due)

    lines += [Content(""), safe.styled((f"Agents ({len(detail.agents)})", "b $accent"))]
    for a in detail.agents:
        lines.append(safe.plain(f"  {a.logon} on {a.device_name}"))
        lines.append(Content.styled(f"    last seen {fmt.when(a.last_seen_at, tz)}", "dim"))

    lines += [Content(""), safe.styled(("Likely matches", "b $accent"))]
    if not detail.suggestions:
        lines.append(Content("  none: this looks like a new person" if detail.pending else "  none"))
    for s in detail.suggestions:
        lines.append(safe.styled("  ", (f"{s.kind.title()} ", "b"), s.target, "  ", (f"{s.score:.0%}", "b")))
        if s.user is not None and s.user.where:
            lines.append(safe.styled(("    ", "dim"), (s.user.where, "dim")))
        lines += [safe.styled(("    · ", "dim"), (reason, "dim")) for reason in s.reasons]

    lines.append(Content(""))
    lines += _activity(detail.activity, retained=detail.pending is not None, width=width)
    return Content("\n").join(lines)


def _activity(a: ActivitySummary, *, retained: bool, width: int) -> list[Content]:
    what = "Retained activity" if retained else "Activity"
    lines = [safe.styled((f"{what}, last {a.days} days", "b $accent"))]
    values = chart.resample([d.active_seconds for d in a.daily], width)
    if a.daily:
        bar_width = 2 if len(values) * 2 <= width else 1
        lines += [Content.styled(line, "$accent") for line in chart.bars(values, CHART_HEIGHT, bar_width)]
        lines.append(Content(chart.axis(a.daily[0].date, a.daily[-1].date, len(values) * bar_width)))
    if not a.active_seconds:
        lines.append(Content("No activity in these days."))
        return lines
    busiest = max(values, default=0)
    per = "a day" if len(values) == len(a.daily) else "a column"
    lines.append(Content(f"Most {per}: {fmt.duration(busiest)}"))
    lines += [Content(""), Content(f"Active {fmt.duration(a.active_seconds)}")]
    for label, seconds in (
        ("productive", a.productive_seconds),
        ("unproductive", a.unproductive_seconds),
        ("neutral", a.neutral_seconds),
    ):
        share = seconds / a.active_seconds
        lines.append(Content(f"  {label:<13}{fmt.duration(seconds):>8}  {share:>4.0%}"))
    if a.top_apps:
        lines += [Content(""), safe.styled(("Top apps", "b $accent"))]
        longest = max(len(app.app) for app in a.top_apps)
        name_width = max(8, min(longest, width - 12))
        for app in a.top_apps:
            name = app.app if len(app.app) <= name_width else app.app[: name_width - 1] + "…"
            lines.append(safe.plain(f"  {name:<{name_width}}{fmt.duration(app.active_seconds):>9}"))
    return lines


class DetailPane(VerticalScroll, can_focus=False):
    """Follows a list's cursor (:meth:`follow`); the list tells it when that row changed."""

    #: Seconds the cursor must rest on a row before it is read.
    DELAY = 0.25

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="detail-pane")
        self.user: User | None = None
        #: The admin's choice (enter); None: open on wide terminals.
        self.choice: bool | None = None
        #: What the pane shows now, once read.
        self.detail: UserDetail | None = None
        self._stale = True

    def compose(self) -> ComposeResult:
        yield Static("", classes="detail-body")

    def on_mount(self) -> None:
        self.fit()

    @property
    def wanted(self) -> bool:
        return self.choice if self.choice is not None else self.app.size.width >= WIDE

    def fit(self) -> None:
        """Open or close as the terminal's width and the admin's choice say."""
        self.display = self.wanted
        if self.display and self._stale:
            self.load()

    def toggle(self) -> None:
        self.choice = not self.display
        self.fit()

    def follow(self, user: User | None) -> None:
        """The cursor is on ``user`` (None: on no row)."""
        same = user is not None and self.user is not None and user.id == self.user.id
        self.user = user
        if not same:
            self.load()

    def load(self) -> None:
        """Read the user under the cursor again (soon, and only while open)."""
        self._stale = True
        if not self.display:
            return
        body = self.query_one(".detail-body", Static)
        tz = cast(ClientApp, self.app).tz
        if self.user is None:
            self.detail = None
            body.update("Nobody to show.")
            return
        if self.detail is None or self.detail.id != self.user.id:
            body.update(Content("\n").join([*heading(self.user, tz), Content(""), Content("Loading…")]))
        self._stale = False
        self._read(self.user.id)

    @work(exclusive=True, group="detail", exit_on_error=False)
    async def _read(self, user_id: str) -> None:
        await asyncio.sleep(self.DELAY)
        client = cast(ClientApp, self.app)
        account = client.account
        days = min(MAX_DAYS, account.retention_days) if account is not None else DEFAULT_DAYS
        body = self.query_one(".detail-body", Static)
        try:
            detail = await client.api.user_detail(user_id, max(1, days))
        except ApiError as exc:
            self._stale = True
            body.update(safe.plain(f"Could not load the details: {exc.message}"))
            return
        if self.user is None or self.user.id != user_id:
            return  # the cursor moved on meanwhile; its own read follows
        self.detail = detail
        if detail is None:
            body.update("This user is no longer here.")
            return
        body.update(describe(detail, client.tz, max(20, self.scrollable_content_region.width - 1)))
