"""Drivers for suggestion tests: arrivals with names, and the stored suggestions."""

from __future__ import annotations

from datetime import datetime, timedelta

from server.domain.admission import Admission
from server.domain.suggestions.store import Found, suggestions_by_user
from server.infra.db import Database
from tests.server.domain import arrive
from tests.support import START

LATER = START + timedelta(days=3)


async def person(
    db: Database,
    account_id: int,
    device: str,
    logon: str,
    name: str,
    *,
    domain: str = "ACME",
    now: datetime = START,
) -> Admission:
    return await arrive(db, account_id, device, logon, domain=domain, name=name, now=now)


async def local(
    db: Database, account_id: int, device: str, logon: str, name: str, *, now: datetime = START
) -> Admission:
    """A local account: its domain is its device's name."""
    return await arrive(db, account_id, device, logon, domain=device, name=name, now=now)


async def suggested(db: Database, account_id: int, user_id: int | None) -> list[Found]:
    assert user_id is not None
    async with db.read() as s:
        return (await suggestions_by_user(s, account_id, [user_id])).get(user_id, [])


def target(found: Found) -> tuple[str, int | None]:
    """``("ASSIGN", user id)`` or ``("MERGE", agent id)``."""
    if found.agent is not None:
        return found.kind.value, found.agent.id
    assert found.user is not None
    return found.kind.value, found.user.id
