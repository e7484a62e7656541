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

The conditions hold the term as bind parameters (:data:`LIKE`, :data:`PHRASE`; their values:
:func:`params`), so they are built once per kind of term (with a trigram or not), and so
are the statements over them: a search costs no statement building and no SQLAlchemy cache
key of its own, whatever its text.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
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


# The term's values, bound when a statement runs (:func:`params`).
LIKE = sa.bindparam("search_like", type_=sa.String())
PHRASE = sa.bindparam("search_phrase", type_=sa.String())


def params(term: SearchTerm) -> dict[str, str]:
    """The bind parameters of the conditions :func:`user_matches` and :func:`agent_matches`
    build for ``term``."""
    phrase = term.phrase
    return {LIKE.key: term.like} if phrase is None else {LIKE.key: term.like, PHRASE.key: phrase}


def _contains(column: Any) -> Any:
    return sa.func.lower(column).like(LIKE, escape="\\")


def _agent_contains() -> Any:
    return sa.or_(_contains(_AG.logon_name), _contains(_AG.device_name))


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


def _fts(table: Any) -> Any:
    """The rowids an FTS5 table finds for the phrase."""
    return sa.select(table.c.rowid).where(table.c[table.name].match(PHRASE))


def _agent_ids() -> tuple[Any, Any]:
    """The ids of agents whose logon or device may hold the term: (SQLite, other).

    Candidates of every account: the caller's conditions keep its own account's, and a
    condition on the account here would lead the planner to its index instead of the search's.
    """
    return _fts(_AGENT_FTS), sa.select(_AG.id).where(_agent_contains())


@cache
def user_matches(trigram: bool) -> tuple[Any, ...]:
    """A user's name, or any of their agents' logon or device name, holds the term; with the
    trigram index's candidates first for a term of three characters or more (``trigram``)."""
    agent_hit = sa.select(sa.literal(1)).where(_AG.user_id == _U.id, _agent_contains()).exists()
    exact = sa.or_(_contains(_U.display_name), agent_hit)
    if not trigram:
        return (exact,)
    by_agent = _agent_ids()
    owners = [sa.select(_AG.user_id).where(_AG.id.in_(ids)) for ids in by_agent]
    sqlite = _U.id.in_(sa.union(_fts(_USER_FTS), owners[0]))
    named = sa.select(_U.id).where(_contains(_U.display_name))
    other = _U.id.in_(sa.union(named, owners[1]))
    return (_Candidates(sqlite, other), exact)


@cache
def agent_matches(trigram: bool) -> tuple[Any, ...]:
    """An agent's logon or device name, or its owner's name, holds the term (``trigram``: as
    :func:`user_matches`)."""
    owner_hit = sa.select(sa.literal(1)).where(_U.id == _AG.user_id, _contains(_U.display_name)).exists()
    exact = sa.or_(_agent_contains(), owner_hit)
    if not trigram:
        return (exact,)
    own = _agent_ids()
    owned_by = (
        sa.select(_AG.id).where(_AG.user_id.in_(_fts(_USER_FTS))),
        sa.select(_AG.id).where(_AG.user_id.in_(sa.select(_U.id).where(_contains(_U.display_name)))),
    )
    sqlite = _AG.id.in_(sa.union(own[0], owned_by[0]))
    other = _AG.id.in_(sa.union(own[1], owned_by[1]))
    return (_Candidates(sqlite, other), exact)
