"""Read-side domain queries: keyset-paginated lists, batch loads and pending-user info.

Everything here is plain SQLAlchemy over the models' tables; the GraphQL layer calls it
through per-request DataLoaders and list resolvers. Every query is scoped to one account.

Lists and batch loads of users and agents are SQLAlchemy Core selects of the table columns,
returned as frozen :class:`UserRow` / :class:`AgentRow`: the read side never changes a row,
and an ORM load (identity map, instance state, SQLModel's ``__new__``) cost several times the
query itself on a 50-row page. Conditions are written against ``Table.c`` rather than the ORM
attributes for the same reason: an ORM attribute anywhere in a statement routes its execution
through the ORM's compile and result machinery.

Lists paginate by keyset (``WHERE (sort key, id) > (cursor)``), never ``OFFSET``: a page
deep in a 10,000-row queue costs the same as the first, and rows entering or leaving the
queue between two pages never shift a row past the client. Cursors are opaque: base64 of
the list's name and the last row's sort key, so a cursor from one list or order is refused
by another instead of silently returning the wrong rows.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from server.domain.errors import DomainError, ErrorCode
from server.domain.models import (
    Account,
    ActivityEvent,
    Admin,
    Agent,
    AuditEntry,
    PendingReason,
    SettingsChange,
    User,
    UserStatus,
)
from server.domain.text import unstorable

MAX_PAGE = 500
MAX_SEARCH = 256
# Primary keys are INTEGER columns, 32-bit on PostgreSQL (asyncpg refuses to bind a larger
# value); the schema is the same on SQLite. No row has a larger id.
MAX_ID = 2**31 - 1
T = TypeVar("T")

# The tables and their columns, for Core statements (see the module docstring).
_USER, _AGENT, _EVENT, _AUDIT_ENTRY = (sa.inspect(m).local_table for m in (User, Agent, ActivityEvent, AuditEntry))
_U, _AG, _EV, _AU = _USER.c, _AGENT.c, _EVENT.c, _AUDIT_ENTRY.c


class UserFields(Protocol):
    """What the read side shows of a user: a :class:`UserRow`, or a :class:`User` a write returned."""

    @property
    def id(self) -> int | None: ...
    @property
    def display_name(self) -> str: ...
    @property
    def status(self) -> UserStatus: ...
    @property
    def first_seen_at(self) -> datetime: ...
    @property
    def last_seen_at(self) -> datetime: ...
    @property
    def licensed_at(self) -> datetime | None: ...
    @property
    def pending_reason(self) -> PendingReason | None: ...
    @property
    def pending_since(self) -> datetime | None: ...


class AgentFields(Protocol):
    """What the read side shows of an agent: an :class:`AgentRow`, or an :class:`Agent`."""

    @property
    def id(self) -> int | None: ...
    @property
    def user_id(self) -> int: ...
    @property
    def device_name(self) -> str: ...
    @property
    def domain(self) -> str: ...
    @property
    def logon_name(self) -> str: ...
    @property
    def first_seen_at(self) -> datetime: ...
    @property
    def last_seen_at(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class UserRow:
    """A ``user`` row as the read side loads it (Core, no ORM instance)."""

    id: int
    account_id: int
    display_name: str
    status: UserStatus
    first_seen_at: datetime
    last_seen_at: datetime
    licensed_at: datetime | None
    pending_reason: PendingReason | None
    pending_since: datetime | None


@dataclass(frozen=True, slots=True)
class AgentRow:
    """An ``agent`` row as the read side loads it (without its normalised keys)."""

    id: int
    account_id: int
    user_id: int
    device_name: str
    domain: str
    logon_name: str
    first_seen_at: datetime
    last_seen_at: datetime


# Selected in the dataclasses' field order, so a result row unpacks straight into one.
_USER_COLUMNS = tuple(_U[f.name] for f in fields(UserRow))
_AGENT_COLUMNS = tuple(_AG[f.name] for f in fields(AgentRow))


def _user_row(row: Sequence[Any]) -> UserRow:
    return UserRow(*row[: len(_USER_COLUMNS)])


def _agent_row(row: Sequence[Any]) -> AgentRow:
    return AgentRow(*row[: len(_AGENT_COLUMNS)])


class PendingOrder(enum.StrEnum):
    ENTERED_ASC = "ENTERED_ASC"
    ENTERED_DESC = "ENTERED_DESC"
    NAME_ASC = "NAME_ASC"


def _id_in_range(value: object) -> int | None:
    """``value`` if it is an id a row can have (every int in a cursor is one), else ``None``."""
    # bool is an int in Python: True must not read as id 1.
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 < value <= MAX_ID else None


def parse_id(raw: object) -> int | None:
    """An id as the API shows it (the primary key as a string); ``None`` when malformed.

    A malformed id reads as "no such row", never as an error: ids are opaque to clients.
    Anything but a decimal string or an int in 1..:data:`MAX_ID` is malformed, so no
    statement is ever handed an id its driver cannot bind.
    """
    if not isinstance(raw, str):
        return _id_in_range(raw)
    text = raw.strip()
    if not text.isascii() or not text.isdecimal() or len(text) > len(str(MAX_ID)):
        return None
    return _id_in_range(int(text))


# ---------------------------------------------------------------------------- auth


# ---------------------------------------------------------------------------- cursors


def _encode_cursor(kind: str, key: Sequence[Any]) -> str:
    raw = json.dumps([kind, *key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(kind: str, cursor: str, shape: Sequence[type]) -> list[Any]:
    """The sort key a cursor of this list holds, or ``DomainError`` on ``after``.

    Cursors come back from clients, so each value is checked against what a cursor of ours
    can hold (a timestamp with a zone, storable text, an id), never handed to the driver
    to find out: a value it cannot bind (an id past 32 bits, a NUL on PostgreSQL, a lone
    surrogate, a time that leaves the calendar when moved to UTC) would be a server error.
    """
    bad = DomainError(ErrorCode.INVALID_INPUT, "'after' is not a cursor of this list", "after")
    if len(cursor) > 2048:
        raise bad
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        # RecursionError: "[[[[..." nested past the parser's limit fits in 2,048 characters.
        raise bad from None
    if not isinstance(decoded, list) or len(decoded) != len(shape) + 1 or decoded[0] != kind:
        raise bad
    values: list[Any] = []
    for value, typ in zip(decoded[1:], shape, strict=True):
        if typ is datetime:
            # unstorable: fromisoformat ignores a trailing NUL.
            if not isinstance(value, str) or unstorable(value) is not None:
                raise bad
            try:
                parsed = datetime.fromisoformat(value)
                # As the column binds it; OverflowError: before year 1 or after 9999 in UTC.
                utc = None if parsed.tzinfo is None else parsed.astimezone(UTC)
            except (ValueError, OverflowError):
                raise bad from None
            if utc is None:
                raise bad
            values.append(utc)
        elif typ is int:
            if (found := _id_in_range(value)) is None:
                raise bad
            values.append(found)
        elif not isinstance(value, typ) or (isinstance(value, str) and unstorable(value) is not None):
            raise bad
        else:
            values.append(value)
    return values


def _cursor_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list: the rows, a cursor per row, and whether more follow."""

    items: list[T]
    cursors: list[str]
    has_next: bool

    @property
    def end_cursor(self) -> str | None:
        return self.cursors[-1] if self.cursors else None


def check_first(first: int) -> None:
    if not 1 <= first <= MAX_PAGE:
        raise DomainError(
            ErrorCode.INVALID_INPUT, f"'first' must be from 1 to {MAX_PAGE}; got {first}", "first"
        )


def _like(search: str) -> str:
    escaped = search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _search_term(search: str | None) -> str | None:
    """The LIKE pattern of a list's ``search`` argument; ``None`` for no search.

    Text no column can hold is refused rather than searched for: SQLite ends a LIKE pattern
    at a NUL (``"%\\x00%"`` matched every row), PostgreSQL refuses NUL in text, and a lone
    surrogate cannot be encoded for either.
    """
    if search is None or not search.strip():
        return None
    if len(search) > MAX_SEARCH:
        raise DomainError(ErrorCode.INVALID_INPUT, f"'search' is at most {MAX_SEARCH} characters", "search")
    if (why := unstorable(search)) is not None:
        raise DomainError(ErrorCode.INVALID_INPUT, f"'search' {why}", "search")
    return _like(search.strip())


def _contains(column: Any, term: str) -> Any:
    return sa.func.lower(column).like(term, escape="\\")


def _user_matches(term: str) -> Any:
    """Display name, or any of the user's agents' logon or device name, contains the term."""
    agent_hit = (
        sa.select(sa.literal(1))
        .where(_AG.user_id == _U.id, sa.or_(_contains(_AG.logon_name, term), _contains(_AG.device_name, term)))
        .exists()
    )
    return sa.or_(_contains(_U.display_name, term), agent_hit)


@dataclass(frozen=True)
class _Keyset:
    """How one list sorts: its columns, their direction, and how to read a row's key."""

    kind: str
    columns: tuple[Any, ...]
    shape: tuple[type, ...]
    descending: bool = False

    def after(self, cursor: str) -> Any:
        values = _decode_cursor(self.kind, cursor, self.shape)
        # Bound with each column's type, so a timestamp compares in its stored form.
        bound = [sa.bindparam(None, v, type_=c.type) for c, v in zip(self.columns, values, strict=True)]
        left, right = sa.tuple_(*self.columns), sa.tuple_(*bound)
        return left < right if self.descending else left > right

    def order_by(self) -> list[Any]:
        return [c.desc() if self.descending else c.asc() for c in self.columns]

    def cursor(self, key: Sequence[Any]) -> str:
        return _encode_cursor(self.kind, [_cursor_value(v) for v in key])


async def _page(
    session: AsyncSession,
    keyset: _Keyset,
    columns: Sequence[Any],
    make: Callable[[Sequence[Any]], T],
    where: Sequence[Any],
    first: int,
    after: str | None,
) -> Page[T]:
    """Rows of ``columns`` (each made an item by ``make``), then the keyset columns for cursors."""
    check_first(first)
    conditions = list(where)
    if after:
        conditions.append(keyset.after(after))
    stmt = sa.select(*columns, *keyset.columns).where(*conditions).order_by(*keyset.order_by()).limit(first + 1)
    rows = (await session.execute(stmt)).all()
    has_next = len(rows) > first
    rows = rows[:first]
    n = len(columns)
    return Page(
        items=[make(r) for r in rows],
        cursors=[keyset.cursor(r[n:]) for r in rows],
        has_next=has_next,
    )


async def _count(session: AsyncSession, table: Any, where: Sequence[Any]) -> int:
    stmt = sa.select(sa.func.count()).select_from(table).where(*where)
    return int((await session.execute(stmt)).scalar_one())


# ---------------------------------------------------------------------------- lists


_NAME = sa.func.lower(_U.display_name)
_PENDING_ORDERS = {
    PendingOrder.ENTERED_ASC: _Keyset("pending:entered", (_U.pending_since, _U.id), (datetime, int)),
    PendingOrder.ENTERED_DESC: _Keyset(
        "pending:entered-desc", (_U.pending_since, _U.id), (datetime, int), descending=True
    ),
    PendingOrder.NAME_ASC: _Keyset("pending:name", (_NAME, _U.id), (str, int)),
}
_USERS = _Keyset("users:name", (_NAME, _U.id), (str, int))
_AGENTS = _Keyset("agents:key", (_AG.key, _AG.id), (str, int))
_AUDIT = _Keyset("audit:at", (_AU.at, _AU.id), (datetime, int), descending=True)


@dataclass(frozen=True)
class PendingFilter:
    account_id: int
    search: str | None = None
    reason: PendingReason | None = None

    def where(self) -> list[Any]:
        conditions: list[Any] = [_U.account_id == self.account_id, _U.status == UserStatus.PENDING]
        term = _search_term(self.search)
        if term is not None:
            conditions.append(_user_matches(term))
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
    return await _page(session, _PENDING_ORDERS[order], _USER_COLUMNS, _user_row, filt.where(), first, after)


async def pending_count(session: AsyncSession, filt: PendingFilter) -> int:
    return await _count(session, _USER, filt.where())


@dataclass(frozen=True)
class UserFilter:
    account_id: int
    search: str | None = None
    status: UserStatus | None = None

    def where(self) -> list[Any]:
        conditions: list[Any] = [_U.account_id == self.account_id]
        term = _search_term(self.search)
        if term is not None:
            conditions.append(_user_matches(term))
        if self.status is not None:
            conditions.append(_U.status == self.status)
        return conditions


async def users_page(session: AsyncSession, filt: UserFilter, first: int, after: str | None) -> Page[UserRow]:
    """Every user of the account, by name (case-insensitive), then id."""
    return await _page(session, _USERS, _USER_COLUMNS, _user_row, filt.where(), first, after)


async def users_count(session: AsyncSession, filt: UserFilter) -> int:
    return await _count(session, _USER, filt.where())


@dataclass(frozen=True)
class AgentFilter:
    account_id: int
    search: str | None = None

    def where(self) -> list[Any]:
        conditions: list[Any] = [_AG.account_id == self.account_id]
        term = _search_term(self.search)
        if term is not None:
            owner_hit = (
                sa.select(sa.literal(1)).where(_U.id == _AG.user_id, _contains(_U.display_name, term)).exists()
            )
            conditions.append(sa.or_(_contains(_AG.logon_name, term), _contains(_AG.device_name, term), owner_hit))
        return conditions


async def agents_page(session: AsyncSession, filt: AgentFilter, first: int, after: str | None) -> Page[AgentRow]:
    """Every agent of the account, by its normalised key (device, domain, logon)."""
    return await _page(session, _AGENTS, _AGENT_COLUMNS, _agent_row, filt.where(), first, after)


async def agents_count(session: AsyncSession, filt: AgentFilter) -> int:
    return await _count(session, _AGENT, filt.where())


def _first(row: Sequence[Any]) -> Any:
    return row[0]


async def audit_page(
    session: AsyncSession, account_id: int, first: int, after: str | None
) -> Page[AuditEntry]:
    """The account's audit trail, newest first (ORM entries: a page is read now and then)."""
    return await _page(session, _AUDIT, (AuditEntry,), _first, [_AU.account_id == account_id], first, after)


async def audit_count(session: AsyncSession, account_id: int) -> int:
    return await _count(session, _AUDIT_ENTRY, [_AU.account_id == account_id])


_SETTINGS_CHANGE = sa.inspect(SettingsChange).local_table
_SC = _SETTINGS_CHANGE.c
_SETTINGS = _Keyset("settings:id", (_SC.id,), (int,), descending=True)


async def settings_history_page(
    session: AsyncSession, account_id: int, first: int, after: str | None
) -> Page[SettingsChange]:
    """Who changed the account's settings and how, newest first."""
    return await _page(session, _SETTINGS, (SettingsChange,), _first, [_SC.account_id == account_id], first, after)


async def settings_history_count(session: AsyncSession, account_id: int) -> int:
    return await _count(session, _SETTINGS_CHANGE, [_SC.account_id == account_id])


# ---------------------------------------------------------------------------- batch loads


# The batch loads run on every list page: their statements are built once, with an
# expanding IN parameter, which spares building each one and its cache key per call.
_USERS_BY_ID = sa.select(*_USER_COLUMNS).where(
    _U.account_id == sa.bindparam("account_id"), _U.id.in_(sa.bindparam("ids", expanding=True))
)
_AGENTS_BY_USER = (
    sa.select(*_AGENT_COLUMNS)
    .where(_AG.account_id == sa.bindparam("account_id"), _AG.user_id.in_(sa.bindparam("ids", expanding=True)))
    .order_by(_AG.user_id, _AG.id)
)
# Served by ix_activity_user_start (user_id, start); summing duration_seconds still reads each
# event's row, the bulk of this query's time.
_RETAINED_BY_USER = (
    sa.select(
        _EV.user_id,
        sa.func.count(),
        sa.func.coalesce(sa.func.sum(_EV.duration_seconds), 0),
        sa.func.min(_EV.start),
    )
    .where(_EV.user_id.in_(sa.bindparam("ids", expanding=True)))
    .group_by(_EV.user_id)
)


async def users_by_id(session: AsyncSession, account_id: int, user_ids: Sequence[int]) -> dict[int, UserRow]:
    rows = await session.execute(_USERS_BY_ID, {"account_id": account_id, "ids": list(user_ids)})
    return {u.id: u for u in map(_user_row, rows)}


async def agents_by_user(
    session: AsyncSession, account_id: int, user_ids: Sequence[int]
) -> dict[int, list[AgentRow]]:
    """Each user's agents, oldest first."""
    rows = await session.execute(_AGENTS_BY_USER, {"account_id": account_id, "ids": list(user_ids)})
    found: dict[int, list[AgentRow]] = defaultdict(list)
    for agent in map(_agent_row, rows):
        found[agent.user_id].append(agent)
    return found


async def admins_by_id(session: AsyncSession, account_id: int, admin_ids: Sequence[int]) -> dict[int, Admin]:
    rows = (
        await session.execute(
            sa.select(Admin).where(Admin.account_id == account_id, Admin.id.in_(admin_ids))  # type: ignore[union-attr,arg-type]
        )
    ).scalars()
    return {a.id: a for a in rows if a.id is not None}


async def account_by_id(session: AsyncSession, account_id: int) -> Account | None:
    return (
        await session.execute(sa.select(Account).where(Account.id == account_id))  # type: ignore[arg-type]
    ).scalar_one_or_none()


async def agent_by_id(session: AsyncSession, account_id: int, agent_id: int) -> Agent | None:
    return (
        await session.execute(
            sa.select(Agent).where(Agent.account_id == account_id, Agent.id == agent_id)  # type: ignore[arg-type]
        )
    ).scalar_one_or_none()


# ---------------------------------------------------------------------------- pending info


@dataclass(frozen=True, slots=True)
class Retained:
    """What is stored of one user's activity."""

    event_count: int = 0
    active_seconds: int = 0
    oldest_start: datetime | None = None


@dataclass(frozen=True, slots=True)
class PendingInfo:
    reason: PendingReason
    entered_at: datetime
    retained_event_count: int
    retained_active_seconds: int
    oldest_retained_at: datetime | None
    # When the oldest retained event falls out of the rolling retention window (SPEC §4).
    data_expires_at: datetime | None


async def retained_by_user(session: AsyncSession, user_ids: Sequence[int]) -> dict[int, Retained]:
    """Counts, seconds and the oldest start of the stored activity, per user, in one query."""
    rows = await session.execute(_RETAINED_BY_USER, {"ids": list(user_ids)})
    return {int(uid): Retained(int(n), int(s), oldest) for uid, n, s, oldest in rows}


def pending_info(user: UserFields, retained: Retained, retention_days: int) -> PendingInfo | None:
    """``None`` unless the user is pending."""
    if user.status is not UserStatus.PENDING or user.pending_reason is None or user.pending_since is None:
        return None
    oldest = retained.oldest_start
    return PendingInfo(
        reason=user.pending_reason,
        entered_at=user.pending_since,
        retained_event_count=retained.event_count,
        retained_active_seconds=retained.active_seconds,
        oldest_retained_at=oldest,
        data_expires_at=None if oldest is None else oldest + timedelta(days=retention_days),
    )


def ordered(found: dict[int, T], keys: Iterable[int], default: T) -> list[T]:
    """Values for ``keys`` in order, ``default`` where missing (DataLoader batch results)."""
    return [found.get(k, default) for k in keys]


# ---------------------------------------------------------------------------- the hot path


