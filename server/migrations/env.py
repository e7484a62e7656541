"""Alembic environment: runs on a connection the server hands over, or opens its own."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

# Each registers its tables on SQLModel.metadata.
import server.domain.models
import server.domain.settings_history
import server.domain.undo.removed
import server.domain.webhooks.tables  # noqa: F401
from server.domain.reads.search import is_search_object

config = context.config
target_metadata = SQLModel.metadata


def _declared(name: str | None, type_: str, parent_names: object) -> bool:
    """Autogenerate compares the models' objects, not the search index's (migration 0015)."""
    return not is_search_object(name)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=_declared,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(_run)
    await engine.dispose()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get(
        "PLM_DATABASE_URL", "sqlite+aiosqlite:///./plm.db"
    )
    asyncio.run(_run_async(url))
