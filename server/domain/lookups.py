"""Many composite keys looked up in one statement, through the index.

``(a, b) IN (VALUES (?, ?), ...)`` reads the whole table on SQLite: its planner uses no index
for a row-value IN list, so a look-up of a group commit's agent keys or batch ids cost a scan
of every agent, alias or stored batch id. An OR of equalities uses the index once per key,
on SQLite (``MULTI-INDEX OR``) and PostgreSQL (``BitmapOr``) alike.

The condition for ``n`` keys is built once, with bind parameters (``k{i}_{j}``: key ``i``,
column ``j``): building a statement costs more than running it on SQLite. ``n`` is a power
of two (:func:`chunked` repeats the last key up to it), so a statement has a few forms for
the engine's compiled cache and asyncpg's prepared statements, not one per count.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa

#: Keys per statement (a power of two). SQLite parses an OR chain into a tree as deep as
#: its terms, and refuses one deeper than 1,000.
CHUNK = 256


@functools.cache
def any_of(columns: tuple[sa.ColumnElement[Any], ...], n: int) -> sa.ColumnElement[bool]:
    """``columns`` equal to one of ``n`` keys, given by :func:`params`."""
    return sa.or_(
        *(sa.and_(*(c == sa.bindparam(f"k{i}_{j}") for j, c in enumerate(columns))) for i in range(n))
    )


def params(keys: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """The bind parameters of :func:`any_of` for these keys."""
    return {f"k{i}_{j}": value for i, key in enumerate(keys) for j, value in enumerate(key)}


def chunked(keys: Sequence[Any]) -> Iterator[Sequence[Any]]:
    """``keys`` in lists of at most :data:`CHUNK`, each as long as a power of two (the last
    key repeated: looking a key up twice finds it once)."""
    for start in range(0, len(keys), CHUNK):
        chunk = list(keys[start : start + CHUNK])
        size = 1 << (len(chunk) - 1).bit_length()
        yield chunk + chunk[-1:] * (size - len(chunk))
