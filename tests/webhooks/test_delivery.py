"""Webhook deliveries to real loopback receivers: signature, retries, 410, disabling, filtering, Slack,
isolation of a hanging endpoint, rotation (docs/behaviour.md, Webhooks)."""

from __future__ import annotations

import asyncio
import email
import email.policy
from datetime import timedelta
from email.message import EmailMessage

import pytest
from standardwebhooks import Webhook as Verifier
from standardwebhooks import WebhookVerificationError

from server.domain import actions
from server.domain.changes import Actor
from server.domain.errors import DomainError
from server.domain.models import OutboxStatus, QueueAction, Role
from server.domain.notifications import digests
from server.domain.webhooks import manage
from server.domain.webhooks.tables import WebhookFormat
from server.web.runtime import Services
from tests.jobs.helpers import arrive, outbox, text_of
from tests.support import FakeClock, make_tenant
from tests.webhooks.conftest import Receiver, add_webhook, deliveries, send_due, webhook


async def test_an_event_is_delivered_signed_as_standard_webhooks_verifies_it(
    svc: Services, clock: FakeClock, receiver: Receiver
) -> None:
    # Given a STANDARD webhook on an account with no license free
    tenant = await make_tenant(svc.db, licenses=0)
    made = await add_webhook(svc, tenant, receiver.url("hook"))
    assert made.secret is not None and made.secret.startswith("whsec_")
    # When a user enters the queue (the commit wakes the job) and the job runs
    entered = await arrive(svc.db, tenant.account_id, "jane", clock, display="Jane Doe")
    await send_due(svc)

    # Then the receiver got one request, which the specification's own library verifies
    (hit,) = receiver.to("hook")
    body = Verifier(made.secret).verify(hit.body, hit.headers)
    assert body == {
        "type": "pending_queue.entered",
        "timestamp": "2026-11-26T09:00:00.000Z",
        "data": {
            "action": "ENTERED",
            "userId": str(entered.user_id),
            "at": "2026-11-26T09:00:00.000Z",
            "user": {"id": str(entered.user_id), "displayName": "Jane Doe", "status": "PENDING"},
            "account": {
                "id": str(tenant.account_id),
                "licenseLimit": 0,
                "licensesUsed": 0,
                "pendingCount": 1,
            },
            "actor": None,
            "target": None,
        },
    }
    assert hit.headers["webhook-id"].startswith("msg_")
    assert hit.headers["content-type"] == "application/json"
    # A tampered body or another secret does not verify
    with pytest.raises(WebhookVerificationError):
        Verifier(made.secret).verify(hit.body.replace(b"Jane", b"John"), hit.headers)
    with pytest.raises(WebhookVerificationError):
        Verifier(manage.new_secret()).verify(hit.body, hit.headers)
    # And the delivery is recorded as delivered, with the receiver's status
    (row,) = await deliveries(svc.db)
    assert (row.status, row.attempts, row.response_code, row.sent_at) == (OutboxStatus.SENT, 1, 204, clock())


async def test_failures_are_retried_with_backoff_and_one_stable_webhook_id(
    svc: Services, clock: FakeClock, receiver: Receiver
) -> None:
    tenant = await make_tenant(svc.db, licenses=0)
    made = await add_webhook(svc, tenant, receiver.url("flaky"))
    receiver.script["flaky"] = [500, 503, 200]
    await arrive(svc.db, tenant.account_id, "jane", clock)

    await send_due(svc)
    (row,) = await deliveries(svc.db)
    assert (row.status, row.attempts, row.response_code, row.last_error) == (
        OutboxStatus.PENDING,
        1,
        500,
        "HTTP 500",
    )
    # About 1 s later (±20 %), not before
    assert timedelta(seconds=0.8) <= row.next_attempt_at - clock() <= timedelta(seconds=1.2)
    assert await send_due(svc) == 0
    clock.advance(seconds=1.2)
    await send_due(svc)
    (row,) = await deliveries(svc.db)
    assert row.attempts == 2 and timedelta(seconds=4) <= row.next_attempt_at - clock() <= timedelta(seconds=6)
    clock.advance(seconds=6)
    await send_due(svc)

    hits = receiver.to("flaky")
    assert len(hits) == 3
    assert len({h.headers["webhook-id"] for h in hits}) == 1
    assert made.secret is not None
    for hit in hits:
        Verifier(made.secret).verify(hit.body, hit.headers)
    (row,) = await deliveries(svc.db)
    assert (row.status, row.attempts, row.response_code, row.last_error) == (OutboxStatus.SENT, 3, 200, None)


async def test_410_gone_fails_the_delivery_and_disables_the_endpoint(
    svc: Services, clock: FakeClock, receiver: Receiver
) -> None:
    tenant = await make_tenant(svc.db, licenses=0)
    made = await add_webhook(svc, tenant, receiver.url("gone"))
    receiver.script["gone"] = [410]
    await arrive(svc.db, tenant.account_id, "ann", clock)
    await arrive(svc.db, tenant.account_id, "bob", clock)

    await send_due(svc)
    assert made.webhook.id is not None
    hook = await webhook(svc.db, made.webhook.id)
    assert hook.enabled is False
    assert hook.disabled_reason == "the endpoint answered 410 Gone on 2026-11-26 09:00 UTC"
    rows = await deliveries(svc.db)
    assert {r.status for r in rows} == {OutboxStatus.FAILED}
    # The receiver's body is never kept
    assert not any("SECRET-BODY" in (r.last_error or "") for r in rows)
    # And a disabled endpoint gets nothing more
    await arrive(svc.db, tenant.account_id, "cid", clock)
    assert len(await deliveries(svc.db)) == 2


async def test_three_days_of_failures_disable_the_endpoint_and_the_next_digest_says_so(
    svc: Services, clock: FakeClock, receiver: Receiver
) -> None:
    tenant = await make_tenant(svc.db, licenses=0)
    made = await add_webhook(svc, tenant, receiver.url("down"))
    receiver.script["down"] = [503]
    assert made.webhook.id is not None
    clock.advance(seconds=1)
    await arrive(svc.db, tenant.account_id, "ann", clock)
    started = clock()
    await send_due(svc)
    clock.advance(seconds=61)
    assert await digests.build_digests(svc.db, svc.settings, clock()) == 1  # ann's, while all is well
    # Retried (1 s, 5 s, 30 s, 2 min, 10 min, then hourly) until three days have passed
    while (await webhook(svc.db, made.webhook.id)).enabled:
        assert clock() - started < timedelta(days=3, hours=2)
        await send_due(svc)
        clock.advance(minutes=30)
    hook = await webhook(svc.db, made.webhook.id)
    assert hook.disabled_reason is not None
    assert hook.disabled_reason.startswith(
        "failing since 2026-11-26 09:00 UTC (3 days); last error: HTTP 503"
    )
    (row,) = await deliveries(svc.db)
    # Five quick tries, then about hourly ones (seen here in 30-minute steps)
    assert row.status is OutboxStatus.FAILED and 50 < row.attempts < 80

    # The admins' next digest carries it
    await arrive(svc.db, tenant.account_id, "bob", clock)
    clock.advance(seconds=61)
    assert await digests.build_digests(svc.db, svc.settings, clock()) == 1
    first, second = [m for m in await outbox(svc.db) if m.kind == "mail"]
    notice = f"Webhook {made.webhook.id} ({receiver.base}/down) was disabled: failing since"
    assert notice not in text_of(_email(first.content)) and notice in text_of(_email(second.content))
    # Once: the digest after it does not repeat it
    clock.advance(minutes=5)
    await arrive(svc.db, tenant.account_id, "cid", clock)
    clock.advance(seconds=61)
    await digests.build_digests(svc.db, svc.settings, clock())
    third = [m for m in await outbox(svc.db) if m.kind == "mail"][-1]
    assert "Cid" in text_of(_email(third.content)) and notice not in text_of(_email(third.content))


def _email(content: str) -> EmailMessage:
    parsed = email.message_from_string(content, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


async def test_a_webhook_with_actions_gets_only_those_and_one_with_none_gets_all(
    svc: Services, clock: FakeClock, receiver: Receiver
) -> None:
    tenant = await make_tenant(svc.db, licenses=0)
    await add_webhook(svc, tenant, receiver.url("approvals"), actions=[QueueAction.APPROVED])
    await add_webhook(svc, tenant, receiver.url("all"))
    ann = await arrive(svc.db, tenant.account_id, "ann", clock)
    admin = Actor(tenant.account_id, tenant.admin_id, Role.ADMIN)
    async with svc.db.write() as session:
        await actions.update_settings(session, admin, clock(), license_limit=1)
    async with svc.db.write() as session:
        await actions.approve(session, admin, [ann.user_id], clock())
    await send_due(svc)

    assert [h.json["type"] for h in receiver.to("approvals")] == ["pending_queue.approved"]
    assert sorted(h.json["type"] for h in receiver.to("all")) == [
        "pending_queue.approved",
        "pending_queue.entered",
    ]
    approved = receiver.to("approvals")[0].json["data"]
    assert approved["actor"] == {"id": str(tenant.admin_id), "email": "admin@acme.example"}
    assert approved["user"]["status"] == "LICENSED"


async def test_a_refused_action_queues_no_delivery(
    svc: Services, clock: FakeClock, receiver: Receiver
) -> None:
    tenant = await make_tenant(svc.db, licenses=0)
    await add_webhook(svc, tenant, receiver.url("hook"))
    ann = await arrive(svc.db, tenant.account_id, "ann", clock)
    with pytest.raises(DomainError):
        async with svc.db.write() as session:
            await actions.approve(
                session, Actor(tenant.account_id, tenant.admin_id, Role.ADMIN), [ann.user_id], clock()
            )
    assert [r.event_action for r in await deliveries(svc.db)] == [QueueAction.ENTERED]


async def test_slack_gets_a_readable_message_with_text_and_blocks(
    svc: Services, clock: FakeClock, receiver: Receiver
) -> None:
    tenant = await make_tenant(svc.db, licenses=0)
    made = await add_webhook(svc, tenant, receiver.url("services/T0/B0/xyz"), format=WebhookFormat.SLACK)
    assert made.secret is None
    await arrive(svc.db, tenant.account_id, "jane", clock, display="Jane <!channel> & Co")
    await send_due(svc)

    (hit,) = receiver.to("services/T0/B0/xyz")
    assert "webhook-signature" not in hit.headers
    message = hit.json
    assert message["text"] == (
        "Jane &lt;!channel&gt; &amp; Co entered the Pending Licenses queue. "
        "Licenses: 0 of 0 used · 1 pending."
    )
    section, context = message["blocks"]
    assert section == {
        "type": "section",
        "text": {
            "type": "mrkdwn",
            "text": "*Jane &lt;!channel&gt; &amp; Co entered the Pending Licenses queue.*",
        },
    }
    assert context["type"] == "context"
    assert "<http://127.0.0.1:8000/users?tab=pending|Pending Licenses>" in context["elements"][0]["text"]


async def test_a_hanging_endpoint_never_delays_another_endpoints_deliveries(
    svc: Services, clock: FakeClock, receiver: Receiver
) -> None:
    # Given an endpoint that never answers (until the test lets it) and a healthy one
    tenant = await make_tenant(svc.db, licenses=0)
    await add_webhook(svc, tenant, receiver.url("hangs"))
    await add_webhook(svc, tenant, receiver.url("fast"))
    receiver.hold["hangs"] = asyncio.Event()
    # When 30 users enter, far more than the hanging endpoint's slots
    for i in range(30):
        await arrive(svc.db, tenant.account_id, f"user{i}", clock)
    await svc.webhooks.tick()

    # Then the healthy endpoint gets all 30 while the other still hangs on its first 8
    await receiver.wait_for(30, "fast")
    assert len(receiver.to("hangs")) == 8 and not receiver.hold["hangs"].is_set()
    # And once it answers, it gets the rest
    receiver.hold["hangs"].set()
    await receiver.wait_for(30, "hangs")
    await svc.webhooks.drain()
    assert {r.status for r in await deliveries(svc.db)} == {OutboxStatus.SENT}


async def test_a_rotated_secret_signs_beside_the_old_one_for_24_hours(
    svc: Services, clock: FakeClock, receiver: Receiver
) -> None:
    tenant = await make_tenant(svc.db, licenses=0)
    made = await add_webhook(svc, tenant, receiver.url("hook"))
    assert made.secret is not None and made.webhook.id is not None
    admin = Actor(tenant.account_id, tenant.admin_id, Role.ADMIN)
    async with svc.db.write() as session:
        rotated = await manage.rotate_secret(session, admin, made.webhook.id, clock())
    assert rotated.secret is not None and rotated.secret != made.secret

    await arrive(svc.db, tenant.account_id, "ann", clock)
    await send_due(svc)
    (hit,) = receiver.hits
    assert len(hit.headers["webhook-signature"].split(" ")) == 2
    Verifier(made.secret).verify(hit.body, hit.headers)
    Verifier(rotated.secret).verify(hit.body, hit.headers)

    clock.advance(hours=24)
    await arrive(svc.db, tenant.account_id, "bob", clock)
    await send_due(svc)
    later = receiver.hits[1]
    assert len(later.headers["webhook-signature"].split(" ")) == 1
    Verifier(rotated.secret).verify(later.body, later.headers)
    with pytest.raises(WebhookVerificationError):
        Verifier(made.secret).verify(later.body, later.headers)


async def test_a_test_delivery_is_sent_once_even_to_a_disabled_webhook(
    svc: Services, clock: FakeClock, receiver: Receiver
) -> None:
    tenant = await make_tenant(svc.db, licenses=0)
    made = await add_webhook(svc, tenant, receiver.url("hook"))
    assert made.webhook.id is not None and made.secret is not None
    admin = Actor(tenant.account_id, tenant.admin_id, Role.ADMIN)
    async with svc.db.write() as session:
        await manage.update(session, admin, made.webhook.id, clock(), enabled=False)
    async with svc.db.write() as session:
        row = await manage.send_test(session, admin, made.webhook.id, clock())
    await send_due(svc)
    (hit,) = receiver.hits
    body = Verifier(made.secret).verify(hit.body, hit.headers)
    assert body["type"] == "pending_queue.test" and body["data"]["webhookId"] == str(made.webhook.id)
    assert body["data"]["actor"] == {"id": str(tenant.admin_id), "email": "admin@acme.example"}
    (stored,) = await deliveries(svc.db)
    assert stored.id == row.id and stored.status is OutboxStatus.SENT and stored.event_action is None

    # A failing test is not retried: the admin is looking at its outcome now
    receiver.script["hook"] = [500]
    async with svc.db.write() as session:
        await manage.send_test(session, admin, made.webhook.id, clock())
    await send_due(svc)
    failed = (await deliveries(svc.db))[-1]
    assert (failed.status, failed.last_error, failed.response_code) == (OutboxStatus.FAILED, "HTTP 500", 500)


async def test_deleting_a_webhook_drops_its_waiting_deliveries(
    svc: Services, clock: FakeClock, receiver: Receiver
) -> None:
    tenant = await make_tenant(svc.db, licenses=0)
    made = await add_webhook(svc, tenant, receiver.url("hook"))
    assert made.webhook.id is not None
    receiver.script["hook"] = [500, 204]
    await arrive(svc.db, tenant.account_id, "ann", clock)
    await send_due(svc)
    assert [r.status for r in await deliveries(svc.db)] == [OutboxStatus.PENDING]
    async with svc.db.write() as session:
        await manage.delete(session, Actor(tenant.account_id, tenant.admin_id, Role.ADMIN), made.webhook.id)
    clock.advance(minutes=1)
    assert await send_due(svc) == 0
    assert await deliveries(svc.db) == [] and len(receiver.hits) == 1
