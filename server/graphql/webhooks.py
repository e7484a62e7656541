"""``WebhookQuery`` and ``WebhookMutation``: the webhook fields of ``Query`` and ``Mutation``
(merged into them in :mod:`.schema`), thin over :mod:`server.domain.webhooks`.

ADMINs manage (a VIEWER's mutation is a top-level FORBIDDEN); VIEWERs read, never a
secret. A URL is vetted (:func:`server.domain.webhooks.urls.vet`: form, scheme, DNS,
public addresses) before the write transaction opens, so a slow resolver never holds the
database; a refusal is the payload's ``INVALID_INPUT``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

import strawberry

from server.domain.models import QueueAction, Role
from server.domain.webhooks import manage, reads, urls
from server.domain.webhooks.urls import VettedUrl
from server.infra.webhooks import policy_of

from .context import Context, Ctx
from .inputs import parse_id
from .mutations import _payload, _write
from .types.payloads import UserError
from .types.webhooks import (
    CreateWebhookInput,
    CreateWebhookPayload,
    DeleteWebhookPayload,
    RotateWebhookSecretPayload,
    SendTestWebhookPayload,
    UpdateWebhookInput,
    UpdateWebhookPayload,
    WebhookDeliveryType,
    WebhookIdInput,
    WebhookType,
    domain_format,
)

P = TypeVar("P")
P_co = TypeVar("P_co", covariant=True)


def _viewer(ctx: Context) -> bool:
    return ctx.actor.role is not Role.ADMIN


async def _vet(ctx: Context, url: str) -> VettedUrl:
    return await urls.vet(url, policy_of(ctx.services.settings))


def _actions(given: Sequence[object] | None) -> list[QueueAction] | None:
    return None if given is None else [QueueAction(getattr(a, "value", a)) for a in given]


async def _create(ctx: Context, input: CreateWebhookInput) -> CreateWebhookPayload:
    vetted = await _vet(ctx, input.url)
    fmt, actions = domain_format(input.format), _actions(input.actions)
    made = await _write(ctx, lambda s, now: manage.create(s, ctx.actor, vetted, fmt, actions, now))
    return CreateWebhookPayload(
        webhook=WebhookType.of(made.webhook, viewer=False), secret=made.secret, errors=[]
    )


async def _update(ctx: Context, input: UpdateWebhookInput) -> UpdateWebhookPayload:
    webhook_id = parse_id(input.id, "id", "webhook")
    vetted = None if input.url is None else await _vet(ctx, input.url)
    actions = _actions(input.actions)
    webhook = await _write(
        ctx,
        lambda s, now: manage.update(
            s, ctx.actor, webhook_id, now, url=vetted, actions=actions, enabled=input.enabled
        ),
    )
    return UpdateWebhookPayload(webhook=WebhookType.of(webhook, viewer=False), errors=[])


async def _delete(ctx: Context, input: WebhookIdInput) -> DeleteWebhookPayload:
    webhook_id = parse_id(input.id, "id", "webhook")
    deleted = await _write(ctx, lambda s, now: manage.delete(s, ctx.actor, webhook_id))
    return DeleteWebhookPayload(deleted_id=strawberry.ID(str(deleted)), errors=[])


async def _rotate(ctx: Context, input: WebhookIdInput) -> RotateWebhookSecretPayload:
    webhook_id = parse_id(input.id, "id", "webhook")
    made = await _write(ctx, lambda s, now: manage.rotate_secret(s, ctx.actor, webhook_id, now))
    return RotateWebhookSecretPayload(
        webhook=WebhookType.of(made.webhook, viewer=False), secret=made.secret, errors=[]
    )


async def _test(ctx: Context, input: WebhookIdInput) -> SendTestWebhookPayload:
    webhook_id = parse_id(input.id, "id", "webhook")
    row = await _write(ctx, lambda s, now: manage.send_test(s, ctx.actor, webhook_id, now))
    ctx.services.webhooks.wake()
    assert row.id is not None
    found = await ctx.run(reads.delivery, row.id)
    return SendTestWebhookPayload(
        delivery=None if found is None else WebhookDeliveryType.of(found), errors=[]
    )


class _ErrorsOnly(Protocol[P_co]):
    """A payload type whose fields other than ``errors`` default to null."""

    def __call__(self, *, errors: list[UserError]) -> P_co: ...


def _refused(payload: _ErrorsOnly[P]) -> Callable[[list[UserError]], Awaitable[P]]:
    """A refused webhook mutation's payload: nothing but the errors (nothing changed)."""

    async def refused(errors: list[UserError]) -> P:
        return payload(errors=errors)

    return refused


@strawberry.type
class WebhookQuery:
    @strawberry.field
    async def webhooks(self, info: Ctx) -> list[WebhookType]:
        ctx = info.context
        viewer = _viewer(ctx)
        return [WebhookType.of(w, viewer=viewer) for w in await ctx.run(reads.webhooks, ctx.account_id)]


@strawberry.type
class WebhookMutation:
    @strawberry.mutation
    async def create_webhook(self, info: Ctx, input: CreateWebhookInput) -> CreateWebhookPayload:
        ctx = info.context
        ctx.require_admin()

        return await _payload(_create(ctx, input), _refused(CreateWebhookPayload))

    @strawberry.mutation
    async def update_webhook(self, info: Ctx, input: UpdateWebhookInput) -> UpdateWebhookPayload:
        ctx = info.context
        ctx.require_admin()

        return await _payload(_update(ctx, input), _refused(UpdateWebhookPayload))

    @strawberry.mutation
    async def delete_webhook(self, info: Ctx, input: WebhookIdInput) -> DeleteWebhookPayload:
        ctx = info.context
        ctx.require_admin()

        return await _payload(_delete(ctx, input), _refused(DeleteWebhookPayload))

    @strawberry.mutation
    async def rotate_webhook_secret(self, info: Ctx, input: WebhookIdInput) -> RotateWebhookSecretPayload:
        ctx = info.context
        ctx.require_admin()

        return await _payload(_rotate(ctx, input), _refused(RotateWebhookSecretPayload))

    @strawberry.mutation
    async def send_test_webhook(self, info: Ctx, input: WebhookIdInput) -> SendTestWebhookPayload:
        ctx = info.context
        ctx.require_admin()

        return await _payload(_test(ctx, input), _refused(SendTestWebhookPayload))
