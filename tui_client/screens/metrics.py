"""The Queue metrics tab: how long people wait and how they leave the queue."""

from __future__ import annotations

from dataclasses import dataclass

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Static

from tui_client import format as fmt
from tui_client.api import ApiError
from tui_client.screens.base import ApiView
from tui_client.types import QueueAction, QueueMetrics

PERIODS = [7, 30, 90, 365]
BAR = 40


@dataclass
class MetricsLoaded(Message):
    metrics: QueueMetrics


class MetricsView(ApiView):
    BINDINGS = [Binding("d", "cycle_days", "Period")]

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.days = 30
        self.stale = True

    def compose(self) -> ComposeResult:
        yield Static("Loading…", id="metrics-body")

    def refresh_data(self) -> None:
        self._fetch(self.days)

    @work(exclusive=True, group="metrics", exit_on_error=False)
    async def _fetch(self, days: int) -> None:
        try:
            metrics = await self.api.queue_metrics(days)
        except ApiError as exc:
            self.fail("Could not load queue metrics", exc)
            return
        self.post_message(MetricsLoaded(metrics))

    def on_metrics_loaded(self, message: MetricsLoaded) -> None:
        m = message.metrics
        tz = self.admin_app.tz
        lines = [
            f"[b]Queue metrics[/] — last {m.days} days   (press [b]d[/] to change the period)",
            "",
            f"  Pending now              [b]{m.pending_count:,}[/]",
            f"  Oldest waiting since     {fmt.when(m.oldest_pending_since, tz)}",
            f"  Resolved in the period   [b]{m.resolved_count:,}[/]",
            f"  Average time to resolve  {fmt.duration(m.average_resolution_seconds)}",
            f"  Median time to resolve   {fmt.duration(m.median_resolution_seconds)}",
            f"  90th percentile          {fmt.duration(m.p90_resolution_seconds)}",
            f"  Within the queue target  {self._within(m)}",
            f"  Overdue now              [b]{m.overdue_count:,}[/]",
            "",
            "  [b]How users left the queue[/]",
        ]
        top = max((r.count for r in m.resolved_by_action), default=0)
        for action in (QueueAction.APPROVED, QueueAction.ASSIGNED, QueueAction.MERGED, QueueAction.REMOVED):
            n = m.resolved(action)
            bar = "█" * (round(BAR * n / top) if top else 0)
            lines.append(f"  {fmt.action(action):<10} {n:>6,}  [$accent]{bar}[/]")
        self.query_one("#metrics-body", Static).update("\n".join(lines))

    def _within(self, m: QueueMetrics) -> str:
        """The share resolved within the target, and the target ("no target" without one)."""
        account = self.admin_app.account
        hours = account.queue_target_hours if account is not None else None
        if hours is None:
            return "no target (set one in 7 Settings)"
        share = "—" if m.within_target_ratio is None else f"{m.within_target_ratio:.0%}"
        return f"{share} (target {fmt.target(hours)})"

    def action_cycle_days(self) -> None:
        self.days = PERIODS[(PERIODS.index(self.days) + 1) % len(PERIODS)]
        self.refresh_data()
