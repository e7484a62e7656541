"""What statements a piece of work runs, and whether SQLite's planner reads a whole table for any."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from server.infra.db import Database


@contextmanager
def statements(db: Database) -> Iterator[list[tuple[str, Any]]]:
    """The statements the write transactions run, with their parameters."""
    seen: list[tuple[str, Any]] = []

    def on_execute(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    event.listen(db.write_engine.sync_engine, "before_cursor_execute", on_execute)
    try:
        yield seen
    finally:
        event.remove(db.write_engine.sync_engine, "before_cursor_execute", on_execute)


def scans(path: str, seen: list[tuple[str, Any]]) -> list[str]:
    """Every full scan of a table SQLite's planner chose for these statements."""
    found = []
    with sqlite3.connect(path) as conn:
        for statement, parameters in seen:
            if not statement.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE")):
                continue
            for row in conn.execute(f"EXPLAIN QUERY PLAN {statement}", parameters):
                detail = str(row[3])
                # "SCAN t" reads every row of t; "SCAN 2 CONSTANT ROWS" and "SEARCH t USING
                # INDEX" do not.
                if detail.startswith("SCAN ") and "CONSTANT ROW" not in detail:
                    found.append(f"{detail}: {statement.split(chr(10))[0]}")
    return found
