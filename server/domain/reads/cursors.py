"""Ids and cursors as clients see them, and keyset pages.

Lists paginate by keyset (``WHERE (sort key, id) > (cursor)``), never ``OFFSET``: a page
deep in a 10,000-row queue costs the same as the first, and rows entering or leaving the
queue between two pages never shift a row past the client. Cursors are opaque: base64 of
the list's name and the last row's sort key, so a cursor from one list or order is refused
by another instead of silently returning the wrong rows.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from server.domain.errors import DomainError, ErrorCode
from server.domain.text import unstorable

MAX_PAGE = 500
# Primary keys are INTEGER columns, 32-bit on PostgreSQL (asyncpg refuses to bind a larger
# value); the schema is the same on SQLite. No row has a larger id.
MAX_ID = 2**31 - 1
T = TypeVar("T")


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


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _encode_cursor(kind: str, key: Sequence[Any]) -> str:
    # orjson: compact JSON as ``json.dumps(..., separators=(",", ":"))`` writes it, in a
    # quarter of the time (a page encodes a cursor per row). Text outside ASCII is written
    # as UTF-8 rather than escaped; _decode_cursor reads both. The base64 is
    # ``urlsafe_b64encode``'s, without its two extra copies.
    raw = binascii.b2a_base64(orjson.dumps([kind, *key]), newline=False)
    return raw.translate(_URLSAFE).rstrip(b"=").decode()


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
    """One page of a list: the rows, a cursor per row, and whether more follow.

    ``whole`` tells that the page is the whole list: the first page (no ``after``) with
    nothing after it. Its rows are then every row the list's conditions find, so their number
    is the list's count in the same snapshot (:attr:`count`), and no count query is needed.
    """

    items: list[T]
    cursors: list[str]
    has_next: bool
    whole: bool = False

    @property
    def end_cursor(self) -> str | None:
        return self.cursors[-1] if self.cursors else None

    @property
    def count(self) -> int | None:
        """The list's count when the page is the whole list, else ``None`` (count by query)."""
        return len(self.items) if self.whole else None


def check_first(first: int) -> None:
    if not 1 <= first <= MAX_PAGE:
        raise DomainError(
            ErrorCode.INVALID_INPUT, f"'first' must be from 1 to {MAX_PAGE}; got {first}", "first"
        )


@dataclass(frozen=True)
class Keyset:
    """How one list sorts: its columns, their direction, and how to read a row's key."""

    kind: str
    columns: tuple[Any, ...]
    shape: tuple[type, ...]
    descending: bool = False

    def after(self, cursor: str) -> Any:
        values = _decode_cursor(self.kind, cursor, self.shape)
        # Bound with each column's type, so a timestamp compares in its stored form.
        bound = [sa.bindparam(None, v, type_=c.type) for c, v in zip(self.columns, values, strict=True)]
        return self._past(bound)

    def _past(self, bound: Sequence[Any]) -> Any:
        left, right = sa.tuple_(*self.columns), sa.tuple_(*bound)
        return left < right if self.descending else left > right

    def after_bound(self) -> Any:
        """:meth:`after`'s condition with the cursor's values as bind parameters
        (:meth:`after_params`), for a statement built once."""
        return self._past([sa.bindparam(f"after_{i}", type_=c.type) for i, c in enumerate(self.columns)])

    def after_params(self, cursor: str) -> dict[str, Any]:
        """The values :meth:`after_bound` takes for ``cursor``; ``DomainError`` as :meth:`after`."""
        values = _decode_cursor(self.kind, cursor, self.shape)
        return {f"after_{i}": v for i, v in enumerate(values)}

    def order_by(self) -> list[Any]:
        return [c.desc() if self.descending else c.asc() for c in self.columns]

    def cursor(self, key: Sequence[Any]) -> str:
        for value in key:
            cls = type(value)
            if cls is datetime:
                if value.tzinfo is not UTC:
                    break
            elif cls is not int and cls is not str:
                break
        else:
            # orjson writes a UTC datetime exactly as ``isoformat()`` does, and keys are
            # stored in UTC: every page's case needs no list and no ``isoformat`` call.
            return _encode_cursor(self.kind, key)
        return _encode_cursor(self.kind, [_cursor_value(v) for v in key])


async def keyset_page(
    session: AsyncSession,
    keyset: Keyset,
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
    stmt = (
        sa.select(*columns, *keyset.columns).where(*conditions).order_by(*keyset.order_by()).limit(first + 1)
    )
    rows = (await session.execute(stmt)).all()
    return _page(keyset, len(columns), make, rows, first, after)


def _page(
    keyset: Keyset,
    n: int,
    make: Callable[[Sequence[Any]], T],
    rows: Sequence[Any],
    first: int,
    after: str | None,
) -> Page[T]:
    has_next = len(rows) > first
    rows = rows[:first]
    return Page(
        items=[make(r) for r in rows],
        cursors=[keyset.cursor(r[n:]) for r in rows],
        has_next=has_next,
        whole=not after and not has_next,
    )


# The page size's bind parameter in a statement of :func:`page_statement`.
_LIMIT = sa.bindparam("page_limit", type_=sa.Integer())


def page_statement(keyset: Keyset, columns: Sequence[Any], where: Sequence[Any], after: bool) -> Any:
    """A keyset page's statement, built once and run by :func:`bound_page` with its parameters:
    ``where``'s, the page size's and (``after``) the cursor's."""
    stmt = sa.select(*columns, *keyset.columns).where(*where)
    if after:
        stmt = stmt.where(keyset.after_bound())
    return stmt.order_by(*keyset.order_by()).limit(_LIMIT)


async def bound_page(
    session: AsyncSession,
    keyset: Keyset,
    statement: Callable[[bool], Any],
    n_columns: int,
    make: Callable[[Sequence[Any]], T],
    params: dict[str, Any],
    first: int,
    after: str | None,
) -> Page[T]:
    """:func:`keyset_page` over a built statement: ``statement(after given)`` is one of
    :func:`page_statement`, of ``n_columns`` columns before the keyset's, run with ``params``."""
    check_first(first)
    values = {**params, _LIMIT.key: first + 1}
    if after:
        values.update(keyset.after_params(after))
    rows = (await session.execute(statement(bool(after)), values)).all()
    return _page(keyset, n_columns, make, rows, first, after)
