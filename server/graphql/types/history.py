"""The account's history: the audit trail and the settings changes, with who acted."""

from __future__ import annotations

from datetime import datetime

import strawberry

from server.domain import models, settings_history
from server.domain.reads import lists

from ..context import Ctx
from .account import AdminType
from .base import PageInfo, QueueAction, gid


@strawberry.type(name="AuditEntry")
class AuditEntryType:
    id: strawberry.ID
    at: datetime
    action: QueueAction  # type: ignore[valid-type]
    user_id: strawberry.ID
    user_display_name: str
    detail: str
    actor_id: strawberry.Private[int | None]
    entry_id: strawberry.Private[int]

    @classmethod
    def of(cls, entry: models.AuditEntry) -> AuditEntryType:
        return cls(
            id=gid(entry.id),
            at=entry.at,
            action=entry.action,
            user_id=gid(entry.user_id),
            user_display_name=entry.user_display_name,
            detail=entry.detail,
            actor_id=entry.actor_id,
            entry_id=entry.id or 0,
        )

    @strawberry.field(description="Null when the system acted (ingestion, a lowered limit).")  # type: ignore[untyped-decorator]  # Strawberry's decorator-with-arguments overload is untyped
    async def actor(self, info: Ctx) -> AdminType | None:
        return await actor_of(info, self.actor_id)

    @strawberry.field(
        description="Until when undoAction can reverse this entry; null when it cannot (not reversible, "
        "undone, superseded, or too old)."
    )  # type: ignore[untyped-decorator]  # Strawberry's decorator-with-arguments overload is untyped
    async def undoable_until(self, info: Ctx) -> datetime | None:
        return await info.context.loaders.undoable.load(self.entry_id)


async def actor_of(info: Ctx, actor_id: int | None) -> AdminType | None:
    """The admin who acted, through the request's loader; ``None`` for the system."""
    if actor_id is None:
        return None
    admin = await info.context.loaders.admin.load(actor_id)
    return None if admin is None else AdminType.of(admin)


@strawberry.type
class AuditEntryEdge:
    cursor: str
    node: AuditEntryType


@strawberry.type
class AuditEntryConnection:
    edges: list[AuditEntryEdge]
    page_info: PageInfo

    @strawberry.field
    async def total_count(self, info: Ctx) -> int:
        return await info.context.run(lists.audit_count, info.context.account_id)


@strawberry.type(
    name="SettingsChange", description="A change to the account's settings: who made it and what changed."
)
class SettingsChangeType:
    id: strawberry.ID
    at: datetime
    manual_review: bool
    previous_manual_review: bool
    license_limit: int
    previous_license_limit: int
    moved_to_pending: int = strawberry.field(
        description="How many licensed users a lowered limit moved to the Pending Licenses queue."
    )
    actor_id: strawberry.Private[int | None]

    @classmethod
    def of(cls, change: settings_history.SettingsChange) -> SettingsChangeType:
        return cls(
            id=gid(change.id),
            at=change.at,
            manual_review=change.manual_review_after,
            previous_manual_review=change.manual_review_before,
            license_limit=change.license_limit_after,
            previous_license_limit=change.license_limit_before,
            moved_to_pending=change.moved_to_pending,
            actor_id=change.actor_id,
        )

    @strawberry.field(description="Null when the system acted (the plm CLI).")  # type: ignore[untyped-decorator]  # Strawberry's decorator-with-arguments overload is untyped
    async def actor(self, info: Ctx) -> AdminType | None:
        return await actor_of(info, self.actor_id)


@strawberry.type
class SettingsChangeEdge:
    cursor: str
    node: SettingsChangeType


@strawberry.type
class SettingsChangeConnection:
    edges: list[SettingsChangeEdge]
    page_info: PageInfo

    @strawberry.field
    async def total_count(self, info: Ctx) -> int:
        return await info.context.run(lists.settings_history_count, info.context.account_id)
