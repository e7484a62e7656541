"""What a webhook delivery says: the Standard Webhooks body of a queue event, and its Slack form.

The body is built once, in the event's transaction, and stored with the delivery, so every
attempt sends the same bytes (and a retry the same signature input)::

    {"type": "pending_queue.approved", "timestamp": "2026-11-26T09:00:00Z",
     "data": {"action": "APPROVED", "userId": "42", "at": "2026-11-26T09:00:00Z",
              "user": {"id": "42", "displayName": "Jane Doe", "status": "LICENSED"} | null,
              "account": {"id": "1", "licenseLimit": 25, "licensesUsed": 25, "pendingCount": 3},
              "actor": {"id": "7", "email": "ann@acme.example"} | null,
              "target": {"id": "40", "displayName": "John Doe"} | null}}

The data are the live event's fields (``pendingQueueChanged``), ids as the API's strings.
A SLACK endpoint gets :func:`slack_message` of the same body, rendered when it is sent.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from server.domain.events import AccountUsage, QueueEvent

TYPE_PREFIX = "pending_queue."
TEST_TYPE = TYPE_PREFIX + "test"


def event_type(action: str) -> str:
    return TYPE_PREFIX + action.lower()


def iso(at: datetime) -> str:
    """UTC, ISO 8601 with a ``Z``, to the millisecond."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def dumps(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def _account(usage: AccountUsage) -> dict[str, Any]:
    return {
        "id": str(usage.account_id),
        "licenseLimit": usage.license_limit,
        "licensesUsed": usage.licenses_used,
        "pendingCount": usage.pending_count,
    }


def event_body(
    event: QueueEvent,
    user: tuple[str, str] | None,
    actor_email: str | None,
    target_name: str | None,
) -> dict[str, Any]:
    """The body of ``event``; ``user`` is (display name, status) when the user still exists."""
    return {
        "type": event_type(event.action.value),
        "timestamp": iso(event.at),
        "data": {
            "action": event.action.value,
            "userId": str(event.user_id),
            "at": iso(event.at),
            "user": None
            if user is None
            else {"id": str(event.user_id), "displayName": user[0], "status": user[1]},
            "account": _account(event.usage),
            "actor": None
            if event.actor_id is None
            else {"id": str(event.actor_id), "email": actor_email or ""},
            "target": None
            if event.target_user_id is None
            else {"id": str(event.target_user_id), "displayName": target_name or ""},
        },
    }


def body_of_test(
    webhook_id: int, usage: AccountUsage, actor_id: int | None, actor_email: str | None, at: datetime
) -> dict[str, Any]:
    """The body of a ``sendTestWebhook`` delivery: the event's shape, with no user."""
    return {
        "type": TEST_TYPE,
        "timestamp": iso(at),
        "data": {
            "action": None,
            "userId": None,
            "at": iso(at),
            "user": None,
            "account": _account(usage),
            "actor": None if actor_id is None else {"id": str(actor_id), "email": actor_email or ""},
            "target": None,
            "webhookId": str(webhook_id),
            "message": "A test delivery from Pending License Management.",
        },
    }


# ---------------------------------------------------------------------------- Slack

_VERBS = {
    "ENTERED": "entered the Pending Licenses queue",
    "APPROVED": "was approved and now holds a license",
    "ASSIGNED": "was assigned to",
    "MERGED": "was merged into",
    "REMOVED": "was removed",
    "RELEASED": "gave back its license and waits in the queue",
    "UNDONE": "had an action undone",
}


def _slack_text(text: str) -> str:
    """Stored names as plain text in Slack's mrkdwn: its three control characters escaped,
    and on one line."""
    one_line = "".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in text).strip()
    return one_line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(body: dict[str, Any], link: str) -> dict[str, Any]:
    """A Slack incoming-webhook message (``text`` for notifications, ``blocks`` to read)."""
    data = body["data"]
    account = data["account"]
    actor = data.get("actor")
    if body["type"] == TEST_TYPE:
        headline = "Test message from Pending License Management: this webhook works."
    else:
        user = data.get("user")
        who = _slack_text(user["displayName"]) if user else f"User {data['userId']}"
        action = data["action"]
        headline = f"{who} {_VERBS.get(action, action.lower())}"
        target = data.get("target")
        if target is not None:
            headline += f" {_slack_text(target['displayName'])}"
        headline += "."
    by = f" by {_slack_text(actor['email'])}" if actor else ""
    usage = (
        f"Licenses: {account['licensesUsed']} of {account['licenseLimit']} used · "
        f"{account['pendingCount']} pending"
    )
    return {
        "text": f"{headline} {usage}.",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{headline}*"}},
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": f"{usage} · {data['at']}{by} · <{link}|Pending Licenses>"}
                ],
            },
        ],
    }
