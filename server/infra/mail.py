"""Mail out of the outbox over SMTP (aiosmtplib), with ``PLM_SMTP_*``.

One SMTP connection per batch. A message counts as delivered only after the server's 250.
Connection trouble (connecting, TLS, login, a dropped connection) and 4xx replies are
retried with the outbox's backoff; a 5xx reply fails the message for good. With no
``PLM_SMTP_HOST``, messages are written to the log instead and marked logged.
"""

from __future__ import annotations

import email
import email.policy
import logging
from collections.abc import Sequence
from email.message import EmailMessage

import aiosmtplib

from server.infra import outbox
from server.infra.outbox import Delivery, Message
from server.infra.settings import Settings

log = logging.getLogger(__name__)

SMTP_TIMEOUT_SECONDS = 30


def smtp_client(settings: Settings) -> aiosmtplib.SMTP:
    """An SMTP client for ``PLM_SMTP_*``; ``auto`` TLS upgrades with STARTTLS when offered."""
    assert settings.smtp_host is not None
    start_tls: bool | None = {"auto": None, "none": False, "starttls": True, "tls": False}[settings.smtp_tls]
    return aiosmtplib.SMTP(
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_user,
        password=settings.smtp_password,
        use_tls=settings.smtp_tls == "tls",
        start_tls=start_tls,
        timeout=SMTP_TIMEOUT_SECONDS,
    )


class SmtpSender:
    """The outbox's :class:`~server.infra.outbox.Sender` for :data:`~server.infra.outbox.Kind.MAIL`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def backoff_seconds(self, attempts: int) -> int:
        return outbox.backoff_seconds(attempts)

    async def send(self, batch: Sequence[Message], delivery: Delivery) -> None:
        host = self.settings.smtp_host
        if host is None:
            for message in batch:
                _log_unsent(message)
                await delivery.logged(message)
            return

        client = smtp_client(self.settings)
        try:
            await client.connect()
        except (aiosmtplib.SMTPException, OSError) as exc:
            # Connecting, TLS and login say nothing about the messages themselves (a refused
            # login is a configuration an operator fixes): every message waits and retries.
            for message in batch:
                await delivery.retry(message, f"connecting to {host}: {_describe(exc)}")
            return

        try:
            await _send_all(client, batch, delivery)
        finally:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()


async def _send_all(client: aiosmtplib.SMTP, batch: Sequence[Message], delivery: Delivery) -> None:
    for i, message in enumerate(batch):
        # Renewed just before each send: a message another sender took meanwhile is skipped.
        if not await delivery.renew(message):
            continue
        try:
            await client.sendmail(message.origin, [message.destination], message.payload)
        except aiosmtplib.SMTPException as exc:
            code = _refusal_code(exc)
            if code is not None and 500 <= code < 600:
                await delivery.failed(message, _describe(exc))
            elif code is not None:
                await delivery.retry(message, _describe(exc))
                # A 4xx may come with a dropped connection (421); the rest wait for the next tick.
                if not client.is_connected:
                    await _retry_rest(batch[i + 1 :], delivery, "connection closed by the server")
                    return
            else:
                await _retry_rest(batch[i:], delivery, _describe(exc))
                return
        except OSError as exc:
            await _retry_rest(batch[i:], delivery, _describe(exc))
            return
        else:
            await delivery.delivered(message)


async def _retry_rest(rest: Sequence[Message], delivery: Delivery, error: str) -> None:
    for message in rest:
        await delivery.retry(message, error)


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def _refusal_code(exc: aiosmtplib.SMTPException) -> int | None:
    """The SMTP reply code that refused a message, if the server gave one."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        # One recipient per message; with several, any temporary refusal is worth a retry.
        return min(codes) if codes else None
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return exc.code
    return None


def _log_unsent(message: Message) -> None:
    parsed = email.message_from_string(message.payload, policy=email.policy.default)
    body = parsed.get_body(preferencelist=("plain",)) if isinstance(parsed, EmailMessage) else None
    text = body.get_content() if body is not None else message.payload
    log.info(
        "no SMTP server configured (PLM_SMTP_HOST): mail %s to %s logged instead of sent; "
        "it stays in the outbox.\nSubject: %s\n%s",
        message.key,
        message.destination,
        parsed["Subject"],
        text,
    )
