"""Which URLs a webhook may call: the rules against server-side request forgery.

A webhook makes this server send requests wherever an admin points it, from inside the
network it runs in. So a URL must be ``https://`` (``http://`` too with
``PLM_WEBHOOK_ALLOW_HTTP=1``), and every address its host resolves to must be a public one:
not loopback, private, link-local, multicast, reserved, shared (CGNAT) or a cloud metadata
service (``PLM_WEBHOOK_ALLOW_PRIVATE=1`` lifts this for tests and local setups). The host
is checked when a webhook is created or its URL changed (:func:`vet`, which also refuses
a host that does not resolve) and again when each delivery connects
(:mod:`server.infra.webhooks` checks the very address it connects to), because DNS can
change in between. Refusals are ``INVALID_INPUT`` with a plain reason.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from server.domain.errors import DomainError, ErrorCode
from server.domain.webhooks.tables import WebhookFormat

MAX_URL_LENGTH = 2048
RESOLVE_TIMEOUT_SECONDS = 5.0

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Metadata services that sit on otherwise public-looking addresses (the link-local
# 169.254.169.254 and AWS's fd00:ec2::254 are refused as link-local and private anyway).
_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, ...
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure's wire server
        "192.0.0.192",  # Oracle Cloud
    )
)


@dataclass(frozen=True, slots=True)
class UrlPolicy:
    """``PLM_WEBHOOK_ALLOW_HTTP`` and ``PLM_WEBHOOK_ALLOW_PRIVATE``."""

    allow_http: bool = False
    allow_private: bool = False


@dataclass(frozen=True, slots=True)
class VettedUrl:
    """A URL that passed :func:`vet`; the only way to give a webhook a URL."""

    url: str
    host: str


def refusal(address: IPAddress) -> str | None:
    """Why a webhook may not connect to ``address``; ``None`` for a public address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in _METADATA:
        return "a cloud metadata address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private:
        return "a private address"
    if address.is_unspecified or address.is_reserved or not address.is_global:
        return "a reserved or non-public address"
    return None


def _invalid(message: str) -> DomainError:
    return DomainError(ErrorCode.INVALID_INPUT, message, "url")


def parse(url: str, policy: UrlPolicy) -> SplitResult:
    """The URL's parts, if its form is acceptable (scheme, host, no control characters)."""
    if len(url) > MAX_URL_LENGTH:
        raise _invalid(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url) or not url.isascii():
        raise _invalid("the URL may not contain spaces, control or non-ASCII characters (use punycode)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _invalid("the URL is not a valid URL") from None
    allowed = ("https", "http") if policy.allow_http else ("https",)
    if parts.scheme not in allowed:
        needs = "" if policy.allow_http else " (http:// only with PLM_WEBHOOK_ALLOW_HTTP=1)"
        raise _invalid(f"the URL must start with https://{needs}")
    if not parts.hostname:
        raise _invalid("the URL has no host")
    if port == 0:
        raise _invalid("the URL's port must be from 1 to 65535")
    return parts


def default_port(parts: SplitResult) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (an IP literal is itself); ``OSError`` if none."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    # The scope of a link-local IPv6 answer ("fe80::1%eth0") is not part of the address.
    return list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))


def check_addresses(host: str, addresses: list[IPAddress], policy: UrlPolicy) -> None:
    """Refuse if any address of ``host`` is not public (unless private ones are allowed)."""
    if policy.allow_private:
        return
    for address in addresses:
        reason = refusal(address)
        if reason is not None:
            raise _invalid(
                f"{host} resolves to {address}, {reason}; webhooks may only call public addresses "
                "(PLM_WEBHOOK_ALLOW_PRIVATE=1 allows others)"
            )


async def vet(url: str, policy: UrlPolicy) -> VettedUrl:
    """Check ``url``'s form and resolve its host now; ``INVALID_INPUT`` saying why not.

    Called before the write transaction opens: a slow resolver must not hold the database.
    """
    parts = parse(url.strip(), policy)
    host = parts.hostname
    assert host is not None
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
            addresses = await resolve(host, default_port(parts))
    except (OSError, TimeoutError, UnicodeError):
        raise _invalid(f"the host {host} does not resolve (check the name, or try again)") from None
    check_addresses(host, addresses, policy)
    return VettedUrl(url=parts.geturl(), host=host)


def shown_to_viewer(url: str, format: WebhookFormat) -> str:
    """What a VIEWER sees of a URL: no credentials, query or fragment; of a Slack URL (whose
    path is its secret) only the origin."""
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    if format is WebhookFormat.SLACK:
        return f"{origin}/…"
    return origin + parts.path
