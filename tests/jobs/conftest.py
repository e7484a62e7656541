"""A real SMTP server (aiosmtpd's Controller on a free port) and services over a real SQLite file."""

from __future__ import annotations

import email
import email.policy
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from server.infra.db import Database
from server.infra.settings import Settings
from server.web.runtime import Services
from tests.support import FakeClock, free_port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])


@dataclass
class Mailbox:
    """The handler: keeps what it accepted, answers ``reply`` to every DATA."""

    reply: str = "250 Message accepted for delivery"
    received: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        # Runs in the controller's thread; the client sees the reply only after this
        # returns, so a test that awaited the send can read ``received`` without waiting.
        if self.reply.startswith("250"):
            message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            with self._lock:
                self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return self.reply

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address in r.rcpt_tos]


class SmtpServer:
    """Start, stop and restart on the same port, as an SMTP outage would look."""

    def __init__(self) -> None:
        self.port = free_port()
        self.mailbox = Mailbox()
        self._controller: Controller | None = None

    def start(self) -> None:
        assert self._controller is None
        # A fresh Controller each time: a stopped one has closed its event loop.
        self._controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def settings(db_url: str, smtp: SmtpServer) -> Settings:
    return Settings(
        database_url=db_url,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_from="PLM <plm@acme.example>",
        smtp_tls="auto",
        notify_digest_seconds=60,
        public_url="https://plm.acme.example",
    )


@pytest.fixture
def svc(settings: Settings, db: Database, clock: FakeClock) -> Services:
    return Services(settings=settings, db=db, clock=clock)
