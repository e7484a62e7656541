"""Webhooks and their deliveries as the API shows them, and the webhook mutations' inputs and payloads.

No type here has a field for a signing secret: it is shown once, in the payload of the
mutation that made it (``CreateWebhookPayload.secret``, ``RotateWebhookSecretPayload.secret``).
A VIEWER reads a webhook's URL without credentials, query or fragment, and only the origin
of a Slack URL (its path is its secret).
"""

from __future__ import annotations

import enum
from datetime import datetime

import strawberry

from server.domain.errors import DomainError
from server.domain.models import OutboxStatus, QueueAction
from server.domain.webhooks import enqueue, reads, urls
from server.domain.webhooks.tables import Webhook, WebhookFormat

from ..context import Ctx
from ..errors import BadUserInput
from .base import PageInfo, gid
from .base import QueueAction as QueueActionType
from .payloads import UserError


@strawberry.enum(name="WebhookFormat")
class WebhookFormatType(enum.Enum):
    STANDARD = strawberry.enum_value(
        "STANDARD",
        description="Standard Webhooks: a JSON body signed with webhook-id, webhook-timestamp and "
        "webhook-signature (HMAC-SHA256) headers.",
    )
    SLACK = strawberry.enum_value(
        "SLACK",
        description="A Slack incoming-webhook message (JSON with text and blocks); Slack's URL is the secret.",
    )


@strawberry.enum(name="DeliveryStatus")
class DeliveryStatus(enum.Enum):
    PENDING = strawberry.enum_value(
        "PENDING", description="Not delivered yet: waiting for its first attempt or its next retry."
    )
    DELIVERED = strawberry.enum_value("DELIVERED", description="The endpoint answered with a 2xx status.")
    FAILED = strawberry.enum_value(
        "FAILED",
        description="Failed for good: every retry for 3 days failed, the endpoint answered 410, "
        "or the endpoint was disabled while the delivery waited.",
    )


_STATUS = {
    OutboxStatus.PENDING: DeliveryStatus.PENDING,
    OutboxStatus.SENT: DeliveryStatus.DELIVERED,
    OutboxStatus.FAILED: DeliveryStatus.FAILED,
    OutboxStatus.LOGGED: DeliveryStatus.FAILED,
}


@strawberry.type(name="WebhookDelivery")
class WebhookDeliveryType:
    id: strawberry.ID
    action: QueueActionType | None = strawberry.field(  # type: ignore[valid-type]
        description="Null for a sendTestWebhook delivery (pending_queue.test)."
    )
    user_id: strawberry.ID | None = strawberry.field(description="Null for a sendTestWebhook delivery.")
    status: DeliveryStatus
    attempts: int
    last_response_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    next_attempt_at: datetime | None

    @classmethod
    def of(cls, row: reads.DeliveryRow) -> WebhookDeliveryType:
        return cls(
            id=gid(row.id),
            action=row.action,
            user_id=None if row.user_id is None else gid(row.user_id),
            status=_STATUS[row.status],
            attempts=row.attempts,
            last_response_code=row.response_code,
            last_error=row.last_error,
            created_at=row.created_at,
            delivered_at=row.delivered_at,
            next_attempt_at=row.next_attempt_at,
        )


@strawberry.type
class WebhookDeliveryEdge:
    cursor: str
    node: WebhookDeliveryType


@strawberry.type
class WebhookDeliveryConnection:
    edges: list[WebhookDeliveryEdge]
    page_info: PageInfo
    webhook_id: strawberry.Private[int]

    @strawberry.field
    async def total_count(self, info: Ctx) -> int:
        return await info.context.run(reads.deliveries_count, self.webhook_id)


@strawberry.type(name="Webhook")
class WebhookType:
    id: strawberry.ID
    url: str
    format: WebhookFormatType
    actions: list[QueueActionType] = strawberry.field(  # type: ignore[valid-type]
        description="The queue actions delivered; every action when it was created with none."
    )
    enabled: bool
    disabled_reason: str | None = strawberry.field(
        description="Why the server disabled it (410 Gone, or failing for 3 days); "
        "null while enabled or disabled by an admin."
    )
    created_at: datetime
    webhook_id: strawberry.Private[int]

    @classmethod
    def of(cls, webhook: Webhook, *, viewer: bool) -> WebhookType:
        assert webhook.id is not None
        chosen = enqueue.actions_of(webhook)
        return cls(
            id=gid(webhook.id),
            url=urls.shown_to_viewer(webhook.url, webhook.format) if viewer else webhook.url,
            format=WebhookFormatType(webhook.format.value),
            actions=list(QueueAction) if chosen is None else chosen,
            enabled=webhook.enabled,
            disabled_reason=webhook.disabled_reason,
            created_at=webhook.created_at,
            webhook_id=webhook.id,
        )

    @strawberry.field(description="Newest first.")  # type: ignore[untyped-decorator]  # Strawberry's decorator-with-arguments overload is untyped
    async def deliveries(
        self, info: Ctx, first: int = 20, after: str | None = None
    ) -> WebhookDeliveryConnection:
        try:
            page = await info.context.run(reads.deliveries_page, self.webhook_id, first, after)
        except DomainError as exc:  # 'first' out of range, a cursor of another list
            raise BadUserInput(exc.message, field=exc.field) from None
        return WebhookDeliveryConnection(
            edges=[
                WebhookDeliveryEdge(cursor=c, node=WebhookDeliveryType.of(d))
                for d, c in zip(page.items, page.cursors, strict=True)
            ],
            page_info=PageInfo.of(page),
            webhook_id=self.webhook_id,
        )


def domain_format(format: WebhookFormatType) -> WebhookFormat:
    return WebhookFormat(format.value)


# ---------------------------------------------------------------------------- inputs & payloads


@strawberry.input
class CreateWebhookInput:
    url: str
    format: WebhookFormatType = WebhookFormatType.STANDARD
    actions: list[QueueActionType] | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="Null or empty: every action."
    )


@strawberry.type
class CreateWebhookPayload:
    webhook: WebhookType | None = None
    secret: str | None = strawberry.field(
        default=None,
        description="The signing secret (whsec_…): shown only here and by rotateWebhookSecret. Null for SLACK.",
    )
    errors: list[UserError]


@strawberry.input
class UpdateWebhookInput:
    id: strawberry.ID
    url: str | None = None
    actions: list[QueueActionType] | None = None  # type: ignore[valid-type]
    enabled: bool | None = None


@strawberry.type
class UpdateWebhookPayload:
    webhook: WebhookType | None = None
    errors: list[UserError]


@strawberry.input
class WebhookIdInput:
    id: strawberry.ID


@strawberry.type
class DeleteWebhookPayload:
    deleted_id: strawberry.ID | None = None
    errors: list[UserError]


@strawberry.type
class RotateWebhookSecretPayload:
    webhook: WebhookType | None = None
    secret: str | None = None
    errors: list[UserError]


@strawberry.type
class SendTestWebhookPayload:
    delivery: WebhookDeliveryType | None = None
    errors: list[UserError]
