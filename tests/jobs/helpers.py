"""Drivers for the job tests: arrivals in the queue, a look at the outbox, mail bodies."""

from __future__ import annotations

from email.message import EmailMessage

import sqlalchemy as sa

from server.domain import accounts, admission
from server.domain.admission import AgentReport
from server.domain.models import OutboxMessage, Role
from server.infra.db import Database
from tests.support import FakeClock


async def arrive(
    db: Database,
    account_id: int,
    logon: str,
    clock: FakeClock,
    *,
    display: str | None = None,
    device: str | None = None,
) -> admission.Admission:
    """A new agent reports; with no license free it enters the queue at ``clock()``."""
    report = AgentReport(device or f"PC-{logon.upper()}", "ACME", logon, display or logon.title())
    async with db.write() as session:
        return await admission.admit(session, account_id, report, clock())


async def add_admin(
    db: Database, account_id: int, email: str, clock: FakeClock, role: Role = Role.ADMIN
) -> int:
    name = email.split("@")[0].title()
    async with db.write() as session:
        created = await accounts.create_admin(
            session, account_id=account_id, email=email, name=name, role=role, now=clock()
        )
    return created.id


async def set_notify(db: Database, admin_id: int, enabled: bool, clock: FakeClock) -> None:
    """What ``updateNotificationSettings`` runs."""
    async with db.write() as session:
        await accounts.update_notification_settings(session, admin_id, enabled, clock())


async def outbox(db: Database) -> list[OutboxMessage]:
    async with db.read() as session:
        return list((await session.execute(sa.select(OutboxMessage).order_by(OutboxMessage.id))).scalars())  # type: ignore[arg-type]


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]
