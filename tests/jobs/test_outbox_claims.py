"""Two senders' claims on PostgreSQL: a row the other sender claimed and committed while this
claim's statement ran is re-checked against its new version, and not taken twice.

The race (tests/e2e/test_postgres_webhooks.py met it under load, once in many runs): claim B
takes its snapshot, claim A commits its claim of a row, B reaches the row, which is no longer
locked, locks it and re-checks it. PostgreSQL re-checks only the outer query's conditions,
so they must say "due". Here A holds the row until B waits for it (B locks without SKIP
LOCKED, which would skip the row instead of waiting: the re-check is the same), then commits.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from server.domain.models import OutboxMessage, OutboxStatus, utcnow
from server.infra.db import Database
from server.infra.outbox import Kind, claimable
from tests.support import Tenant


async def _blocked(engine: AsyncEngine) -> None:
    """Until a session of this database waits for a row lock."""
    while True:
        async with engine.connect() as conn:
            waiting = (
                await conn.execute(sa.text("SELECT count(*) FROM pg_locks WHERE NOT granted"))
            ).scalar_one()
        if waiting:
            return
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("backend", ["postgres"])  # the conftest's db, on PostgreSQL only
@pytest.mark.parametrize("per_destination", [8, None])
async def test_a_row_claimed_meanwhile_is_not_claimed_again(
    db: Database, tenant: Tenant, per_destination: int | None
) -> None:
    now = utcnow()
    async with db.write() as session:
        session.add(
            OutboxMessage(
                kind=Kind.WEBHOOK.value,
                account_id=tenant.account_id,
                message_id="msg_race",
                sender="",
                recipient="1",
                subject="",
                content="{}",
                status=OutboxStatus.PENDING,
                next_attempt_at=now - timedelta(seconds=1),
                created_at=now,
            )
        )
    engine = create_async_engine(db.url)
    try:
        async with engine.connect() as a, engine.connect() as b:
            await a.begin()
            # Sender A's claim, not committed yet.
            table = OutboxMessage.__table__  # type: ignore[attr-defined]
            await a.execute(sa.update(table).values(next_attempt_at=now + timedelta(seconds=60)))
            await b.begin()
            statement = claimable(Kind.WEBHOOK, now, per_destination).with_for_update()
            claim_b = asyncio.create_task(b.execute(statement))
            await asyncio.wait_for(_blocked(engine), 10)
            await a.commit()
            taken = (await asyncio.wait_for(claim_b, 10)).all()
            await b.rollback()
        assert taken == []
    finally:
        await engine.dispose()
