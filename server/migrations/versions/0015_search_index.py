"""search index: trigram indexes for a list's substring search over names, logons and devices

SQLite: two FTS5 tables with the trigram tokenizer, ``user_search`` (display_name) and
``agent_search`` (logon_name, device_name), external content over ``user`` and ``agent``
(they store only the index), kept current by triggers on every insert, delete and change of
those columns, whichever code path writes them (admission, merge, assign, undo, removal).
PostgreSQL: the ``pg_trgm`` extension and a GIN index on each ``lower(...)`` the search reads.
See ``server/domain/reads/search.py``.

A later migration that rebuilds ``user`` or ``agent`` with ``batch_alter_table`` on SQLite
drops their triggers with the old table: it must create them again (``_triggers`` below).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (fts table, content table, indexed columns)
_FTS = (
    ("user_search", "user", ("display_name",)),
    ("agent_search", "agent", ("logon_name", "device_name")),
)
_TRGM = (
    ("ix_user_name_trgm", "user", "display_name"),
    ("ix_agent_logon_trgm", "agent", "logon_name"),
    ("ix_agent_device_trgm", "agent", "device_name"),
)


def _triggers(fts: str, table: str, columns: tuple[str, ...]) -> list[str]:
    names = ", ".join(columns)
    new = ", ".join(f"new.{c}" for c in columns)
    old = ", ".join(f"old.{c}" for c in columns)
    insert = f"INSERT INTO {fts}(rowid, {names}) VALUES (new.id, {new});"
    delete = f"INSERT INTO {fts}({fts}, rowid, {names}) VALUES ('delete', old.id, {old});"
    return [
        f'CREATE TRIGGER {fts}_insert AFTER INSERT ON "{table}" BEGIN {insert} END',
        f'CREATE TRIGGER {fts}_delete AFTER DELETE ON "{table}" BEGIN {delete} END',
        f'CREATE TRIGGER {fts}_update AFTER UPDATE OF {names} ON "{table}" BEGIN {delete} {insert} END',
    ]


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for fts, table, columns in _FTS:
            op.execute(
                f"CREATE VIRTUAL TABLE {fts} USING fts5({', '.join(columns)}, "
                f"content='{table}', content_rowid='id', tokenize='trigram')"
            )
            for statement in _triggers(fts, table, columns):
                op.execute(statement)
            op.execute(f"INSERT INTO {fts}({fts}) VALUES ('rebuild')")
    else:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for index, table, column in _TRGM:
            op.execute(f'CREATE INDEX {index} ON "{table}" USING gin (lower({column}) gin_trgm_ops)')


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for fts, _table, _columns in _FTS:
            for kind in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER IF EXISTS {fts}_{kind}")
            op.execute(f"DROP TABLE IF EXISTS {fts}")
    else:
        for index, _table, _column in _TRGM:
            op.execute(f"DROP INDEX IF EXISTS {index}")
