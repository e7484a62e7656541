"""The account's lists, one keyset page at a time, with their filters and counts.

The pending queue, users, agents, the audit trail and the settings history: each list has
its :class:`~server.domain.reads.cursors.Keyset` (its sort and its cursors' tag), a filter
where it takes ``search`` and friends, a page and a count over the same conditions.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from server.domain import seat_counts
from server.domain.models import AuditEntry, PendingReason, UserStatus
from server.domain.reads.cursors import Keyset, Page, bound_page, keyset_page, page_statement
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
from server.domain.reads.search import params as search_params
from server.domain.settings_history import SettingsChange

_AUDIT_ENTRY, _SETTINGS_CHANGE = (sa.inspect(m).local_table for m in (AuditEntry, SettingsChange))
_U, _AG, _AU, _SC = USER.c, AGENT.c, _AUDIT_ENTRY.c, _SETTINGS_CHANGE.c
T = TypeVar("T")


class PendingOrder(enum.StrEnum):
    ENTERED_ASC = "ENTERED_ASC"
    ENTERED_DESC = "ENTERED_DESC"
    NAME_ASC = "NAME_ASC"


async def _count(session: AsyncSession, table: Any, where: Sequence[Any]) -> int:
    stmt = sa.select(sa.func.count()).select_from(table).where(*where)
    return int((await session.execute(stmt)).scalar_one())


@dataclass(frozen=True, slots=True)
class Bound:
    """A filter as statements see it: its shape (which conditions apply), the conditions,
    built once per shape with bind parameters, and this filter's values for them."""

    shape: tuple[Any, ...]
    where: tuple[Any, ...]
    params: dict[str, Any]


# A filter's values are bind parameters: its conditions, its page statements and its count
# are built once per shape (a list, a kind of search term, the optional filters given) and
# serve every value. Building a search's conditions, and SQLAlchemy's cache key of a
# statement it has not seen, cost more CPU than running them; the shapes are few (a dozen
# per list), so these maps stay small.
_ACCOUNT = sa.bindparam("account_id", type_=sa.Integer())
_REASON = sa.bindparam("reason", type_=_U.pending_reason.type)
_STATUS = sa.bindparam("status", type_=_U.status.type)
_WHERE: dict[tuple[Any, ...], tuple[Any, ...]] = {}
_STATEMENTS: dict[tuple[Any, ...], Any] = {}


def _bound(shape: tuple[Any, ...], build: Callable[[], list[Any]], params: dict[str, Any]) -> Bound:
    where = _WHERE.get(shape)
    if where is None:
        where = _WHERE[shape] = tuple(build())
    return Bound(shape, where, params)


def _statement(key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
    stmt = _STATEMENTS.get(key)
    if stmt is None:
        stmt = _STATEMENTS[key] = build()
    return stmt


def _search(search: str | None, params: dict[str, Any]) -> bool | None:
    """The kind of a ``search`` (``None``: none; else whether it has a trigram); its values
    are added to ``params``. ``DomainError`` for a search refused."""
    term = parse(search)
    if term is None:
        return None
    params.update(search_params(term))
    return term.phrase is not None


async def _bound_page(
    session: AsyncSession,
    keyset: Keyset,
    columns: Sequence[Any],
    make: Callable[[Sequence[Any]], T],
    bound: Bound,
    first: int,
    after: str | None,
) -> Page[T]:
    def statement(after_given: bool) -> Any:
        return _statement(
            (keyset.kind, bound.shape, after_given),
            lambda: page_statement(keyset, columns, bound.where, after_given),
        )

    return await bound_page(session, keyset, statement, len(columns), make, bound.params, first, after)


async def _bound_count(session: AsyncSession, table: Any, bound: Bound) -> int:
    stmt = _statement(
        ("count", bound.shape), lambda: sa.select(sa.func.count()).select_from(table).where(*bound.where)
    )
    return int((await session.execute(stmt, bound.params)).scalar_one())


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

    def bound(self) -> Bound:
        params: dict[str, Any] = {_ACCOUNT.key: self.account_id}
        trigram = _search(self.search, params)
        if self.reason is not None:
            params[_REASON.key] = self.reason

        def build() -> list[Any]:
            conditions: list[Any] = [_U.account_id == _ACCOUNT, _U.status == UserStatus.PENDING]
            if trigram is not None:
                conditions.extend(user_matches(trigram))
            if self.reason is not None:
                conditions.append(_U.pending_reason == _REASON)
            return conditions

        return _bound(("pending", trigram, self.reason is not None), build, params)


async def pending_page(
    session: AsyncSession,
    filt: PendingFilter,
    first: int,
    after: str | None,
    order: PendingOrder = PendingOrder.ENTERED_ASC,
) -> Page[UserRow]:
    """The account's queue, oldest first by default."""
    return await _bound_page(
        session, _PENDING_ORDERS[order], USER_COLUMNS, user_row, filt.bound(), first, after
    )


async def pending_count(session: AsyncSession, filt: PendingFilter) -> int:
    """The filter's pending users; the whole queue's (no search, no reason) is the account's
    seat count, remembered between changes (:func:`server.domain.seat_counts.counted`)."""
    if filt.search is None and filt.reason is None:
        return (await seat_counts.counted(session, filt.account_id))[1]
    return await _bound_count(session, USER, filt.bound())


@dataclass(frozen=True)
class UserFilter:
    account_id: int
    search: str | None = None
    status: UserStatus | None = None

    def bound(self) -> Bound:
        params: dict[str, Any] = {_ACCOUNT.key: self.account_id}
        trigram = _search(self.search, params)
        if self.status is not None:
            params[_STATUS.key] = self.status

        def build() -> list[Any]:
            conditions: list[Any] = [_U.account_id == _ACCOUNT]
            if trigram is not None:
                conditions.extend(user_matches(trigram))
            if self.status is not None:
                conditions.append(_U.status == _STATUS)
            return conditions

        return _bound(("users", trigram, self.status is not None), build, params)


async def users_page(session: AsyncSession, filt: UserFilter, first: int, after: str | None) -> Page[UserRow]:
    """Every user of the account, by name (case-insensitive), then id."""
    return await _bound_page(session, _USERS, USER_COLUMNS, user_row, filt.bound(), first, after)


async def users_count(session: AsyncSession, filt: UserFilter) -> int:
    return await _bound_count(session, USER, filt.bound())


@dataclass(frozen=True)
class AgentFilter:
    account_id: int
    search: str | None = None

    def bound(self) -> Bound:
        params: dict[str, Any] = {_ACCOUNT.key: self.account_id}
        trigram = _search(self.search, params)

        def build() -> list[Any]:
            conditions: list[Any] = [_AG.account_id == _ACCOUNT]
            if trigram is not None:
                conditions.extend(agent_matches(trigram))
            return conditions

        return _bound(("agents", trigram), build, params)


async def agents_page(
    session: AsyncSession, filt: AgentFilter, first: int, after: str | None
) -> Page[AgentRow]:
    """Every agent of the account, by its normalised key (device, domain, logon)."""
    return await _bound_page(session, _AGENTS, AGENT_COLUMNS, agent_row, filt.bound(), first, after)


async def agents_count(session: AsyncSession, filt: AgentFilter) -> int:
    return await _bound_count(session, AGENT, filt.bound())


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
