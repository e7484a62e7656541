"""``Subscription.pendingQueueChanged``: the account's queue changes, as they commit.

Events come from the broadcaster (:mod:`server.events`), which delivers only committed
changes, in commit order, to subscribers of the same account. Each event is shown from a
fresh read snapshot, and the snapshot ends again before waiting for the next event, so a
long-lived subscription never holds a read transaction open.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from server.events import QueueEvent
from server.models import QueueAction

from .context import Context
from .types import AccountType, AdminType, Ctx, PendingQueueEvent, UserType, gid

# After these the user no longer exists: the event carries only its id.
_GONE = {QueueAction.ASSIGNED, QueueAction.MERGED, QueueAction.REMOVED}


async def event_view(ctx: Context, event: QueueEvent) -> PendingQueueEvent:
    user = None if event.action in _GONE else await ctx.loaders.user.load(event.user_id)
    actor = None if event.actor_id is None else await ctx.loaders.admin.load(event.actor_id)
    return PendingQueueEvent(
        action=event.action,
        user_id=gid(event.user_id),
        user=None if user is None else UserType.of(user),
        account=AccountType.of(ctx.account, event.usage),
        actor=None if actor is None else AdminType.of(actor),
        at=event.at,
    )


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Every change to the caller's account's pending queue, as it commits."
    )  # type: ignore[untyped-decorator]  # Strawberry's decorator-with-arguments overload is untyped
    async def pending_queue_changed(self, info: Ctx) -> AsyncGenerator[PendingQueueEvent, None]:
        ctx = info.context
        stream = ctx.services.db.broadcaster.subscribe(ctx.account_id)
        try:
            async for event in stream:
                await ctx.fresh_snapshot()
                yield await event_view(ctx, event)
                await ctx.fresh_snapshot()
        finally:
            stream.close()
