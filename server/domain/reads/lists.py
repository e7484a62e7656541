"""The account's lists, one keyset page at a time, with their filters and counts.

The pending queue, users, agents, the audit trail and the settings history: each list has
its :class:`~server.domain.reads.cursors.Keyset` (its sort and its cursors' tag), a filter
where it takes ``search`` and friends, a page and a count over the same conditions.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from cachetools import LRUCache
from sqlalchemy.ext.asyncio import AsyncSession

from server.domain.models import AuditEntry, PendingReason, UserStatus
from server.domain.reads.cursors import Keyset, Page, keyset_page
from server.domain.reads.rows import (
    AGENT,
    AGENT_COLUMNS,
    USER,
    USER_COLUMNS,
    AgentRow,
    UserRow,
    agent_row,
    user_row,
)
from server.domain.reads.search import agent_matches, parse, user_matches
from server.domain.settings_history import SettingsChange

_AUDIT_ENTRY, _SETTINGS_CHANGE = (sa.inspect(m).local_table for m in (AuditEntry, SettingsChange))
_U, _AG, _AU, _SC = USER.c, AGENT.c, _AUDIT_ENTRY.c, _SETTINGS_CHANGE.c


class PendingOrder(enum.StrEnum):
    ENTERED_ASC = "ENTERED_ASC"
    ENTERED_DESC = "ENTERED_DESC"
    NAME_ASC = "NAME_ASC"


async def _count(session: AsyncSession, table: Any, where: Sequence[Any]) -> int:
    stmt = sa.select(sa.func.count()).select_from(table).where(*where)
    return int((await session.execute(stmt)).scalar_one())


# A filter's conditions and its count statement, built once per distinct filter: building a
# search's conditions, and SQLAlchemy's cache key of a statement it has not seen (memoized on
# the statement object), cost more CPU than running them. Statements are immutable, so one
# object serves every request with an equal filter (a page and its totalCount, a repeated
# search).
_CONDITIONS: LRUCache[Any, tuple[Any, ...]] = LRUCache(maxsize=1024)
_COUNTS: LRUCache[Any, Any] = LRUCache(maxsize=1024)


def _conditions(filt: Any, build: Any) -> list[Any]:
    built = _CONDITIONS.get(filt)
    if built is None:
        built = _CONDITIONS[filt] = tuple(build())
    return list(built)


async def _filtered_count(session: AsyncSession, table: Any, filt: Any) -> int:
    stmt = _COUNTS.get(filt)
    if stmt is None:
        stmt = _COUNTS[filt] = sa.select(sa.func.count()).select_from(table).where(*filt.where())
    return int((await session.execute(stmt)).scalar_one())


_NAME = sa.func.lower(_U.display_name)
_PENDING_ORDERS = {
    PendingOrder.ENTERED_ASC: Keyset("pending:entered", (_U.pending_since, _U.id), (datetime, int)),
    PendingOrder.ENTERED_DESC: Keyset(
        "pending:entered-desc", (_U.pending_since, _U.id), (datetime, int), descending=True
    ),
    PendingOrder.NAME_ASC: Keyset("pending:name", (_NAME, _U.id), (str, int)),
}
_USERS = Keyset("users:name", (_NAME, _U.id), (str, int))
_AGENTS = Keyset("agents:key", (_AG.key, _AG.id), (str, int))
_AUDIT = Keyset("audit:at", (_AU.at, _AU.id), (datetime, int), descending=True)
_SETTINGS = Keyset("settings:id", (_SC.id,), (int,), descending=True)


@dataclass(frozen=True)
class PendingFilter:
    account_id: int
    search: str | None = None
    reason: PendingReason | None = None

    def where(self) -> list[Any]:
        return _conditions(self, self._build)

    def _build(self) -> list[Any]:
        conditions: list[Any] = [_U.account_id == self.account_id, _U.status == UserStatus.PENDING]
        term = parse(self.search)
        if term is not None:
            conditions.extend(user_matches(term))
        if self.reason is not None:
            conditions.append(_U.pending_reason == self.reason)
        return conditions


async def pending_page(
    session: AsyncSession,
    filt: PendingFilter,
    first: int,
    after: str | None,
    order: PendingOrder = PendingOrder.ENTERED_ASC,
) -> Page[UserRow]:
    """The account's queue, oldest first by default."""
    return await keyset_page(
        session, _PENDING_ORDERS[order], USER_COLUMNS, user_row, filt.where(), first, after
    )


async def pending_count(session: AsyncSession, filt: PendingFilter) -> int:
    return await _filtered_count(session, USER, filt)


@dataclass(frozen=True)
class UserFilter:
    account_id: int
    search: str | None = None
    status: UserStatus | None = None

    def where(self) -> list[Any]:
        return _conditions(self, self._build)

    def _build(self) -> list[Any]:
        conditions: list[Any] = [_U.account_id == self.account_id]
        term = parse(self.search)
        if term is not None:
            conditions.extend(user_matches(term))
        if self.status is not None:
            conditions.append(_U.status == self.status)
        return conditions


async def users_page(session: AsyncSession, filt: UserFilter, first: int, after: str | None) -> Page[UserRow]:
    """Every user of the account, by name (case-insensitive), then id."""
    return await keyset_page(session, _USERS, USER_COLUMNS, user_row, filt.where(), first, after)


async def users_count(session: AsyncSession, filt: UserFilter) -> int:
    return await _filtered_count(session, USER, filt)


@dataclass(frozen=True)
class AgentFilter:
    account_id: int
    search: str | None = None

    def where(self) -> list[Any]:
        return _conditions(self, self._build)

    def _build(self) -> list[Any]:
        conditions: list[Any] = [_AG.account_id == self.account_id]
        term = parse(self.search)
        if term is not None:
            conditions.extend(agent_matches(term))
        return conditions


async def agents_page(
    session: AsyncSession, filt: AgentFilter, first: int, after: str | None
) -> Page[AgentRow]:
    """Every agent of the account, by its normalised key (device, domain, logon)."""
    return await keyset_page(session, _AGENTS, AGENT_COLUMNS, agent_row, filt.where(), first, after)


async def agents_count(session: AsyncSession, filt: AgentFilter) -> int:
    return await _filtered_count(session, AGENT, filt)


def _first(row: Sequence[Any]) -> Any:
    return row[0]


async def audit_page(
    session: AsyncSession, account_id: int, first: int, after: str | None
) -> Page[AuditEntry]:
    """The account's audit trail, newest first (ORM entries: a page is read now and then)."""
    return await keyset_page(
        session, _AUDIT, (AuditEntry,), _first, [_AU.account_id == account_id], first, after
    )


async def audit_count(session: AsyncSession, account_id: int) -> int:
    return await _count(session, _AUDIT_ENTRY, [_AU.account_id == account_id])


async def settings_history_page(
    session: AsyncSession, account_id: int, first: int, after: str | None
) -> Page[SettingsChange]:
    """Who changed the account's settings and how, newest first."""
    return await keyset_page(
        session, _SETTINGS, (SettingsChange,), _first, [_SC.account_id == account_id], first, after
    )


async def settings_history_count(session: AsyncSession, account_id: int) -> int:
    return await _count(session, _SETTINGS_CHANGE, [_SC.account_id == account_id])
