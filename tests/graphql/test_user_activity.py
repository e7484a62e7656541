"""``User.activity(days)`` and ``User.lastActivityAt`` through ``schema.execute`` (docs/behaviour.md,
Activity of one user), on SQLite and PostgreSQL, with the test's clock as "now"."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from server.domain import retention
from server.domain.activity import ingestion
from server.domain.activity.batch import Batch, Event
from server.domain.admission import AgentReport
from server.infra.db import Database
from tests.graphql.helpers import Gql
from tests.support import FakeClock, Tenant, make_tenant

USER = """
query($id: ID!, $days: Int! = 30) {
  user(id: $id) {
    status lastActivityAt
    pending { retainedEventCount retainedActiveSeconds oldestRetainedAt }
    activity(days: $days) {
      days activeSeconds productiveSeconds unproductiveSeconds
      topApps { app activeSeconds }
      daily { date activeSeconds productiveSeconds unproductiveSeconds }
    }
  }
}
"""

_batches = itertools.count()


async def report(
    db: Database,
    tenant: Tenant,
    logon: str,
    now: datetime,
    *events: tuple[datetime, int, str, str],
) -> int:
    """``(start, seconds, app, productivity)`` events from ``logon``'s laptop; the user's id."""
    batch = Batch(
        f"b{next(_batches)}",
        AgentReport(f"PC-{logon}", "ACME", logon, logon.title()),
        [Event(start, secs, app, None, None, kind) for start, secs, app, kind in events],
    )
    async with db.write() as s:
        result = await ingestion.ingest(s, tenant.account_id, batch, now)
    assert result.user_id is not None
    return result.user_id


async def read(gql: Gql, tenant: Tenant, user_id: int, days: int = 30, token: str | None = None) -> Any:
    user = (await gql(token or tenant.admin_token, USER, id=str(user_id), days=days)).ok()["user"]
    summary = user["activity"]
    # Whatever else a test checks: the rows add up to the totals, one row per day, oldest first.
    for field in ("activeSeconds", "productiveSeconds", "unproductiveSeconds"):
        assert sum(d[field] for d in summary["daily"]) == summary[field], summary
    dates = [date.fromisoformat(d["date"]) for d in summary["daily"]]
    assert len(dates) == days == summary["days"]
    assert dates == [dates[-1] - timedelta(days=days - 1 - i) for i in range(days)]
    return user


def day(user: Any, when: date) -> dict[str, Any]:
    (row,) = [d for d in user["activity"]["daily"] if d["date"] == when.isoformat()]
    return dict(row)


async def test_one_row_per_utc_day_with_the_days_without_activity(
    gql: Gql, db: Database, clock: FakeClock
) -> None:
    t = await make_tenant(db, licenses=0)
    now = clock.now  # 2026-11-26 09:00 UTC
    uid = await report(
        db,
        t,
        "ann",
        now,
        (now - timedelta(days=2), 600, "excel.exe", "productive"),
        (now - timedelta(days=2, hours=1), 60, "games.exe", "unproductive"),
        (now - timedelta(minutes=30), 120, "excel.exe", "neutral"),
    )

    user = await read(gql, t, uid, days=7)

    assert user["activity"]["daily"][0]["date"] == "2026-11-20"
    assert user["activity"]["daily"][-1]["date"] == "2026-11-26"
    assert day(user, date(2026, 11, 24)) == {
        "date": "2026-11-24",
        "activeSeconds": 660,
        "productiveSeconds": 600,
        "unproductiveSeconds": 60,
    }
    assert day(user, date(2026, 11, 26))["activeSeconds"] == 120
    assert [d["activeSeconds"] for d in user["activity"]["daily"]] == [0, 0, 0, 0, 660, 0, 120]
    assert (user["activity"]["activeSeconds"], user["activity"]["productiveSeconds"]) == (780, 600)
    assert user["activity"]["unproductiveSeconds"] == 60


async def test_days_from_1_to_90_else_bad_user_input(gql: Gql, db: Database, clock: FakeClock) -> None:
    t = await make_tenant(db, licenses=0)
    uid = await report(
        db,
        t,
        "ann",
        clock.now,
        (clock.now - timedelta(days=89, hours=23), 50, "old.exe", "neutral"),
        (clock.now - timedelta(hours=1), 10, "new.exe", "neutral"),
    )

    assert (await read(gql, t, uid, days=1))["activity"]["activeSeconds"] == 10
    wide = await read(gql, t, uid, days=90)
    assert wide["activity"]["activeSeconds"] == 60
    assert wide["activity"]["daily"][0]["activeSeconds"] == 50

    for bad in (0, 91, -1):
        result = await gql(t.admin_token, USER, id=str(uid), days=bad)
        assert result.codes == ["BAD_USER_INPUT"], result.errors
        assert "from 1 to 90" in result.errors[0]["message"]


async def test_a_pending_users_activity_over_its_retention_is_what_pending_info_retains(
    gql: Gql, db: Database, clock: FakeClock
) -> None:
    t = await make_tenant(db, licenses=0, retention_days=30)
    arrived = clock.now
    uid = await report(db, t, "ann", arrived, (arrived, 30, "excel.exe", "productive"))
    now = clock.advance(days=40)
    await report(
        db,
        t,
        "ann",
        now,
        (now - timedelta(days=30, hours=12), 1000, "purged.exe", "productive"),
        (now - timedelta(days=29, hours=12), 300, "teams.exe", "productive"),
        (now - timedelta(days=10), 200, "games.exe", "unproductive"),
        (now - timedelta(minutes=5), 100, "excel.exe", "neutral"),
    )
    # What the hourly job leaves: nothing that started before now - retentionDays.
    await retention.purge(db, now)

    user = await read(gql, t, uid, days=30)

    assert user["status"] == "PENDING"
    assert user["pending"]["retainedEventCount"] == 3
    assert user["activity"]["activeSeconds"] == user["pending"]["retainedActiveSeconds"] == 600
    assert (user["activity"]["productiveSeconds"], user["activity"]["unproductiveSeconds"]) == (300, 200)
    # 29.5 days ago is the day before the oldest row's date: counted in the oldest row.
    oldest = user["activity"]["daily"][0]
    assert date.fromisoformat(oldest["date"]) == (now - timedelta(days=29)).date()
    assert (now - timedelta(days=29, hours=12)).date() < date.fromisoformat(oldest["date"])
    assert oldest["activeSeconds"] == 300
    assert {a["app"] for a in user["activity"]["topApps"]} == {"teams.exe", "games.exe", "excel.exe"}


async def test_an_event_dated_ahead_of_the_servers_clock_counts_today_as_pending_info_counts_it(
    gql: Gql, db: Database, clock: FakeClock
) -> None:
    t = await make_tenant(db, licenses=0)
    now = clock.now.replace(hour=23, minute=0)
    # An agent whose clock runs two hours fast: the event starts "tomorrow", UTC.
    uid = await report(db, t, "fast", now, (now + timedelta(hours=2), 120, "excel.exe", "productive"))
    clock.now = now
    user = await read(gql, t, uid, days=7)
    assert user["activity"]["activeSeconds"] == user["pending"]["retainedActiveSeconds"] == 120
    assert day(user, now.date())["activeSeconds"] == 120


async def test_top_five_apps_most_active_first_ties_by_name(gql: Gql, db: Database, clock: FakeClock) -> None:
    t = await make_tenant(db, licenses=0)
    now = clock.now
    seconds = {"a.exe": 10, "b.exe": 50, "c.exe": 30, "d.exe": 50, "e.exe": 20, "f.exe": 5, "g.exe": 30}
    uid = await report(
        db,
        t,
        "ann",
        now,
        *[(now - timedelta(hours=i + 1), s, app, "neutral") for i, (app, s) in enumerate(seconds.items())],
        # Two events of one app add up.
        (now - timedelta(hours=20), 25, "a.exe", "neutral"),
    )

    apps = (await read(gql, t, uid, days=2))["activity"]["topApps"]

    assert apps == [
        {"app": "b.exe", "activeSeconds": 50},
        {"app": "d.exe", "activeSeconds": 50},
        {"app": "a.exe", "activeSeconds": 35},
        {"app": "c.exe", "activeSeconds": 30},
        {"app": "g.exe", "activeSeconds": 30},
    ]


async def test_an_event_counts_on_the_utc_day_it_starts(
    gql: Gql, db: Database, clock: FakeClock, backend: str
) -> None:
    if backend == "postgres":
        # A session time zone far from UTC: the day must still be the UTC one.
        async with db.write() as s:
            name = (await s.execute(sa.text("SELECT current_database()"))).scalar_one()
            await s.execute(sa.text(f"ALTER DATABASE \"{name}\" SET timezone = 'Asia/Tokyo'"))
        await db.dispose()
    t = await make_tenant(db, licenses=0)
    now = clock.now  # 2026-11-26 09:00 UTC
    uid = await report(
        db,
        t,
        "ann",
        now,
        # 23:59:30 UTC for two hours: all of it on the 24th (08:59 on the 25th in Tokyo).
        (datetime(2026, 11, 24, 23, 59, 30, tzinfo=UTC), 7200, "late.exe", "productive"),
        (datetime(2026, 11, 25, 0, 0, tzinfo=UTC), 60, "early.exe", "productive"),
        (datetime(2026, 11, 25, 20, 0, tzinfo=UTC), 30, "evening.exe", "productive"),
    )

    user = await read(gql, t, uid, days=3)

    assert [(d["date"], d["activeSeconds"]) for d in user["activity"]["daily"]] == [
        ("2026-11-24", 7200),
        ("2026-11-25", 90),
        ("2026-11-26", 0),
    ]


async def test_last_activity_at_is_when_the_latest_event_ended(
    gql: Gql, db: Database, clock: FakeClock
) -> None:
    t = await make_tenant(db, licenses=1)
    now = clock.now
    quiet = await report(db, t, "quiet", now)
    # Another user's later activity is no business of the busy user's.
    await report(db, t, "later", now, (now + timedelta(hours=20), 60, "excel.exe", "neutral"))
    # The latest start is not the latest end: a long event started earlier ends later.
    long_start = now - timedelta(hours=5, microseconds=-250_000)
    busy = await report(
        db,
        t,
        "busy",
        now,
        (now - timedelta(days=3), 60, "excel.exe", "neutral"),
        (long_start, 4 * 3600, "excel.exe", "neutral"),
        (now - timedelta(hours=2), 60, "excel.exe", "neutral"),
    )

    # ... also one that started the day before the latest start's day.
    overnight_start = now.replace(hour=0) - timedelta(hours=2)
    overnight = await report(
        db,
        t,
        "overnight",
        now,
        (now - timedelta(days=6), 60, "excel.exe", "neutral"),
        (overnight_start, 20 * 3600, "excel.exe", "neutral"),
        (now - timedelta(hours=1), 60, "excel.exe", "neutral"),
    )

    assert (await read(gql, t, quiet))["lastActivityAt"] is None
    ended = (await read(gql, t, busy))["lastActivityAt"]
    assert datetime.fromisoformat(ended) == long_start + timedelta(hours=4)
    ended = (await read(gql, t, overnight))["lastActivityAt"]
    assert datetime.fromisoformat(ended) == overnight_start + timedelta(hours=20)


async def test_a_licensed_users_activity(gql: Gql, db: Database, clock: FakeClock) -> None:
    t = await make_tenant(db, licenses=1, retention_days=30)
    now = clock.now
    uid = await report(
        db,
        t,
        "lee",
        now,
        (now - timedelta(days=45), 500, "excel.exe", "productive"),
        (now - timedelta(days=1), 70, "excel.exe", "productive"),
    )
    await retention.purge(db, now)

    user = await read(gql, t, uid, days=60, token=t.viewer_token)

    assert user["status"] == "LICENSED" and user["pending"] is None
    # Retention never touches a licensed user: 45 days ago is there.
    assert user["activity"]["activeSeconds"] == user["activity"]["productiveSeconds"] == 570
    assert user["activity"]["topApps"] == [{"app": "excel.exe", "activeSeconds": 570}]
    assert datetime.fromisoformat(user["lastActivityAt"]) == now - timedelta(days=1) + timedelta(seconds=70)
    assert (await read(gql, t, uid, days=30))["activity"]["activeSeconds"] == 70
