"""Text for cells and labels: times, durations, counts."""

from __future__ import annotations

from datetime import datetime, tzinfo

REASONS = {"OVER_LIMIT": "over limit", "MANUAL_REVIEW": "manual review"}
ACTIONS = {
    "ENTERED": "entered",
    "APPROVED": "approved",
    "ASSIGNED": "assigned",
    "MERGED": "merged",
    "REMOVED": "removed",
}


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
