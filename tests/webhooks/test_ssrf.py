"""Which URLs a webhook may call, at creation and at send time (docs/behaviour.md, Webhooks)."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator

import pytest

from server.domain.errors import DomainError, ErrorCode
from server.domain.models import OutboxStatus
from server.domain.webhooks import urls
from server.domain.webhooks.tables import WebhookFormat
from server.infra.db import Database
from server.infra.settings import Settings
from server.web.runtime import Services
from tests.jobs.helpers import arrive
from tests.support import FakeClock, make_tenant
from tests.webhooks.conftest import Receiver, add_webhook, deliveries, send_due

STRICT = urls.UrlPolicy()


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "a loopback address"),
        ("::1", "a loopback address"),
        ("10.1.2.3", "a private address"),
        ("172.16.0.1", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fd12::1", "a private address"),
        ("169.254.169.254", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("168.63.129.16", "a cloud metadata address"),
        ("169.254.1.1", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("0.0.0.0", "a private address"),
        ("100.64.0.1", "a reserved or non-public address"),
        ("::ffff:10.0.0.1", "a private address"),
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_only_public_addresses_may_be_called(address: str, reason: str | None) -> None:
    assert urls.refusal(ipaddress.ip_address(address)) == reason


async def refused(url: str, policy: urls.UrlPolicy = STRICT) -> str:
    with pytest.raises(DomainError) as caught:
        await urls.vet(url, policy)
    assert caught.value.code is ErrorCode.INVALID_INPUT and caught.value.field == "url"
    return caught.value.message


async def test_a_hostname_resolving_to_loopback_is_refused_unless_private_addresses_are_allowed() -> None:
    message = await refused("https://localhost/hook")
    assert message.startswith("localhost resolves to ")
    assert "a loopback address; webhooks may only call public addresses" in message
    allowed = await urls.vet("https://localhost/hook", urls.UrlPolicy(allow_private=True))
    assert allowed.url == "https://localhost/hook"


async def test_urls_are_refused_for_their_form_scheme_or_host() -> None:
    assert "must start with https://" in await refused("http://example.com/hook")
    assert "PLM_WEBHOOK_ALLOW_HTTP=1" in await refused("http://example.com/hook")
    assert await refused("ftp://example.com/x", urls.UrlPolicy(allow_http=True)) == (
        "the URL must start with https://"
    )
    assert await refused("https:///nohost") == "the URL has no host"
    assert "does not resolve" in await refused("https://no-such-host.invalid/hook")
    assert "a cloud metadata address" in await refused("https://169.254.169.254/latest/meta-data")
    assert "a private address" in await refused("https://[::ffff:10.0.0.1]/hook")
    assert "spaces, control" in await refused("https://example.com/a b")
    assert "not a valid URL" in await refused("https://example.com:99999/")


def test_a_viewer_sees_no_credentials_query_or_slack_path() -> None:
    url = "https://user:pw@hooks.example.com:8443/in/abc?token=s3cret#x"
    assert urls.shown_to_viewer(url, WebhookFormat.STANDARD) == "https://hooks.example.com:8443/in/abc"
    slack = "https://hooks.slack.com/services/T000/B000/XXXX"
    assert urls.shown_to_viewer(slack, WebhookFormat.SLACK) == "https://hooks.slack.com/…"


@pytest.fixture
async def strict_svc(db: Database, db_url: str, clock: FakeClock) -> AsyncIterator[Services]:
    """A process that allows http (the receiver's) but not private addresses."""
    services = Services(Settings(database_url=db_url, webhook_allow_http=True), db, clock)
    services.webhooks.start()
    yield services
    await services.webhooks.close(grace=0)


async def test_the_address_is_checked_again_when_a_delivery_connects(
    strict_svc: Services, clock: FakeClock, receiver: Receiver
) -> None:
    # Given a webhook stored while private addresses were allowed (or before its DNS changed)
    tenant = await make_tenant(strict_svc.db, licenses=0)
    await add_webhook(strict_svc, tenant, receiver.url("inside"))
    # When an event is delivered by a process that does not allow them
    await arrive(strict_svc.db, tenant.account_id, "ann", clock)
    await send_due(strict_svc)
    # Then no request was made, and the delivery says why
    assert receiver.hits == []
    (row,) = await deliveries(strict_svc.db)
    assert row.status is OutboxStatus.PENDING and row.response_code is None
    assert row.last_error == (
        "refused: 127.0.0.1 resolves to 127.0.0.1, a loopback address; webhooks may only call "
        "public addresses (PLM_WEBHOOK_ALLOW_PRIVATE=1 allows others)"
    )


async def test_redirects_are_not_followed_and_a_receivers_body_is_never_kept(
    svc: Services, clock: FakeClock, receiver: Receiver
) -> None:
    tenant = await make_tenant(svc.db, licenses=0)
    await add_webhook(svc, tenant, receiver.url("moved"))
    receiver.script["moved"] = [302]
    await arrive(svc.db, tenant.account_id, "ann", clock)
    await send_due(svc)
    assert [h.path for h in receiver.hits] == ["moved"]
    (row,) = await deliveries(svc.db)
    assert row.last_error == "HTTP 302: a redirect (not followed; give the final URL)"
    assert row.response_code == 302 and row.status is OutboxStatus.PENDING
