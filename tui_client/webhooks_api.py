"""The webhook part of the API, for the Webhooks tab: its documents, typed answers and calls.

Kept beside :mod:`tui_client.api` (whose :class:`PlmApi` sends every request) so the tab is
one feature in its own modules. The documents are validated against ``schema.graphql`` by
``tests/tui/test_webhooks.py`` (``ALL``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tui_client.api import PlmApi
from tui_client.parsing import parse, parse_page
from tui_client.types import OpenEnum, Page, QueueAction


class WebhookFormat(OpenEnum):
    STANDARD = "STANDARD"
    SLACK = "SLACK"


class DeliveryStatus(OpenEnum):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"


@dataclass(frozen=True, kw_only=True)
class WebhookDelivery:
    id: str
    action: QueueAction | None = None
    user_id: str | None = None
    status: DeliveryStatus
    attempts: int
    last_response_code: int | None = None
    last_error: str | None = None
    created_at: datetime
    delivered_at: datetime | None = None
    next_attempt_at: datetime | None = None

    @property
    def failing(self) -> bool:
        """Failed for good, or waiting for a retry after a failed attempt."""
        return self.status is DeliveryStatus.FAILED or (
            self.status is DeliveryStatus.PENDING and self.attempts > 0
        )


@dataclass(frozen=True, kw_only=True)
class Webhook:
    id: str
    url: str
    format: WebhookFormat
    actions: tuple[QueueAction, ...]
    enabled: bool
    disabled_reason: str | None = None
    created_at: datetime
    deliveries: Page[WebhookDelivery]

    @property
    def last_delivered_at(self) -> datetime | None:
        """The newest delivered one among those read (newest first)."""
        return next((d.delivered_at for d in self.deliveries.items if d.delivered_at), None)

    @property
    def failures(self) -> int:
        """Failing deliveries among those read."""
        return sum(1 for d in self.deliveries.items if d.failing)


@dataclass(frozen=True)
class Created:
    """A webhook just made (or re-keyed), and its secret: shown once, never again."""

    webhook_id: str
    secret: str | None


DELIVERY_FIELDS = """
fragment DeliveryFields on WebhookDelivery {
  id action userId status attempts lastResponseCode lastError createdAt deliveredAt nextAttemptAt
}
"""

WEBHOOKS = (
    """
query Webhooks($deliveries: Int!) {
  webhooks {
    id url format actions enabled disabledReason createdAt
    deliveries(first: $deliveries) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { node { ...DeliveryFields } }
    }
  }
}
"""
    + DELIVERY_FIELDS
)

CREATE_WEBHOOK = """
mutation CreateWebhook($url: String!, $format: WebhookFormat!, $actions: [QueueAction!]) {
  createWebhook(input: {url: $url, format: $format, actions: $actions}) {
    webhook { id }
    secret
    errors { code message field }
  }
}
"""

UPDATE_WEBHOOK = """
mutation UpdateWebhook($id: ID!, $url: String, $actions: [QueueAction!], $enabled: Boolean) {
  updateWebhook(input: {id: $id, url: $url, actions: $actions, enabled: $enabled}) {
    webhook { id }
    errors { code message field }
  }
}
"""

DELETE_WEBHOOK = """
mutation DeleteWebhook($id: ID!) {
  deleteWebhook(input: {id: $id}) { deletedId errors { code message field } }
}
"""

ROTATE_WEBHOOK_SECRET = """
mutation RotateWebhookSecret($id: ID!) {
  rotateWebhookSecret(input: {id: $id}) { webhook { id } secret errors { code message field } }
}
"""

SEND_TEST_WEBHOOK = (
    """
mutation SendTestWebhook($id: ID!) {
  sendTestWebhook(input: {id: $id}) { delivery { ...DeliveryFields } errors { code message field } }
}
"""
    + DELIVERY_FIELDS
)

ALL = {
    "Webhooks": WEBHOOKS,
    "CreateWebhook": CREATE_WEBHOOK,
    "UpdateWebhook": UPDATE_WEBHOOK,
    "DeleteWebhook": DELETE_WEBHOOK,
    "RotateWebhookSecret": ROTATE_WEBHOOK_SECRET,
    "SendTestWebhook": SEND_TEST_WEBHOOK,
}


def _webhook(data: dict[str, Any]) -> Webhook:
    return Webhook(
        id=data["id"],
        url=data["url"],
        format=WebhookFormat(data["format"]),
        actions=tuple(QueueAction(a) for a in data["actions"]),
        enabled=data["enabled"],
        disabled_reason=data.get("disabledReason"),
        created_at=datetime.fromisoformat(data["createdAt"]),
        deliveries=parse_page(data["deliveries"], WebhookDelivery),
    )


class WebhooksApi:
    """The webhook calls, over the app's :class:`PlmApi` (one connection, one error mapping)."""

    def __init__(self, api: PlmApi) -> None:
        self.api = api

    async def _run(self, document: str, **variables: Any) -> dict[str, Any]:
        return await self.api._execute(document, **variables)

    async def webhooks(self, deliveries: int = 20) -> list[Webhook]:
        data = await self._run(WEBHOOKS, deliveries=deliveries)
        return [_webhook(w) for w in data["webhooks"]]

    async def create(self, url: str, format: WebhookFormat, actions: Sequence[QueueAction]) -> Created:
        data = await self._run(CREATE_WEBHOOK, url=url, format=format.value, actions=list(actions) or None)
        payload = PlmApi._payload(data, "createWebhook")
        return Created(payload["webhook"]["id"], payload.get("secret"))

    async def update(
        self,
        webhook_id: str,
        *,
        url: str | None = None,
        actions: Sequence[QueueAction] | None = None,
        enabled: bool | None = None,
    ) -> None:
        data = await self._run(
            UPDATE_WEBHOOK,
            id=webhook_id,
            url=url,
            actions=None if actions is None else list(actions),
            enabled=enabled,
        )
        PlmApi._payload(data, "updateWebhook")

    async def delete(self, webhook_id: str) -> None:
        PlmApi._payload(await self._run(DELETE_WEBHOOK, id=webhook_id), "deleteWebhook")

    async def rotate(self, webhook_id: str) -> Created:
        payload = PlmApi._payload(
            await self._run(ROTATE_WEBHOOK_SECRET, id=webhook_id), "rotateWebhookSecret"
        )
        return Created(webhook_id, payload.get("secret"))

    async def send_test(self, webhook_id: str) -> WebhookDelivery:
        payload = PlmApi._payload(await self._run(SEND_TEST_WEBHOOK, id=webhook_id), "sendTestWebhook")
        return parse(WebhookDelivery, payload["delivery"])
