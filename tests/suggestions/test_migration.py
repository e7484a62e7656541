"""Migration 0011: a database from before likely matches held both ways gets them for every
user, licensed and earlier pending ones included.

The migration's work (``recompute_all``) runs here on the state an older server left; going
back down the chain first would run today's models against an older schema."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy import Connection

from server.domain.models import Suggestion, utcnow
from server.domain.suggestions.store import recompute_all
from server.infra.db import Database
from tests.server.domain import count
from tests.suggestions.helpers import local
from tests.support import START, make_tenant


def _upgrade(connection: Connection) -> None:
    # What migration 0011's upgrade() does with its connection.
    recompute_all(connection, utcnow())


async def test_upgrading_computes_every_users_likely_matches(db_url: str) -> None:
    db = Database(db_url)
    try:
        await db.migrate()  # the test's PostgreSQL databases come migrated; SQLite's file does not
        t = await make_tenant(db, licenses=2)
        licensed = [
            await local(
                db, t.account_id, device, "emccarthy", "Edsger McCarthy", now=START + i * timedelta(days=1)
            )
            for i, device in enumerate(("LAPTOP-5800", "LAPTOP-5800B"))
        ]
        pending = [
            await local(
                db, t.account_id, device, "sstroustrup", "Shafi Stroustrup", now=START + i * timedelta(days=1)
            )
            for i, device in enumerate(("LAPTOP-9980", "LAPTOP-9980B"))
        ]
        assert [a.status for a in licensed + pending] == ["LICENSED", "LICENSED", "PENDING", "PENDING"]
        # What the older server left: no licensed user's matches, no earlier duplicate's.
        async with db.write() as s:
            await s.execute(
                sa.delete(Suggestion).where(
                    Suggestion.pending_user_id.in_(
                        [licensed[0].user_id, licensed[1].user_id, pending[0].user_id]
                    )  # type: ignore[attr-defined]
                )
            )

        async with db.write_engine.begin() as conn:
            await conn.run_sync(_upgrade)

        for user in licensed + pending:
            assert await count(db, Suggestion, Suggestion.pending_user_id == user.user_id) == 1
    finally:
        await db.dispose()
