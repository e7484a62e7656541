"""A list's ``search``: a case-insensitive substring of a user's name or an agent's logon or
device name, found through an index made for substrings rather than a scan.

Each search is two conditions. The *exact* one is the rule itself (``lower(column) LIKE
'%term%'``, with ``%``, ``_`` and ``\\`` escaped), so results never depend on the index. The
*candidate* one is ``id IN (...)`` the rows the trigram index finds, which lets the planner
start from the few rows that can match instead of reading every row of the account:

- SQLite: the FTS5 tables ``user_search`` and ``agent_search`` (``tokenize='trigram'``,
  external content over ``user`` and ``agent``, kept current by triggers; migration 0015).
  A trigram phrase query finds every row whose text holds the term's trigrams in a row, with
  a Unicode case fold that is a superset of the exact condition's ASCII ``lower``.
- PostgreSQL: GIN ``gin_trgm_ops`` indexes on ``lower(display_name)``, ``lower(logon_name)``
  and ``lower(device_name)``; the candidate condition is the exact ``LIKE`` per table, which
  ``pg_trgm`` answers from the index.

A term under three characters has no trigram: it is searched by the exact condition alone,
a scan of the account's rows (short terms match many rows, so a page fills early).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal

from server.domain.errors import DomainError, ErrorCode
from server.domain.reads.rows import AGENT, USER
from server.domain.text import unstorable

MAX_SEARCH = 256
TRIGRAM = 3

# What migration 0015 creates beside the models' tables: the schema check and Alembic's
# autogenerate leave these alone (the FTS5 tables' own shadow tables share the prefixes).
SEARCH_TABLES = ("user_search", "agent_search")
SEARCH_INDEXES = ("ix_user_name_trgm", "ix_agent_logon_trgm", "ix_agent_device_trgm")

_U, _AG = USER.c, AGENT.c
# An FTS5 table's hidden column of its own name stands for the whole row in a MATCH.
_USER_FTS, _AGENT_FTS = (
    sa.table(name, sa.column("rowid", sa.Integer), sa.column(name, sa.Text)) for name in SEARCH_TABLES
)


def is_search_object(name: str | None) -> bool:
    """Whether a table or index is one of the search index's (not declared by the models)."""
    return name is not None and (name.startswith(SEARCH_TABLES) or name in SEARCH_INDEXES)


@dataclass(frozen=True, slots=True)
class SearchTerm:
    """A ``search`` argument, lower-cased: its ``LIKE`` pattern and its FTS5 phrase, if any."""

    text: str

    @property
    def like(self) -> str:
        escaped = self.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return f"%{escaped}%"

    @property
    def phrase(self) -> str | None:
        """An FTS5 string (double quotes doubled): every character literal, no operator."""
        if len(self.text) < TRIGRAM:
            return None
        return '"' + self.text.replace('"', '""') + '"'


def parse(search: str | None) -> SearchTerm | None:
    """The term of a list's ``search`` argument; ``None`` for no search.

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
    return SearchTerm(search.strip().lower())


def _contains(column: Any, term: SearchTerm) -> Any:
    return sa.func.lower(column).like(term.like, escape="\\")


def _agent_contains(term: SearchTerm) -> Any:
    return sa.or_(_contains(_AG.logon_name, term), _contains(_AG.device_name, term))


class _Candidates(sa.ColumnElement[bool]):
    """One condition, written per database: ``sqlite`` where the FTS5 tables exist, else ``other``."""

    inherit_cache = True
    type = sa.Boolean()
    # A condition already: SQLite must not get ``... = 1``, which no index can answer.
    _is_implicitly_boolean = True
    _traverse_internals = [
        ("sqlite", InternalTraversal.dp_clauseelement),
        ("other", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, sqlite: Any, other: Any) -> None:
        self.sqlite, self.other = sqlite, other


@compiles(_Candidates)
def _compile_other(element: _Candidates, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.other, **kw)


@compiles(_Candidates, "sqlite")
def _compile_sqlite(element: _Candidates, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.sqlite, **kw)


def _fts(table: Any, phrase: str) -> Any:
    """The rowids an FTS5 table finds for a phrase."""
    return sa.select(table.c.rowid).where(table.c[table.name].match(phrase))


def _agent_ids(term: SearchTerm, phrase: str) -> tuple[Any, Any]:
    """The ids of agents whose logon or device may hold the term: (SQLite, other).

    Candidates of every account: the caller's conditions keep its own account's, and a
    condition on the account here would lead the planner to its index instead of the search's.
    """
    return _fts(_AGENT_FTS, phrase), sa.select(_AG.id).where(_agent_contains(term))


def user_matches(term: SearchTerm) -> list[Any]:
    """A user's name, or any of their agents' logon or device name, holds the term."""
    agent_hit = sa.select(sa.literal(1)).where(_AG.user_id == _U.id, _agent_contains(term)).exists()
    exact = sa.or_(_contains(_U.display_name, term), agent_hit)
    if (phrase := term.phrase) is None:
        return [exact]
    by_agent = _agent_ids(term, phrase)
    owners = [sa.select(_AG.user_id).where(_AG.id.in_(ids)) for ids in by_agent]
    sqlite = _U.id.in_(sa.union(_fts(_USER_FTS, phrase), owners[0]))
    named = sa.select(_U.id).where(_contains(_U.display_name, term))
    other = _U.id.in_(sa.union(named, owners[1]))
    return [_Candidates(sqlite, other), exact]


def agent_matches(term: SearchTerm) -> list[Any]:
    """An agent's logon or device name, or its owner's name, holds the term."""
    owner_hit = (
        sa.select(sa.literal(1)).where(_U.id == _AG.user_id, _contains(_U.display_name, term)).exists()
    )
    exact = sa.or_(_agent_contains(term), owner_hit)
    if (phrase := term.phrase) is None:
        return [exact]
    own = _agent_ids(term, phrase)
    owned_by = (
        sa.select(_AG.id).where(_AG.user_id.in_(_fts(_USER_FTS, phrase))),
        sa.select(_AG.id).where(_AG.user_id.in_(sa.select(_U.id).where(_contains(_U.display_name, term)))),
    )
    sqlite = _AG.id.in_(sa.union(own[0], owned_by[0]))
    other = _AG.id.in_(sa.union(own[1], owned_by[1]))
    return [_Candidates(sqlite, other), exact]
