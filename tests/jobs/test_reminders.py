"""Daily reminders and the digest's idle-seat line, delivered to a real SMTP server with an
injected clock (docs/behaviour.md, Notifications; Automation and reclaim)."""

from __future__ import annotations

import re
from datetime import timedelta

from server.domain import actions
from server.domain.activity import ingestion
from server.domain.activity.batch import Batch, Event
from server.domain.admission import AgentReport
from server.domain.changes import Actor
from server.domain.models import Role
from server.infra.db import Database
from server.web import schedule as jobs
from server.web.runtime import Services
from tests.jobs.conftest import SmtpServer
from tests.jobs.helpers import add_admin, arrive, html_of, set_notify, text_of
from tests.support import FakeClock, make_tenant


async def activity(db: Database, account_id: int, logon: str, clock: FakeClock, days_ago: float) -> None:
    start = clock() - timedelta(days=days_ago)
    batch = Batch(
        f"{logon}-{days_ago}",
        AgentReport(f"PC-{logon.upper()}", "ACME", logon, logon.title()),
        [Event(start, 60, "excel.exe", None, None, "productive")],
    )
    async with db.write() as session:
        await ingestion.ingest(session, account_id, batch, clock())


async def test_a_reminder_lists_overdue_and_expiring_users_once_a_day_to_notifying_admins(
    svc: Services, clock: FakeClock, smtp: SmtpServer
) -> None:
    tenant = await make_tenant(svc.db, licenses=1, retention_days=30)
    quiet = await add_admin(svc.db, tenant.account_id, "quiet@acme.example", clock)
    await set_notify(svc.db, quiet, False, clock)
    await arrive(svc.db, tenant.account_id, "boss", clock)
    # Nothing to say: no reminder, whatever the hour.
    assert await jobs.run_reminder_tick(svc) == 0
    old = await arrive(svc.db, tenant.account_id, "olga", clock, display="Olga <b>")
    clock.advance(hours=3)
    await arrive(svc.db, tenant.account_id, "newt", clock)
    # Olga's activity started 28 days ago: it starts to expire in 2 days.
    await activity(svc.db, tenant.account_id, "olga", clock, days_ago=28)
    await activity(svc.db, tenant.account_id, "newt", clock, days_ago=1)
    assert await jobs.run_reminder_tick(svc) == 1, "expiring data alone is worth a reminder"
    async with svc.db.write() as session:
        await actions.update_settings(
            session, Actor(tenant.account_id, tenant.admin_id, Role.ADMIN), clock(), queue_target_hours=2
        )
    # Once a day at most: the next ticks that day write nothing.
    clock.advance(hours=1)
    assert await jobs.run_reminder_tick(svc) == 0
    delivered = (await jobs.run_digest_tick(svc)).delivery
    assert delivered.sent >= 1
    (first,) = [m for m in smtp.mailbox.to("admin@acme.example") if "reminder" in m.message_id]
    assert smtp.mailbox.to("quiet@acme.example") == [] and smtp.mailbox.to("viewer@acme.example") == []
    assert first.message["Subject"] == "Acme: 1 user's activity expires soon"
    assert re.fullmatch(
        rf"<plm-reminder\.{tenant.account_id}\.{tenant.admin_id}\.\d{{4}}-\d\d-\d\d@plm\.acme\.example>",
        first.message_id,
    )
    text = text_of(first.message)
    assert (
        "Decide before their activity is deleted" in text and "Olga <b>: activity starts to expire at" in text
    )
    assert "Newt" not in text and "Olga &lt;b&gt;" in html_of(first.message)

    # A day later: both are overdue (2 h target), Olga's data still expiring.
    clock.advance(hours=24)
    assert await jobs.run_reminder_tick(svc) == 1
    await jobs.run_digest_tick(svc)
    second = [m for m in smtp.mailbox.to("admin@acme.example") if "reminder" in m.message_id][-1]
    assert second.message["Subject"] == "Acme: 2 overdue pending users and 1 user's activity expires soon"
    text = text_of(second.message)
    assert "Waiting longer than the queue target (2 h):" in text
    assert text.index("Olga <b>: overdue since") < text.index("Newt: overdue since")
    assert old.user_id is not None


async def test_the_digest_counts_licensed_users_idle_for_14_days(
    svc: Services, clock: FakeClock, smtp: SmtpServer
) -> None:
    tenant = await make_tenant(svc.db, licenses=3)
    await arrive(svc.db, tenant.account_id, "idle", clock)
    await arrive(svc.db, tenant.account_id, "busy", clock)
    await arrive(svc.db, tenant.account_id, "late", clock)
    await activity(svc.db, tenant.account_id, "busy", clock, days_ago=2)
    await activity(svc.db, tenant.account_id, "late", clock, days_ago=20)
    await arrive(svc.db, tenant.account_id, "queued", clock)
    clock.advance(seconds=61)
    assert (await jobs.run_digest_tick(svc)).delivery.sent == 1
    (mail,) = smtp.mailbox.to("admin@acme.example")
    assert "2 licensed users have had no activity for 14 days or more" in text_of(mail.message)

    # None idle (the idle ones removed, no seat left for newcomers): no such line.
    admin = Actor(tenant.account_id, tenant.admin_id, Role.ADMIN)
    async with svc.db.write() as session:
        await actions.remove(session, admin, [1, 3], False, clock())
    async with svc.db.write() as session:
        await actions.update_settings(session, admin, clock(), license_limit=1)
    await arrive(svc.db, tenant.account_id, "another", clock)
    await arrive(svc.db, tenant.account_id, "again", clock)
    clock.advance(seconds=61)
    await jobs.run_digest_tick(svc)
    last = smtp.mailbox.to("admin@acme.example")[-1]
    assert "no activity for" not in text_of(last.message)
