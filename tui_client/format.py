"""Text for cells and labels: the API's words, times, durations, counts."""

from __future__ import annotations

from datetime import datetime, tzinfo

from tui_client.types import AutoApproveMode, PendingReason, QueueAction, Suggestion, UserStatus

# The one table of each kind of label: every place that shows a reason, an action or a
# status reads it here. A value the client does not know shows as the server sent it.
REASONS = {
    PendingReason.OVER_LIMIT: "over limit",
    PendingReason.MANUAL_REVIEW: "manual review",
    PendingReason.RELEASED: "released",
}
ACTIONS = {
    QueueAction.ENTERED: "entered",
    QueueAction.APPROVED: "approved",
    QueueAction.ASSIGNED: "assigned",
    QueueAction.MERGED: "merged",
    QueueAction.REMOVED: "removed",
    QueueAction.RELEASED: "released",
    QueueAction.UNDONE: "undone",
}
AUTO_APPROVE = {AutoApproveMode.OFF: "off", AutoApproveMode.OLDEST_FIRST: "oldest first"}


def reason(value: PendingReason) -> str:
    """Why a user waits: "over limit", "manual review"."""
    return REASONS.get(value, value)


def action(value: QueueAction) -> str:
    """How a user entered or left the queue: "entered", "approved", ..."""
    return ACTIONS.get(value, value)


def auto_approve(mode: AutoApproveMode) -> str:
    """The auto-approval rule: "off", "oldest first"."""
    return AUTO_APPROVE.get(mode, mode)


def on_off(value: bool) -> str:
    return "on" if value else "off"


def domains(values: tuple[str, ...]) -> str:
    """The rule's domains: "acme, corp.example", or "any" when the list is empty."""
    return ", ".join(values) if values else "any"


def target(hours: int | None) -> str:
    """The queue target: "24 hours", or "none"."""
    return "none" if not hours else plural(hours, "hour")


def status(value: UserStatus) -> str:
    """A user's status in a list: "licensed", else "pending"."""
    return "licensed" if value is UserStatus.LICENSED else "pending"


def match(s: Suggestion | None) -> str:
    """A likely match in a list: "Assign Ada Lovelace 98%", or '—' when there is none."""
    return "—" if s is None else f"{s.kind.title()} {s.target_name} {s.score:.0%}"


def when(dt: datetime | None, tz: tzinfo | None) -> str:
    """A timestamp in the client's zone (or ``tz``), to the minute; '—' when missing."""
    if dt is None:
        return "—"
    return dt.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def short(dt: datetime | None, tz: tzinfo | None) -> str:
    """A timestamp for a narrow column: month, day and minute."""
    if dt is None:
        return "—"
    return dt.astimezone(tz).strftime("%b %d %H:%M")


def day(dt: datetime | None, tz: tzinfo | None) -> str:
    """A date for the narrowest column: month and day."""
    if dt is None:
        return "—"
    return dt.astimezone(tz).strftime("%b %d")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    minutes, s = divmod(s, 60)
    if minutes < 60:
        return f"{minutes}m {s:02d}s" if s else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"
