"""The admin-token lookup of a cached GraphQL answer, on SQLite, without leaving the event loop."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from server.domain.auth import TOKEN_PREFIX, hash_secret, shaped_like


@dataclass(frozen=True, slots=True)
class TokenInfo:
    admin_id: int
    account_id: int
    role: str
    queue_version: int


class SqliteTokenLookup:
    """Token -> (admin, account, role, queue version) on SQLite, without leaving the event loop.

    A cached queue page needs only this one indexed read. Through the async driver it costs
    about ten thread hand-offs (pool, BEGIN, execute, fetch, ROLLBACK...), several times the
    query itself; a plain ``sqlite3`` read-only connection answers in tens of microseconds.
    WAL readers never wait for writers; should the database still be busy, ``None`` tells
    the caller to take the ordinary async path.
    """

    _SQL = (
        "SELECT admin.id, admin.account_id, admin.role, account.queue_version FROM admin "
        "JOIN account ON account.id = admin.account_id WHERE admin.token_hash = ?"
    )

    def __init__(self, path: str) -> None:
        self._conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        self._conn.execute("PRAGMA busy_timeout=0")

    def lookup(self, token: str) -> TokenInfo | bool | None:
        """The token's info; ``None`` for no such token; ``False`` when the lookup could not run."""
        if not shaped_like(token, TOKEN_PREFIX):
            return None
        try:
            row = self._conn.execute(self._SQL, (hash_secret(token),)).fetchone()
        except sqlite3.Error:
            return False
        return None if row is None else TokenInfo(int(row[0]), int(row[1]), str(row[2]), int(row[3]))

    def close(self) -> None:
        self._conn.close()
