"""One webhook request over HTTP (httpx): the signed request, the guarded connection, the outcome.

* **Signed** with the `standardwebhooks` library (``Webhook.sign``): ``webhook-id`` (the
  delivery's, the same on every retry), ``webhook-timestamp`` (this attempt, wall-clock
  seconds) and ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of id.timestamp.body>``,
  twice during a rotation's grace (new secret, then old), space-separated as the
  specification allows. SLACK deliveries are the Slack message, unsigned (its URL is its secret).
* **Guarded**: the connection is made by :class:`GuardedBackend`, which resolves the host
  and refuses a non-public address at the moment it connects, then connects to the very
  address it checked, so DNS changing after the webhook was created (or between a check
  and the connection) cannot point a delivery inside the network.
* **Bounded**: the whole exchange has :data:`TIMEOUT_SECONDS`; redirects are not
  followed; the response body is never kept, logged or shown (up to :data:`DRAIN_LIMIT` of
  it is read and dropped, so the connection can be reused).
"""

from __future__ import annotations

import asyncio
import json
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import httpcore
import httpx
from standardwebhooks import Webhook as Signer

from server.domain.errors import DomainError
from server.domain.webhooks import payload, urls
from server.domain.webhooks.tables import Webhook, WebhookFormat

TIMEOUT_SECONDS = 10.0
DRAIN_LIMIT = 64 * 1024
USER_AGENT = "PLM-Webhooks/1"


class RefusedAddress(httpcore.ConnectError):
    """The host resolved to an address webhooks may not call."""


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to addresses the policy allows."""

    def __init__(self, policy: urls.UrlPolicy) -> None:
        self.policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await urls.resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"the host {host} does not resolve") from exc
        try:
            urls.check_addresses(host, addresses, self.policy)
        except DomainError as refused:
            raise RefusedAddress(refused.message) from None
        error: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore's interface)
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks do not connect to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def client(policy: urls.UrlPolicy, max_connections: int) -> httpx.AsyncClient:
    """A client for one endpoint: no redirects, no proxies from the environment, guarded
    connections, at most ``max_connections`` of them (the endpoint's send slots)."""
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    # httpx offers no network backend of its own; its pool is httpcore's, which does.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=30.0,
        network_backend=GuardedBackend(policy),
    )
    return httpx.AsyncClient(
        transport=transport,
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(TIMEOUT_SECONDS),
    )


@dataclass(frozen=True, slots=True)
class Request:
    url: str
    body: bytes
    headers: dict[str, str]


def signatures(webhook: Webhook, msg_id: str, at: datetime, body: str, now: datetime) -> str:
    """``v1,<sig>`` with the secret, and with the previous one during its grace."""
    secrets = [webhook.secret]
    if webhook.previous_secret and webhook.previous_secret_until and now < webhook.previous_secret_until:
        secrets.append(webhook.previous_secret)
    return " ".join(Signer(s).sign(msg_id, at, body) for s in secrets if s)


def build(webhook: Webhook, msg_id: str, stored: str, *, now: datetime, wall: datetime, link: str) -> Request:
    """The request for one attempt; ``now`` is the server's clock (the rotation grace),
    ``wall`` the real time the receiver checks ``webhook-timestamp`` against."""
    headers = {"content-type": "application/json", "user-agent": USER_AGENT}
    if webhook.format is WebhookFormat.SLACK:
        body = payload.dumps(payload.slack_message(json.loads(stored), link))
        return Request(webhook.url, body.encode(), headers)
    wall = wall.replace(microsecond=0)
    headers["webhook-id"] = msg_id
    headers["webhook-timestamp"] = str(int(wall.timestamp()))
    headers["webhook-signature"] = signatures(webhook, msg_id, wall, stored, now)
    return Request(webhook.url, stored.encode(), headers)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the receiver answered (``code``), or why there was no answer (``error``)."""

    code: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.code is not None and 200 <= self.code < 300

    @property
    def gone(self) -> bool:
        return self.code == 410

    def describe(self) -> str:
        if self.error is not None:
            return self.error
        assert self.code is not None
        if 300 <= self.code < 400:
            return f"HTTP {self.code}: a redirect (not followed; give the final URL)"
        return f"HTTP {self.code}"


async def post(http: httpx.AsyncClient, request: Request, seconds: float = TIMEOUT_SECONDS) -> Outcome:
    """Send ``request``; the status, or a short reason. The body is never kept."""
    try:
        async with asyncio.timeout(seconds):
            async with http.stream(
                "POST", request.url, content=request.body, headers=request.headers
            ) as answer:
                # Read (and drop) a small body so the connection can be reused; never more.
                seen = 0
                async for chunk in answer.aiter_raw():
                    seen += len(chunk)
                    if seen > DRAIN_LIMIT:
                        break
                return Outcome(answer.status_code, None)
    except TimeoutError:
        return Outcome(None, f"no answer within {seconds:g} s")
    except httpx.ConnectError as exc:
        if isinstance(exc.__cause__, RefusedAddress):
            return Outcome(None, f"refused: {exc.__cause__}")
        return Outcome(None, f"could not connect: {exc}"[:300])
    except httpx.TimeoutException:
        return Outcome(None, f"no answer within {seconds:g} s")
    except (httpx.HTTPError, OSError) as exc:
        return Outcome(None, f"{type(exc).__name__}: {exc}"[:300])
