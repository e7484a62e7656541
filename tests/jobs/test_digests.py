"""Digest windows and their contents, delivered to a real SMTP server (docs/behaviour.md, Notifications)."""

from __future__ import annotations

import re
from datetime import timedelta

from server.domain.models import Admin, OutboxStatus, Role
from server.web import schedule as jobs
from server.web.runtime import Services
from tests.jobs.conftest import SmtpServer
from tests.jobs.helpers import add_admin, arrive, html_of, outbox, set_notify, text_of
from tests.support import FakeClock, make_tenant


async def test_digest_lists_arrivals_usage_and_link_and_reaches_only_notified_admins(
    svc: Services, clock: FakeClock, smtp: SmtpServer
) -> None:
    # Given an account with one license, its ADMIN and VIEWER, an admin who opted out and
    # a second admin; one user holds the license
    tenant = await make_tenant(svc.db, licenses=1)
    quiet = await add_admin(svc.db, tenant.account_id, "quiet@acme.example", clock)
    await set_notify(svc.db, quiet, False, clock)
    await add_admin(svc.db, tenant.account_id, "second@acme.example", clock)
    clock.advance(seconds=1)
    await arrive(svc.db, tenant.account_id, "boss", clock)
    first_at = clock()
    # When 25 users enter the queue within one window
    await arrive(svc.db, tenant.account_id, "zoe", clock, display="Zoë <script>", device="LAPTOP-7")
    for i in range(1, 25):
        clock.advance(seconds=1)
        await arrive(svc.db, tenant.account_id, f"user{i:02d}", clock)

    # Then nothing is sent before the window closes
    clock.now = first_at + timedelta(seconds=59)
    assert (await jobs.run_digest_tick(svc)).written == 0
    assert smtp.mailbox.received == []

    # And when it closes, one digest per notified ADMIN
    clock.advance(seconds=1)
    tick = await jobs.run_digest_tick(svc)
    assert tick.written == 2 and tick.delivery.sent == 2
    recipients = sorted(r.rcpt_tos[0] for r in smtp.mailbox.received)
    assert recipients == ["admin@acme.example", "second@acme.example"]
    assert smtp.mailbox.to("viewer@acme.example") == [] and smtp.mailbox.to("quiet@acme.example") == []

    (mail,) = smtp.mailbox.to("admin@acme.example")
    message = mail.message
    assert mail.mail_from == "plm@acme.example"
    assert message["Subject"] == "25 users entered the Pending Licenses queue of Acme"
    assert message["From"] == "PLM <plm@acme.example>"
    assert "admin@acme.example" in message["To"]
    assert re.fullmatch(
        rf"<plm-digest\.{tenant.account_id}\.{tenant.admin_id}\.\d+-\d+@plm\.acme\.example>", mail.message_id
    )
    text = text_of(message)
    assert "Zoë <script> (ACME\\zoe on LAPTOP-7): no license free" in text
    for i in range(1, 20):
        assert f"User{i:02d} (ACME\\user{i:02d} on PC-USER{i:02d})" in text
    assert "User20" not in text and "… and 5 more." in text
    assert "Licenses: 1 of 1 used, 0 available. 25 users are waiting in the queue." in text
    assert "https://plm.acme.example/users?tab=pending" in text
    html = html_of(message)
    assert "Zoë &lt;script&gt;" in html and "<script>" not in html
    assert 'href="https://plm.acme.example/users?tab=pending"' in html
    assert "<td>LAPTOP-7</td>" in html

    # And the window is done: later ticks send nothing more
    clock.advance(minutes=10)
    tick = await jobs.run_digest_tick(svc)
    assert tick.written == 0 and tick.delivery.sent == 0
    assert len(smtp.mailbox.received) == 2
    assert [m.status for m in await outbox(svc.db)] == [OutboxStatus.SENT, OutboxStatus.SENT]


async def test_arrivals_within_one_window_make_one_mail_and_the_next_arrival_opens_a_new_window(
    svc: Services, clock: FakeClock, smtp: SmtpServer
) -> None:
    tenant = await make_tenant(svc.db, licenses=0, manual_review=True)
    clock.advance(seconds=1)
    t0 = clock()
    await arrive(svc.db, tenant.account_id, "ann", clock)
    clock.advance(seconds=30)
    await arrive(svc.db, tenant.account_id, "bob", clock)
    clock.advance(seconds=29)
    await arrive(svc.db, tenant.account_id, "cat", clock)
    clock.advance(seconds=1)
    # Exactly at the window's end: belongs to the next window.
    await arrive(svc.db, tenant.account_id, "dan", clock)
    assert clock() - t0 == timedelta(seconds=60)

    assert (await jobs.run_digest_tick(svc)).delivery.sent == 1
    (first,) = smtp.mailbox.received
    assert first.message["Subject"] == "3 users entered the Pending Licenses queue of Acme"
    text = text_of(first.message)
    assert "Ann (ACME\\ann on PC-ANN): manual review" in text
    assert "Bob" in text and "Cat" in text and "Dan" not in text

    clock.advance(seconds=59)
    assert (await jobs.run_digest_tick(svc)).written == 0
    clock.advance(seconds=1)
    assert (await jobs.run_digest_tick(svc)).delivery.sent == 1
    second = smtp.mailbox.received[1]
    assert second.message["Subject"] == "1 user entered the Pending Licenses queue of Acme"
    assert "Dan" in text_of(second.message)
    assert second.message_id != first.message_id


async def test_windows_that_closed_while_the_job_was_down_each_make_one_digest(
    svc: Services, clock: FakeClock, smtp: SmtpServer
) -> None:
    tenant = await make_tenant(svc.db, licenses=0)
    clock.advance(seconds=1)
    await arrive(svc.db, tenant.account_id, "ann", clock)
    clock.advance(seconds=100)
    await arrive(svc.db, tenant.account_id, "bob", clock)
    await arrive(svc.db, tenant.account_id, "cat", clock)
    clock.advance(hours=2)

    tick = await jobs.run_digest_tick(svc)

    assert tick.written == 2 and tick.delivery.sent == 2
    subjects = [r.message["Subject"] for r in smtp.mailbox.received]
    assert subjects == [
        "1 user entered the Pending Licenses queue of Acme",
        "2 users entered the Pending Licenses queue of Acme",
    ]


async def test_an_admin_created_after_an_arrival_gets_only_later_arrivals(
    svc: Services, clock: FakeClock, smtp: SmtpServer
) -> None:
    tenant = await make_tenant(svc.db, licenses=0)
    clock.advance(seconds=1)
    await arrive(svc.db, tenant.account_id, "ann", clock)
    clock.advance(seconds=10)
    newcomer = "new@acme.example"
    await add_admin(svc.db, tenant.account_id, newcomer, clock)
    clock.advance(seconds=60)
    await jobs.run_digest_tick(svc)
    assert smtp.mailbox.to(newcomer) == [] and len(smtp.mailbox.to("admin@acme.example")) == 1

    await arrive(svc.db, tenant.account_id, "bob", clock)
    clock.advance(seconds=60)
    await jobs.run_digest_tick(svc)
    (mail,) = smtp.mailbox.to(newcomer)
    assert "Bob" in text_of(mail.message) and "Ann" not in text_of(mail.message)


async def test_opting_out_stops_mail_and_opting_back_in_does_not_replay_the_gap(
    svc: Services, clock: FakeClock, smtp: SmtpServer
) -> None:
    tenant = await make_tenant(svc.db, licenses=0)
    clock.advance(seconds=1)
    await set_notify(svc.db, tenant.admin_id, False, clock)
    await arrive(svc.db, tenant.account_id, "ann", clock)
    clock.advance(seconds=60)
    await jobs.run_digest_tick(svc)
    assert smtp.mailbox.received == []

    # Opted out again, an arrival, and back in before any tick ran
    await arrive(svc.db, tenant.account_id, "bob", clock)
    await set_notify(svc.db, tenant.admin_id, True, clock)
    clock.advance(seconds=1)
    await arrive(svc.db, tenant.account_id, "cat", clock)
    clock.advance(seconds=60)
    await jobs.run_digest_tick(svc)

    (mail,) = smtp.mailbox.received
    text = text_of(mail.message)
    assert "Cat" in text and "Ann" not in text and "Bob" not in text


async def test_a_viewer_promoted_to_admin_starts_with_the_next_arrival(
    svc: Services, clock: FakeClock, smtp: SmtpServer
) -> None:
    tenant = await make_tenant(svc.db, licenses=0)
    await set_notify(svc.db, tenant.admin_id, False, clock)
    clock.advance(seconds=1)
    await arrive(svc.db, tenant.account_id, "ann", clock)
    clock.advance(seconds=60)
    await jobs.run_digest_tick(svc)
    async with svc.db.write() as session:
        viewer = await session.get(Admin, tenant.viewer_id)
        assert viewer is not None
        viewer.role = Role.ADMIN
    await arrive(svc.db, tenant.account_id, "bob", clock)
    clock.advance(seconds=60)
    await jobs.run_digest_tick(svc)
    (mail,) = smtp.mailbox.received
    assert mail.rcpt_tos == ["viewer@acme.example"]
    assert "Bob" in text_of(mail.message) and "Ann" not in text_of(mail.message)
