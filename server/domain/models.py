"""SQLModel tables and the enums of the domain.

Times are stored as UTC and always come back timezone-aware (:class:`UTCDateTime`), on
SQLite as on PostgreSQL. Agent keys are compared case-insensitively through a normalised
``key`` column (see :func:`agent_key`).
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel

# Separates the parts of a normalised agent key. Ingestion rejects control characters in
# names, so the joined key is unambiguous.
KEY_SEPARATOR = "\x1f"


def agent_key(device_name: str, domain: str, logon_name: str) -> str:
    """The case-insensitive identity of an agent: ``(deviceName, domain, logonName)``."""
    return KEY_SEPARATOR.join((device_name, domain, logon_name)).casefold()


def login_key(device_name: str, domain: str, logon_name: str) -> str | None:
    """``domain\\logonName`` for a domain account; ``None`` for a local one (domain == device)."""
    if domain.casefold() == device_name.casefold():
        return None
    return KEY_SEPARATOR.join((domain, logon_name)).casefold()


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp stored in UTC and returned timezone-aware on every database."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        # SQLite has no zone type: store naive UTC so strings sort by time.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# SQLite reuses the highest rowid after a delete; ids the API hands out must never come back
# as someone else (an admin acting on a removed user's id must get NOT_FOUND).
NO_ID_REUSE = {"sqlite_autoincrement": True}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Role(str, enum.Enum):
    ADMIN = "ADMIN"
    VIEWER = "VIEWER"


class UserStatus(str, enum.Enum):
    LICENSED = "LICENSED"
    PENDING = "PENDING"


class PendingReason(str, enum.Enum):
    OVER_LIMIT = "OVER_LIMIT"
    MANUAL_REVIEW = "MANUAL_REVIEW"


class QueueAction(str, enum.Enum):
    ENTERED = "ENTERED"
    APPROVED = "APPROVED"
    ASSIGNED = "ASSIGNED"
    MERGED = "MERGED"
    REMOVED = "REMOVED"


class Productivity(str, enum.Enum):
    PRODUCTIVE = "productive"
    UNPRODUCTIVE = "unproductive"
    NEUTRAL = "neutral"


def _enum(cls: type[enum.Enum]) -> sa.Enum:
    # Stored as plain strings (no database enum type: adding a value needs no migration).
    return sa.Enum(cls, native_enum=False, length=16, create_constraint=False, validate_strings=True)


def _ts(nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_column=sa.Column(UTCDateTime(), nullable=nullable, index=index))


def _fk(target: str, *, index: bool = True, ondelete: str = "CASCADE", nullable: bool = False) -> Any:
    return Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey(target, ondelete=ondelete), nullable=nullable, index=index
        )
    )


class Account(SQLModel, table=True):
    __tablename__ = "account"
    __table_args__ = (NO_ID_REUSE,)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=256)
    ingest_key_hash: str = Field(max_length=64, unique=True)
    license_limit: int
    manual_review: bool = False
    retention_days: int = 30
    # Bumped in the same transaction as every write that changes what the queue shows, so
    # a page cached under (account, queue_version) is never stale.
    queue_version: int = 0
    # What a seat plan depends on (docs/behaviour.md, Seat plans): who is pending or licensed,
    # their reasons and order, the limit and the settings. Bumped with those writes, in their
    # transaction; not when retained activity merely grows. The API's ``queueVersion``.
    plan_version: int = 0
    created_at: datetime = _ts()


class Admin(SQLModel, table=True):
    __tablename__ = "admin"
    __table_args__ = (sa.UniqueConstraint("account_id", "email", name="uq_admin_account_email"), NO_ID_REUSE)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = _fk("account.id")
    email: str = Field(max_length=320)
    name: str = Field(max_length=256)
    role: Role = Field(sa_column=sa.Column(_enum(Role), nullable=False))
    # Only a SHA-256 of the high-entropy token is stored; the token is shown once.
    token_hash: str = Field(max_length=64, unique=True)
    notify_on_pending: bool = True
    created_at: datetime = _ts()


class User(SQLModel, table=True):
    __tablename__ = "user"
    __table_args__ = (
        sa.Index("ix_user_account_status_pending", "account_id", "status", "pending_since", "id"),
        sa.Index("ix_user_account_status_licensed", "account_id", "status", "licensed_at", "id"),
        NO_ID_REUSE,
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = _fk("account.id", index=False)
    display_name: str = Field(max_length=256)
    status: UserStatus = Field(sa_column=sa.Column(_enum(UserStatus), nullable=False))
    first_seen_at: datetime = _ts()
    last_seen_at: datetime = _ts()
    licensed_at: datetime | None = _ts(nullable=True)
    pending_reason: PendingReason | None = Field(default=None, sa_column=sa.Column(_enum(PendingReason)))
    pending_since: datetime | None = _ts(nullable=True)
    # Lets a bulk INSERT … RETURNING hand ids back in parameter order on SQLite too, in one
    # statement instead of one per row (SQLAlchemy's "insertmanyvalues" sentinel).
    sentinel: int | None = Field(default=None, sa_column=sa.insert_sentinel("_sentinel"))


class Agent(SQLModel, table=True):
    __tablename__ = "agent"
    __table_args__ = (
        sa.UniqueConstraint("account_id", "key", name="uq_agent_account_key"),
        sa.Index("ix_agent_account_login", "account_id", "login_key"),
        NO_ID_REUSE,
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = _fk("account.id", index=False)
    user_id: int = _fk("user.id")
    device_name: str = Field(max_length=256)
    domain: str = Field(max_length=256)
    logon_name: str = Field(max_length=256)
    key: str = Field(max_length=800)
    login_key: str | None = Field(default=None, max_length=520)
    first_seen_at: datetime = _ts()
    last_seen_at: datetime = _ts()
    # See User.sentinel.
    sentinel: int | None = Field(default=None, sa_column=sa.insert_sentinel("_sentinel"))


class AgentAlias(SQLModel, table=True):
    """A key left by a merge: later reports with it resolve to ``agent_id``."""

    __tablename__ = "agent_alias"
    __table_args__ = (sa.UniqueConstraint("account_id", "key", name="uq_alias_account_key"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = _fk("account.id", index=False)
    agent_id: int = _fk("agent.id")
    device_name: str = Field(max_length=256)
    domain: str = Field(max_length=256)
    logon_name: str = Field(max_length=256)
    key: str = Field(max_length=800)
    created_at: datetime = _ts()


class ActivityEvent(SQLModel, table=True):
    __tablename__ = "activity_event"
    # Covering for retention and for a pending user's retained totals (count, sum of
    # durations, oldest start): those reads never touch the table's rows.
    __table_args__ = (sa.Index("ix_activity_user_start", "user_id", "start", "duration_seconds"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = _fk("user.id", index=False)
    agent_id: int = _fk("agent.id")
    start: datetime = _ts()
    duration_seconds: int
    app: str = Field(max_length=256)
    title: str | None = Field(default=None, max_length=2048)
    url: str | None = Field(default=None, max_length=2048)
    productivity: str = Field(max_length=16)


class IngestBatch(SQLModel, table=True):
    """A stored batch, so a replay answers the first call's response with ``duplicate``."""

    __tablename__ = "ingest_batch"
    __table_args__ = (
        sa.UniqueConstraint("account_id", "agent_key", "batch_id", name="uq_batch_account_agent_batch"),
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = _fk("account.id", index=False)
    agent_key: str = Field(max_length=800)
    batch_id: str = Field(max_length=128)
    response: str
    created_at: datetime = _ts(index=True)


class DoNotTrack(SQLModel, table=True):
    __tablename__ = "do_not_track"
    __table_args__ = (sa.UniqueConstraint("account_id", "key", name="uq_dnt_account_key"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = _fk("account.id", index=False)
    device_name: str = Field(max_length=256)
    domain: str = Field(max_length=256)
    logon_name: str = Field(max_length=256)
    key: str = Field(max_length=800)
    created_at: datetime = _ts()


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_entry"
    __table_args__ = (sa.Index("ix_audit_account_action_at", "account_id", "action", "at"), NO_ID_REUSE)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = _fk("account.id")
    at: datetime = _ts()
    actor_id: int | None = _fk("admin.id", index=False, ondelete="SET NULL", nullable=True)
    action: QueueAction = Field(sa_column=sa.Column(_enum(QueueAction), nullable=False))
    # Not a foreign key: the entry outlives the user it speaks of.
    user_id: int
    user_display_name: str = Field(max_length=256)
    detail: str = Field(max_length=2048)
    # For exits from the queue: when the user entered it, so queue metrics need no join.
    queue_entered_at: datetime | None = _ts(nullable=True)


class QueueArrival(SQLModel, table=True):
    """What a notification digest needs of one arrival, written with the arrival itself."""

    __tablename__ = "queue_arrival"
    __table_args__ = (sa.Index("ix_arrival_account_id", "account_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = _fk("account.id", index=False)
    user_id: int
    display_name: str = Field(max_length=256)
    device_name: str = Field(max_length=256)
    logon: str = Field(max_length=520)
    reason: PendingReason = Field(sa_column=sa.Column(_enum(PendingReason), nullable=False))
    at: datetime = _ts()


# ---------------------------------------------------------------------------- scheduled jobs


class OutboxStatus(str, enum.Enum):
    PENDING = "PENDING"
    SENT = "SENT"
    # Refused for good by the SMTP server (5xx); kept with the reason for an operator.
    FAILED = "FAILED"
    # No SMTP server configured: the message went to the log instead and stays here.
    LOGGED = "LOGGED"


class OutboxMessage(SQLModel, table=True):
    """One message (an email, a webhook delivery), written in the transaction that decided
    to send it and sent later (server.infra.outbox).

    ``next_attempt_at`` doubles as the claim: a sender pushes it forward before talking
    to the receiver, so a sender that dies mid-delivery leaves the row due again later.
    """

    __tablename__ = "outbox_message"
    __table_args__ = (
        sa.Index("ix_outbox_status_due", "status", "next_attempt_at"),
        sa.Index("ix_outbox_kind_status_due", "kind", "status", "next_attempt_at"),
        sa.Index("ix_outbox_webhook_id", "webhook_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # server.infra.outbox.Kind: "mail" or "webhook".
    kind: str = Field(default="mail", max_length=16, sa_column_kwargs={"server_default": "mail"})
    account_id: int = _fk("account.id")
    admin_id: int | None = _fk("admin.id", ondelete="SET NULL", nullable=True)
    # A webhook delivery's endpoint (server.domain.webhooks), its event (null for a test)
    # and the receiver's last HTTP status. No foreign key: deleting a webhook deletes its rows.
    webhook_id: int | None = None
    event_action: QueueAction | None = Field(default=None, sa_column=sa.Column(_enum(QueueAction)))
    event_user_id: int | None = None
    response_code: int | None = None
    # Stable across attempts (a mail's Message-ID, a webhook-id): a repeat is recognisable.
    message_id: str = Field(max_length=255, unique=True)
    sender: str = Field(max_length=320)
    recipient: str = Field(max_length=320)
    subject: str = Field(max_length=998)
    # The whole RFC 5322 message, built once so every attempt sends the same bytes.
    content: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    status: OutboxStatus = Field(sa_column=sa.Column(_enum(OutboxStatus), nullable=False))
    attempts: int = 0
    next_attempt_at: datetime = _ts()
    last_error: str | None = Field(default=None, max_length=2048)
    created_at: datetime = _ts()
    sent_at: datetime | None = _ts(nullable=True)


class NotifyCursor(SQLModel, table=True):
    """The newest queue arrival already covered by an admin's digests (or skipped)."""

    __tablename__ = "notify_cursor"

    admin_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("admin.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
        )
    )
    last_arrival_id: int = 0
    updated_at: datetime = _ts()


class JobLease(SQLModel, table=True):
    """Who runs a scheduled job: one row per job, held until ``expires_at``."""

    __tablename__ = "job_lease"

    name: str = Field(primary_key=True, max_length=64)
    holder: str = Field(max_length=128)
    expires_at: datetime = _ts()
    updated_at: datetime = _ts()
    # When the job last ran (in any process): a job due every hour runs once an hour
    # across processes, whichever holds the lease then.
    last_run_at: datetime | None = _ts(nullable=True)


class ReadinessProbe(SQLModel, table=True):
    """One row that ``/readyz`` rewrites: proof that a write can still commit."""

    __tablename__ = "readiness_probe"

    id: int = Field(primary_key=True)
    checked_at: datetime = _ts()


# ---------------------------------------------------------------------------- suggestions


class SuggestionKind(str, enum.Enum):
    ASSIGN = "ASSIGN"
    MERGE = "MERGE"


class MatchKey(SQLModel, table=True):
    """A normalised login, name or device form of an agent, for finding likely matches.

    Written with the agent (and for the keys of agents merged into it); see
    :mod:`server.domain.suggestions`. Goes with its agent.
    """

    __tablename__ = "match_key"
    __table_args__ = (sa.Index("ix_match_key_account_key", "account_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = _fk("account.id", index=False)
    agent_id: int = _fk("agent.id")
    key: str = Field(max_length=300)


class Suggestion(SQLModel, table=True):
    """A likely resolution of a pending user, computed when it enters the queue.

    Rows go with the pending user and with their target (foreign keys ``ON DELETE CASCADE``).
    """

    __tablename__ = "suggestion"
    __table_args__ = (sa.Index("ix_suggestion_pending_score", "pending_user_id", "score"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = _fk("account.id", index=False)
    pending_user_id: int = _fk("user.id", index=False)
    kind: SuggestionKind = Field(sa_column=sa.Column(_enum(SuggestionKind), nullable=False))
    # ASSIGN: the user; MERGE: the agent (its owner is read through it).
    target_user_id: int | None = _fk("user.id", nullable=True)
    target_agent_id: int | None = _fk("agent.id", nullable=True)
    score: float
    # JSON list of strings.
    reasons: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    computed_at: datetime = _ts()


# ---------------------------------------------------------------------------- settings history


class SettingsChange(SQLModel, table=True):
    """Who changed an account's settings, when, from what to what.

    The audit trail of ``updateAccountSettings`` (and ``plm account set-limit``): queue
    entries only record the users a lowered limit moved, and a toggle moves nobody.
    """

    __tablename__ = "settings_change"
    __table_args__ = (sa.Index("ix_settings_change_account_id", "account_id", "id"), NO_ID_REUSE)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = _fk("account.id", index=False)
    at: datetime = _ts()
    # Null when the system acted (the CLI); an admin's deletion keeps the entry.
    actor_id: int | None = _fk("admin.id", index=False, ondelete="SET NULL", nullable=True)
    manual_review_before: bool
    manual_review_after: bool
    license_limit_before: int
    license_limit_after: int
    moved_to_pending: int = 0
