"""SQLModel tables and the enums of the domain.

Times are stored as UTC and always come back timezone-aware (:class:`UTCDateTime`), on
SQLite as on PostgreSQL. Agent keys are compared case-insensitively through a normalised
``key`` column (see :func:`agent_key`).
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

# The column types and helpers every table uses; re-exported here, where migrations and the
# rest of the code have always found them.
from server.domain.columns import KEY_SEPARATOR as KEY_SEPARATOR
from server.domain.columns import NO_ID_REUSE as NO_ID_REUSE
from server.domain.columns import UTCDateTime as UTCDateTime
from server.domain.columns import _enum, _fk, _ts
from server.domain.columns import agent_key as agent_key
from server.domain.columns import login_key as login_key
from server.domain.columns import utcnow as utcnow


class Role(str, enum.Enum):
    ADMIN = "ADMIN"
    VIEWER = "VIEWER"


class UserStatus(str, enum.Enum):
    LICENSED = "LICENSED"
    PENDING = "PENDING"


class PendingReason(str, enum.Enum):
    OVER_LIMIT = "OVER_LIMIT"
    MANUAL_REVIEW = "MANUAL_REVIEW"
    RELEASED = "RELEASED"


class AutoApproveMode(str, enum.Enum):
    OFF = "OFF"
    OLDEST_FIRST = "OLDEST_FIRST"


class QueueAction(str, enum.Enum):
    ENTERED = "ENTERED"
    APPROVED = "APPROVED"
    ASSIGNED = "ASSIGNED"
    MERGED = "MERGED"
    REMOVED = "REMOVED"
    RELEASED = "RELEASED"
    UNDONE = "UNDONE"


class Productivity(str, enum.Enum):
    PRODUCTIVE = "productive"
    UNPRODUCTIVE = "unproductive"
    NEUTRAL = "neutral"


class Account(SQLModel, table=True):
    __tablename__ = "account"
    __table_args__ = (NO_ID_REUSE,)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=256)
    ingest_key_hash: str = Field(max_length=64, unique=True)
    # The key before the last rotation, still accepted until ``previous_ingest_key_expires_at``
    # (``plm account rotate-ingest-key --grace-hours``), so agents can be updated meanwhile.
    previous_ingest_key_hash: str | None = Field(default=None, max_length=64, index=True)
    previous_ingest_key_expires_at: datetime | None = _ts(nullable=True)
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
    # docs/behaviour.md, Automation: OLDEST_FIRST approves queued users whenever licenses are free.
    auto_approve: AutoApproveMode = Field(
        default=AutoApproveMode.OFF,
        sa_column=sa.Column(_enum(AutoApproveMode), nullable=False, server_default=AutoApproveMode.OFF.value),
    )
    # Lower-case domains the rule approves (empty: every domain).
    auto_approve_domains: list[str] = Field(
        default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False, server_default="[]")
    )
    # A pending user is overdue after waiting this long; None: no target.
    queue_target_hours: int | None = None
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
    # Set by ``plm admin revoke``, which also replaces ``token_hash`` with the hash of a secret
    # nobody holds, so no lookup by hash can ever find the old token; cleared by a rotation.
    revoked_at: datetime | None = _ts(nullable=True)


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
    # When the user last moved from LICENSED to the queue (a lowered limit, a release): the
    # activity that started before it was recorded while licensed, so retention keeps it and
    # PendingInfo's retained figures leave it out (docs/behaviour.md, Retention).
    licensed_until: datetime | None = _ts(nullable=True)
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
    # The agent whose key this was (merged into agent_id): reports under it are marked with it.
    origin_agent_id: int | None = None


# Activity is stored for its reads (docs/architecture.md, Activity storage): events go in
# compact chunks, and rollups per agent, UTC day, app and productivity answer every read.
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite: the rowid alias


class ActivityChunk(SQLModel, table=True):
    """The events one stored batch reported for one agent and UTC day, encoded together
    (:mod:`server.domain.activity.chunks`): one row where a row per event used to be."""

    __tablename__ = "activity_chunk"
    __table_args__ = (sa.Index("ix_activity_chunk_user_day", "user_id", "day"),)

    id: int | None = Field(default=None, sa_column=sa.Column(_BIG_ID, primary_key=True))
    user_id: int = _fk("user.id", index=False)
    agent_id: int = _fk("agent.id")
    # The agent whose key the events were reported under: agent_id itself, or the agent an
    # alias was before a merge folded it into agent_id (an undone merge gives them back).
    origin_agent_id: int
    day: date
    first_start: datetime = _ts()
    last_start: datetime = _ts()
    event_count: int
    events: bytes = Field(sa_column=sa.Column(sa.LargeBinary(), nullable=False))


class ActivityRollup(SQLModel, table=True):
    """Totals of an agent's events per UTC day, app and productivity, kept at ingest."""

    __tablename__ = "activity_rollup"
    __table_args__ = (sa.Index("ix_activity_rollup_user_day", "user_id", "day"),)

    agent_id: int = Field(
        sa_column=sa.Column(sa.Integer, sa.ForeignKey("agent.id", ondelete="CASCADE"), primary_key=True)
    )
    origin_agent_id: int = Field(primary_key=True)
    day: date = Field(primary_key=True)
    app: str = Field(max_length=256, primary_key=True)
    productivity: str = Field(max_length=16, primary_key=True)
    user_id: int = _fk("user.id", index=False)
    event_count: int
    active_seconds: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))
    # The earliest and latest start and the latest end among them: whether a row lies wholly
    # inside a window, or its events must be read from the chunks of its day.
    first_start: datetime = _ts()
    last_start: datetime = _ts()
    last_end: datetime = _ts()


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
    __table_args__ = (
        sa.Index("ix_audit_account_action_at", "account_id", "action", "at"),
        sa.Index("ix_audit_user_id", "user_id", "id"),
        NO_ID_REUSE,
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = _fk("account.id")
    at: datetime = _ts()
    actor_id: int | None = _fk("admin.id", index=False, ondelete="SET NULL", nullable=True)
    action: QueueAction = Field(sa_column=sa.Column(_enum(QueueAction), nullable=False))
    # Not a foreign key: the entry outlives the user it speaks of.
    user_id: int
    user_display_name: str = Field(max_length=256)
    detail: str = Field(max_length=2048)
    # For exits from the queue: when the user entered it, so queue metrics need no join. On
    # the UNDONE entry of an approval: the entry time the user went back to (plans.auto_approvals).
    queue_entered_at: datetime | None = _ts(nullable=True)
    # What undoing the entry needs (server.domain.undo.records); None: not reversible.
    undo: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(sa.JSON(none_as_null=True)))
    # The UNDONE entry that reversed this one.
    undone_by: int | None = None


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
    """A likely match of a user (pending or licensed), kept current by
    :mod:`server.domain.suggestions.store`.

    Rows go with their user and with their target (foreign keys ``ON DELETE CASCADE``).
    ``pending_user_id`` is the user it is for, of either status (named when only pending
    users had suggestions).
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
