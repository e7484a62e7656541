"""The migrations build exactly the tables the models declare (shadow tables of removed rows
included), on SQLite and PostgreSQL: a column added to a model without its migration, or the
reverse, fails here rather than in a copy between a table and its shadow."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection
from sqlmodel import SQLModel

import server.domain.models
import server.domain.settings_history
import server.domain.undo.removed  # noqa: F401  (the tables above register on SQLModel.metadata)
from server.domain.reads.search import is_search_object
from server.infra.db import Database


async def test_the_migrated_schema_is_the_models(db: Database) -> None:
    def declared(name: str | None, type_: str, parent_names: object) -> bool:
        return not is_search_object(name)  # migration 0015's search index, beside the models

    def differences(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": declared}
        )
        return list(compare_metadata(context, SQLModel.metadata))

    async with db.write_engine.connect() as connection:
        found = await connection.run_sync(differences)
    assert found == []
