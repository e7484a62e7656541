"""A digest as an email: subject, plain text, HTML and a stable Message-ID (docs/behaviour.md, Notifications).

Rendered once, when the digest is written to the outbox, so every delivery attempt sends
the same bytes. Stored names are client text: they are kept to one line in headers and
plain text (a line break there could forge headers) and escaped in the HTML.
"""

from __future__ import annotations

import email.policy
import email.utils
import html
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from urllib.parse import urlparse

from server.domain.models import PendingReason
from server.domain.ports import DigestSettings

_REASONS = {
    PendingReason.OVER_LIMIT: "no license free",
    PendingReason.MANUAL_REVIEW: "manual review",
    PendingReason.RELEASED: "license released",
}

# The digest counts licensed users idle this long (docs/behaviour.md, Automation and reclaim).
INACTIVE_DAYS = 14

# CRLF line ends, and 7-bit clean bodies (quoted-printable for non-ASCII names), so the
# message goes through any SMTP server, with or without 8BITMIME.
_POLICY = email.policy.SMTP.clone(cte_type="7bit")


@dataclass(frozen=True, slots=True)
class DigestEntry:
    display_name: str
    device_name: str
    logon: str
    reason: PendingReason


@dataclass(frozen=True, slots=True)
class Digest:
    """Everything one digest email says."""

    account_id: int
    account_name: str
    admin_id: int
    admin_name: str
    admin_email: str
    first_arrival_id: int
    last_arrival_id: int
    window_start: datetime
    window_end: datetime
    total: int
    entries: list[DigestEntry]
    licenses_used: int
    license_limit: int
    pending_count: int
    link: str
    # Licensed users with no activity for INACTIVE_DAYS or more (reclaim candidates).
    inactive_licensed: int = 0
    #: Other news for admins, one line each (a webhook the server disabled).
    notices: list[str] = field(default_factory=list)

    @property
    def licenses_available(self) -> int:
        return max(self.license_limit - self.licenses_used, 0)


def _one_line(text: str) -> str:
    # Names reach mail headers and plain text; a line break there could forge headers.
    return "".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in text).strip()


def message_id(settings: DigestSettings, account_id: int, admin_id: int, first_id: int, last_id: int) -> str:
    """Derived from (account, admin, window), so a redelivery carries the same id."""
    host = urlparse(settings.public_url).hostname or "localhost"
    return f"<plm-digest.{account_id}.{admin_id}.{first_id}-{last_id}@{host}>"


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def render_digest(digest: Digest, settings: DigestSettings, now: datetime) -> EmailMessage:
    """The digest as a multipart/alternative email (plain text and HTML)."""
    account = _one_line(digest.account_name)
    entered = _plural(digest.total, "user entered", "users entered")
    subject = f"{entered} the Pending Licenses queue of {account}"
    window = f"between {digest.window_start:%Y-%m-%d %H:%M:%S} and {digest.window_end:%H:%M:%S} UTC"
    more = digest.total - len(digest.entries)
    usage = (
        f"Licenses: {digest.licenses_used} of {digest.license_limit} used, "
        f"{digest.licenses_available} available. "
        f"{_plural(digest.pending_count, 'user is', 'users are')} waiting in the queue."
    )
    idle = (
        f"{_plural(digest.inactive_licensed, 'licensed user has', 'licensed users have')} had no activity "
        f"for {INACTIVE_DAYS} days or more: releasing their licenses would free seats for the queue."
        if digest.inactive_licensed
        else ""
    )
    why = (
        f"You receive this because you are an admin of {account} with pending-user "
        "notifications on; you can turn them off in your notification settings."
    )

    lines = [f"Hello {_one_line(digest.admin_name)},", ""]
    lines += [f"{entered} the Pending Licenses queue {window}:", ""]
    for e in digest.entries:
        lines.append(
            f"  - {_one_line(e.display_name)} ({_one_line(e.logon)} on {_one_line(e.device_name)})"
            f": {_REASONS[e.reason]}"
        )
    if more > 0:
        lines.append(f"  … and {more} more.")
    lines += ["", usage, *(["", idle] if idle else []), "", f"Review them: {digest.link}"]
    lines += [line for n in digest.notices for line in ("", _one_line(n))]
    lines += ["", "-- ", why]
    text = "\n".join(lines) + "\n"

    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(e.display_name)}</td><td>{esc(e.device_name)}</td>"
        f"<td>{esc(e.logon)}</td><td>{esc(_REASONS[e.reason])}</td></tr>"
        for e in digest.entries
    )
    more_html = f"<p>… and {more} more.</p>" if more > 0 else ""
    notices_html = "".join(f"<p>{esc(_one_line(n))}</p>" for n in digest.notices)
    body_html = (
        "<!doctype html><html><body>"
        f"<p>Hello {esc(_one_line(digest.admin_name))},</p>"
        f"<p><strong>{esc(entered)}</strong> the Pending Licenses queue {esc(window)}:</p>"
        "<table><thead><tr><th align=left>Name</th><th align=left>Device</th>"
        "<th align=left>Logon</th><th align=left>Reason</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>{more_html}"
        f"<p>{esc(usage)}</p>"
        + (f"<p>{esc(idle)}</p>" if idle else "")
        + f'<p><a href="{esc(digest.link, quote=True)}">Review them on the Pending Licenses tab</a></p>'
        f"{notices_html}<hr><p><small>{esc(why)}</small></p>"
        "</body></html>\n"
    )

    msg = EmailMessage(policy=_POLICY)
    msg["Subject"] = subject
    msg["From"] = settings.smtp_from
    msg["To"] = email.utils.formataddr((_one_line(digest.admin_name), digest.admin_email))
    msg["Date"] = email.utils.format_datetime(now.astimezone(UTC))
    msg["Message-ID"] = message_id(
        settings, digest.account_id, digest.admin_id, digest.first_arrival_id, digest.last_arrival_id
    )
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(text)
    msg.add_alternative(body_html, subtype="html")
    return msg


# ---------------------------------------------------------------------------- reminders


@dataclass(frozen=True, slots=True)
class ReminderEntry:
    display_name: str
    # When it became overdue, or when its retained activity starts to expire.
    at: datetime


@dataclass(frozen=True, slots=True)
class Reminder:
    """Everything one daily reminder says (server.domain.notifications.reminders)."""

    account_id: int
    account_name: str
    admin_id: int
    admin_name: str
    admin_email: str
    overdue: list[ReminderEntry]
    overdue_total: int
    expiring: list[ReminderEntry]
    expiring_total: int
    target_hours: int | None
    link: str


def reminder_id(settings: DigestSettings, account_id: int, admin_id: int, now: datetime) -> str:
    """One per admin and UTC day: a second writer that day inserts nothing."""
    host = urlparse(settings.public_url).hostname or "localhost"
    return f"<plm-reminder.{account_id}.{admin_id}.{now.astimezone(UTC):%Y-%m-%d}@{host}>"


def _section(title: str, entries: list[ReminderEntry], total: int, label: str) -> tuple[list[str], str]:
    if not total:
        return [], ""
    lines = [title, ""]
    lines += [f"  - {_one_line(e.display_name)}: {label} {e.at:%Y-%m-%d %H:%M} UTC" for e in entries]
    if total > len(entries):
        lines.append(f"  … and {total - len(entries)} more.")
    esc = html.escape
    items = "".join(
        f"<li>{esc(e.display_name)}: {esc(label)} {e.at:%Y-%m-%d %H:%M} UTC</li>" for e in entries
    )
    more = f"<li>… and {total - len(entries)} more.</li>" if total > len(entries) else ""
    return [*lines, ""], f"<p><strong>{esc(title)}</strong></p><ul>{items}{more}</ul>"


def render_reminder(reminder: Reminder, settings: DigestSettings, now: datetime) -> EmailMessage:
    """The daily reminder as a multipart/alternative email (plain text and HTML)."""
    account = _one_line(reminder.account_name)
    parts = []
    if reminder.overdue_total:
        parts.append(_plural(reminder.overdue_total, "overdue pending user", "overdue pending users"))
    if reminder.expiring_total:
        parts.append(
            _plural(reminder.expiring_total, "user's activity expires soon", "users' activity expires soon")
        )
    subject = f"{account}: {' and '.join(parts)}"
    target = f"{reminder.target_hours} h" if reminder.target_hours else ""
    overdue_lines, overdue_html = _section(
        f"Waiting longer than the queue target ({target}):",
        reminder.overdue,
        reminder.overdue_total,
        "overdue since",
    )
    expiring_lines, expiring_html = _section(
        "Decide before their activity is deleted (the retention window):",
        reminder.expiring,
        reminder.expiring_total,
        "activity starts to expire at",
    )
    why = (
        f"You receive this at most once a day because you are an admin of {account} with "
        "pending-user notifications on; you can turn them off in your notification settings."
    )
    lines = [f"Hello {_one_line(reminder.admin_name)},", "", *overdue_lines, *expiring_lines]
    lines += [f"Review them: {reminder.link}", "", "-- ", why]
    esc = html.escape
    body_html = (
        "<!doctype html><html><body>"
        f"<p>Hello {esc(_one_line(reminder.admin_name))},</p>{overdue_html}{expiring_html}"
        f'<p><a href="{esc(reminder.link, quote=True)}">Review them on the Pending Licenses tab</a></p>'
        f"<hr><p><small>{esc(why)}</small></p></body></html>\n"
    )
    msg = EmailMessage(policy=_POLICY)
    msg["Subject"] = subject
    msg["From"] = settings.smtp_from
    msg["To"] = email.utils.formataddr((_one_line(reminder.admin_name), reminder.admin_email))
    msg["Date"] = email.utils.format_datetime(now.astimezone(UTC))
    msg["Message-ID"] = reminder_id(settings, reminder.account_id, reminder.admin_id, now)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content("\n".join(lines) + "\n")
    msg.add_alternative(body_html, subtype="html")
    return msg
