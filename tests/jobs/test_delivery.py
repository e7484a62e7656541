"""The outbox over a real SMTP server: outages, 4xx/5xx replies, restarts, no SMTP at all."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta

import aiosmtplib
import httpx
import pytest

from server.domain.models import OutboxStatus
from server.domain.notifications import digests
from server.infra import mail
from server.infra.db import Database
from server.infra.outbox import CLAIM_SECONDS, Delivery, DeliveryReport, backoff_seconds, claim
from server.infra.settings import Settings
from server.web import schedule as jobs
from server.web.app import create_app
from server.web.runtime import Services
from tests.jobs.conftest import SmtpServer
from tests.jobs.helpers import arrive, outbox, text_of
from tests.support import FakeClock, batch_body, make_tenant, serve_app


def test_backoff_starts_within_30_seconds_doubles_and_is_capped_at_10_minutes() -> None:
    delays = [backoff_seconds(n) for n in range(1, 12)]
    assert delays[0] <= 30
    assert delays[:6] == [15, 30, 60, 120, 240, 480]
    assert max(delays) == 600 and delays[-1] == 600


async def test_smtp_down_during_arrivals_then_up_delivers_every_digest_exactly_once(
    svc: Services, clock: FakeClock, smtp: SmtpServer
) -> None:
    tenant = await make_tenant(svc.db, licenses=0)
    smtp.stop()
    clock.advance(seconds=1)
    await arrive(svc.db, tenant.account_id, "ann", clock)
    clock.advance(seconds=61)
    await arrive(svc.db, tenant.account_id, "bob", clock)

    # The first window closes while the server is down: written, not delivered.
    tick = await jobs.run_digest_tick(svc)
    assert tick.written == 1 and tick.delivery.retried == 1 and tick.delivery.sent == 0
    (message,) = await outbox(svc.db)
    assert message.status is OutboxStatus.PENDING and message.attempts == 1
    assert message.next_attempt_at - clock() <= timedelta(seconds=30)
    assert "ConnectionRefusedError" in (message.last_error or "") or "connect" in (message.last_error or "")
    # Not due again before its backoff has passed.
    assert (await jobs.run_digest_tick(svc)).delivery == DeliveryReport()

    clock.advance(seconds=60)
    tick = await jobs.run_digest_tick(svc)
    assert tick.written == 1 and tick.delivery.retried == 2

    smtp.start()
    for _ in range(5):
        clock.advance(minutes=10)
        await jobs.run_digest_tick(svc)

    ids = Counter(r.message_id for r in smtp.mailbox.received)
    assert len(ids) == 2 and set(ids.values()) == {1}
    assert all(m.status is OutboxStatus.SENT for m in await outbox(svc.db))


async def test_a_4xx_reply_is_retried_with_backoff_and_sent_once_accepted(
    svc: Services, clock: FakeClock, smtp: SmtpServer
) -> None:
    tenant = await make_tenant(svc.db, licenses=0)
    smtp.mailbox.reply = "451 4.3.0 Try again later"
    clock.advance(seconds=1)
    await arrive(svc.db, tenant.account_id, "ann", clock)
    clock.advance(seconds=60)
    assert (await jobs.run_digest_tick(svc)).delivery.retried == 1
    (message,) = await outbox(svc.db)
    assert message.status is OutboxStatus.PENDING and "451" in (message.last_error or "")
    assert message.next_attempt_at == clock() + timedelta(seconds=15)

    clock.advance(seconds=15)
    assert (await jobs.run_digest_tick(svc)).delivery.retried == 1
    (message,) = await outbox(svc.db)
    assert message.next_attempt_at == clock() + timedelta(seconds=30)

    smtp.mailbox.reply = "250 OK"
    clock.advance(seconds=30)
    assert (await jobs.run_digest_tick(svc)).delivery.sent == 1
    (message,) = await outbox(svc.db)
    assert message.status is OutboxStatus.SENT and message.attempts == 3 and message.sent_at == clock()
    assert len(smtp.mailbox.received) == 1


async def test_a_5xx_reply_marks_the_message_failed_and_logs_it(
    svc: Services, clock: FakeClock, smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    tenant = await make_tenant(svc.db, licenses=0)
    smtp.mailbox.reply = "550 5.1.1 Mailbox unavailable"
    clock.advance(seconds=1)
    await arrive(svc.db, tenant.account_id, "ann", clock)
    clock.advance(seconds=60)
    with caplog.at_level(logging.ERROR, logger="server.infra.outbox"):
        assert (await jobs.run_digest_tick(svc)).delivery.failed == 1
    assert any("refused for good" in r.message and "550" in r.message for r in caplog.records)
    (message,) = await outbox(svc.db)
    assert message.status is OutboxStatus.FAILED and "550" in (message.last_error or "")

    smtp.mailbox.reply = "250 OK"
    clock.advance(hours=1)
    assert (await jobs.run_digest_tick(svc)).delivery == DeliveryReport()
    assert smtp.mailbox.received == []


async def test_without_smtp_digests_are_logged_and_kept(
    svc: Services, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    svc.settings = svc.settings.with_overrides(smtp_host=None)
    tenant = await make_tenant(svc.db, licenses=0)
    clock.advance(seconds=1)
    await arrive(svc.db, tenant.account_id, "ann", clock, display="Ann Example")
    clock.advance(seconds=60)
    with caplog.at_level(logging.INFO, logger="server.infra.mail"):
        assert (await jobs.run_digest_tick(svc)).delivery.logged == 1
    (record,) = [r for r in caplog.records if "logged instead of sent" in r.getMessage()]
    logged = record.getMessage()
    assert "1 user entered the Pending Licenses queue of Acme" in logged
    assert "Ann Example (ACME\\ann on PC-ANN)" in logged and "admin@acme.example" in logged
    (message,) = await outbox(svc.db)
    assert message.status is OutboxStatus.LOGGED and "Ann Example" in message.content


async def test_server_restarted_between_arrival_and_send_delivers_once(
    settings: Settings, clock: FakeClock, smtp: SmtpServer
) -> None:
    # Given arrivals through /ingest on one app instance, which then shuts down
    first = Database(settings.database_url)
    await first.migrate()
    tenant = await make_tenant(first, licenses=0)
    clock.advance(seconds=1)
    app = create_app(settings, db=first, clock=clock)
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base) as http:
        for logon in ("ann", "bob", "cat"):
            response = await http.post(
                "/ingest",
                json=batch_body("PC-1", logon, display=logon.title()),
                headers={"Authorization": f"Bearer {tenant.ingest_key}"},
            )
            assert response.json()["status"] == "PENDING"
    await first.dispose()
    assert smtp.mailbox.received == []

    # When a fresh instance on the same database file ticks after the window closed
    clock.advance(seconds=60)
    second = Database(settings.database_url)
    app = create_app(settings, db=second, clock=clock)
    try:
        async with app.router.lifespan_context(app):
            runner: jobs.JobRunner = app.state.jobs
            assert await runner.tick("notifications")
            clock.advance(minutes=10)
            assert await runner.tick("notifications")
    finally:
        await second.dispose()

    # Then the digest went out once, listing all three
    (mail,) = smtp.mailbox.received
    assert mail.message["Subject"] == "3 users entered the Pending Licenses queue of Acme"
    assert all(name in text_of(mail.message) for name in ("Ann", "Bob", "Cat"))


async def test_a_sender_that_died_after_claiming_leaves_the_mail_due_again_later(
    svc: Services, clock: FakeClock, smtp: SmtpServer, db_url: str
) -> None:
    tenant = await make_tenant(svc.db, licenses=0)
    clock.advance(seconds=1)
    await arrive(svc.db, tenant.account_id, "ann", clock)
    clock.advance(seconds=60)
    assert await digests.build_digests(svc.db, svc.settings, clock()) == 1
    # A process claims the message and dies before talking to the SMTP server.
    assert len(await claim(svc.db, clock(), 10)) == 1
    await svc.db.dispose()

    fresh = Services(svc.settings, Database(db_url), clock)
    try:
        assert (await jobs.run_digest_tick(fresh)).delivery.sent == 0
        clock.advance(seconds=CLAIM_SECONDS)
        assert (await jobs.run_digest_tick(fresh)).delivery.sent == 1
        clock.advance(hours=1)
        assert (await jobs.run_digest_tick(fresh)).delivery.sent == 0
    finally:
        await fresh.db.dispose()
    assert len(smtp.mailbox.received) == 1


async def test_starttls_required_but_not_offered_keeps_the_mail_for_a_retry(
    svc: Services, clock: FakeClock, smtp: SmtpServer
) -> None:
    # A TLS misconfiguration says nothing about the message: it waits, it is not failed.
    svc.settings = svc.settings.with_overrides(smtp_tls="starttls")
    tenant = await make_tenant(svc.db, licenses=0)
    clock.advance(seconds=1)
    await arrive(svc.db, tenant.account_id, "ann", clock)
    clock.advance(seconds=60)
    assert (await jobs.run_digest_tick(svc)).delivery.retried == 1
    (message,) = await outbox(svc.db)
    assert message.status is OutboxStatus.PENDING and "STARTTLS" in (message.last_error or "").upper()

    svc.settings = svc.settings.with_overrides(smtp_tls="none")
    clock.advance(seconds=15)
    assert (await jobs.run_digest_tick(svc)).delivery.sent == 1
    assert len(smtp.mailbox.received) == 1


async def test_a_sender_slower_than_its_claim_does_not_send_what_another_sender_took(
    svc: Services, clock: FakeClock, smtp: SmtpServer
) -> None:
    tenant = await make_tenant(svc.db, licenses=0)
    clock.advance(seconds=1)
    await arrive(svc.db, tenant.account_id, "ann", clock)
    clock.advance(seconds=60)
    assert await digests.build_digests(svc.db, svc.settings, clock()) == 1
    # Sender A claims the digest, then stalls (an SMTP server timing out earlier messages)...
    (stale,) = await claim(svc.db, clock(), 10)
    # ...past its claim, so sender B takes the row and delivers it.
    clock.advance(seconds=CLAIM_SECONDS + 1)
    assert (await jobs.deliver_outbox(svc.db, svc.settings, clock)).sent == 1
    # When A finally reaches the message it sees the claim is no longer its own.
    report = DeliveryReport()
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp.port)
    await client.connect()
    try:
        await mail._send_all(client, [stale], Delivery(svc.db, clock, report))
    finally:
        client.close()
    assert (report.sent, report.lost) == (0, 1)
    assert len(smtp.mailbox.received) == 1
