"""docs/behaviour.md, Reports: reports stay open; they count licensed users only, whatever the queue holds."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from server.domain import actions
from server.domain.activity import ingestion
from server.domain.activity.batch import Batch, Event
from server.domain.activity.report import UserActivity, activity_report
from server.domain.admission import AgentReport
from server.domain.errors import DomainError, ErrorCode
from server.infra.db import Database
from tests.server.domain import admin
from tests.support import START, make_tenant

DAY = START.date()


async def send(
    db: Database, account_id: int, device: str, logon: str, *events: tuple[int, str, str, int]
) -> int:
    """events: (day offset, app, productivity, seconds); returns the user id."""
    async with db.write() as s:
        result = await ingestion.ingest(
            s,
            account_id,
            Batch(
                f"{device}-{logon}-{len(events)}-{events[:1]}",
                AgentReport(device, "ACME", logon, logon.title()),
                [
                    Event(START + timedelta(days=d), secs, app, None, None, prod)
                    for d, app, prod, secs in events
                ],
            ),
            START,
        )
    assert result.user_id is not None
    return result.user_id


async def report(db: Database, account_id: int, lo: date, hi: date) -> list[UserActivity]:
    async with db.read() as s:
        return await activity_report(s, account_id, lo, hi)


async def test_sums_per_licensed_user_most_active_first_with_zero_rows(db: Database) -> None:
    tenant = await make_tenant(db, licenses=3)
    ann = await send(
        db,
        tenant.account_id,
        "PC1",
        "ann",
        (0, "excel.exe", "productive", 100),
        (0, "chrome.exe", "unproductive", 50),
    )
    bob = await send(
        db,
        tenant.account_id,
        "PC2",
        "bob",
        (0, "code.exe", "productive", 500),
        (0, "teams.exe", "neutral", 20),
    )
    idle = await send(db, tenant.account_id, "PC3", "cy")
    pending = await send(db, tenant.account_id, "PC4", "dee", (0, "excel.exe", "productive", 9999))
    rows = await report(db, tenant.account_id, DAY, DAY)
    assert [r.user.id for r in rows] == [bob, ann, idle]
    assert pending not in [r.user.id for r in rows]
    b, a, c = rows
    assert (b.active_seconds, b.productive_seconds, b.unproductive_seconds) == (520, 500, 0)
    assert (a.active_seconds, a.productive_seconds, a.unproductive_seconds) == (150, 100, 50)
    assert (c.active_seconds, c.top_apps) == (0, [])
    assert [(u.app, u.active_seconds) for u in b.top_apps] == [("code.exe", 500), ("teams.exe", 20)]


async def test_days_are_inclusive_utc_and_an_event_counts_on_the_day_it_starts(db: Database) -> None:
    tenant = await make_tenant(db, licenses=1)
    await send(
        db,
        tenant.account_id,
        "PC",
        "ann",
        (-1, "a", "neutral", 1),
        (0, "b", "neutral", 10),
        (1, "c", "neutral", 100),
        (2, "d", "neutral", 1000),
    )
    assert (await report(db, tenant.account_id, DAY, DAY + timedelta(days=1)))[0].active_seconds == 110
    assert (await report(db, tenant.account_id, DAY - timedelta(days=1), DAY - timedelta(days=1)))[
        0
    ].active_seconds == 1


async def test_top_apps_are_five(db: Database) -> None:
    tenant = await make_tenant(db, licenses=1)
    await send(db, tenant.account_id, "PC", "ann", *[(0, f"app{i}", "neutral", 10 * i) for i in range(1, 8)])
    (row,) = await report(db, tenant.account_id, DAY, DAY)
    assert [u.app for u in row.top_apps] == ["app7", "app6", "app5", "app4", "app3"]


async def test_an_approved_users_retained_activity_appears(db: Database) -> None:
    tenant = await make_tenant(db, licenses=0)
    user = await send(db, tenant.account_id, "PC", "ann", (0, "excel.exe", "productive", 300))
    assert await report(db, tenant.account_id, DAY, DAY) == []
    async with db.write() as s:
        await actions.update_settings(s, admin(tenant.account_id), START, license_limit=1)
        await actions.approve(s, admin(tenant.account_id), [user], START)
    (row,) = await report(db, tenant.account_id, DAY, DAY)
    assert (row.user.id, row.active_seconds) == (user, 300)


async def test_reports_stay_open_over_the_limit(db: Database) -> None:
    tenant = await make_tenant(db, licenses=1)
    await send(db, tenant.account_id, "PC1", "ann", (0, "a", "neutral", 5))
    for i in range(5):
        await send(db, tenant.account_id, f"X{i}", f"x{i}", (0, "a", "neutral", 5))
    (row,) = await report(db, tenant.account_id, DAY, DAY)
    assert row.active_seconds == 5


@pytest.mark.parametrize(("lo", "hi"), [(DAY, DAY - timedelta(days=1)), (DAY, DAY + timedelta(days=366))])
async def test_a_bad_range_is_invalid_input(db: Database, lo: date, hi: date) -> None:
    tenant = await make_tenant(db)
    with pytest.raises(DomainError) as info:
        await report(db, tenant.account_id, lo, hi)
    assert info.value.code is ErrorCode.INVALID_INPUT
