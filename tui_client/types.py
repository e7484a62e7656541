"""What the server answers, as typed and frozen dataclasses.

Each class mirrors the fields the documents in :mod:`tui_client.operations` select, under
Python names (``displayName`` is ``display_name``); :func:`tui_client.parsing.parse` builds
one from GraphQL's JSON by its type annotations. Enums are open: the API adds values freely and clients ignore
what they do not know (docs/api.md, Stability), so a value the client has not seen parses as
a member of its own and shows as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Generic, TypeVar

T = TypeVar("T")


# ---------------------------------------------------------------------------- enums


class OpenEnum(StrEnum):
    """A GraphQL enum the server may extend: an unknown value becomes a member of its own."""

    @classmethod
    def _missing_(cls, value: object) -> OpenEnum | None:
        if not isinstance(value, str):
            return None
        member = str.__new__(cls, value)
        member._name_ = value
        member._value_ = value
        return member


class Role(OpenEnum):
    ADMIN = "ADMIN"
    VIEWER = "VIEWER"


class UserStatus(OpenEnum):
    LICENSED = "LICENSED"
    PENDING = "PENDING"


class PendingReason(OpenEnum):
    OVER_LIMIT = "OVER_LIMIT"
    MANUAL_REVIEW = "MANUAL_REVIEW"
    #: An admin released the user's license (reclaim): it waits like any pending user.
    RELEASED = "RELEASED"


class AutoApproveMode(OpenEnum):
    """The auto-approval rule: off, or the oldest waiting first whenever licenses are free."""

    OFF = "OFF"
    OLDEST_FIRST = "OLDEST_FIRST"


class SuggestionKind(OpenEnum):
    ASSIGN = "ASSIGN"
    MERGE = "MERGE"


class ErrorCode(OpenEnum):
    """Why a mutation was refused (its payload's ``errors``)."""

    NOT_FOUND = "NOT_FOUND"
    NOT_PENDING = "NOT_PENDING"
    LICENSE_LIMIT_EXCEEDED = "LICENSE_LIMIT_EXCEEDED"
    INVALID_INPUT = "INVALID_INPUT"
    CONFLICT = "CONFLICT"
    #: The queue changed since the plan that was applied: nothing changed.
    PLAN_CHANGED = "PLAN_CHANGED"
    NOT_UNDOABLE = "NOT_UNDOABLE"


class QueueAction(OpenEnum):
    """How a user entered or left the queue: events, the audit log, the metrics."""

    ENTERED = "ENTERED"
    APPROVED = "APPROVED"
    ASSIGNED = "ASSIGNED"
    MERGED = "MERGED"
    REMOVED = "REMOVED"
    RELEASED = "RELEASED"
    UNDONE = "UNDONE"


# ---------------------------------------------------------------------------- types


@dataclass(frozen=True, kw_only=True)
class UserError:
    """An expected failure in a mutation's payload: nothing changed."""

    code: ErrorCode
    message: str
    field: str | None = None


@dataclass(frozen=True, kw_only=True)
class Account:
    id: str
    name: str
    license_limit: int
    licenses_used: int
    licenses_available: int
    pending_count: int
    manual_review: bool
    retention_days: int
    auto_approve: AutoApproveMode = AutoApproveMode.OFF
    #: Lower-case domains the rule approves from; empty: every domain.
    auto_approve_domains: tuple[str, ...] = ()
    #: How long a pending user may wait before it is overdue; None: no target.
    queue_target_hours: int | None = None


@dataclass(frozen=True, kw_only=True)
class Me:
    id: str
    name: str
    email: str
    role: Role

    @property
    def can_act(self) -> bool:
        return self.role is Role.ADMIN


@dataclass(frozen=True, kw_only=True)
class AdminRef:
    """Who acted: an event's or an audit entry's actor."""

    id: str
    name: str


@dataclass(frozen=True, kw_only=True)
class UserRef:
    id: str
    display_name: str


@dataclass(frozen=True, kw_only=True)
class AgentRef:
    id: str
    device_name: str
    domain: str
    logon_name: str

    @property
    def logon(self) -> str:
        return f"{self.domain}\\{self.logon_name}"


@dataclass(frozen=True, kw_only=True)
class OwnedAgent(AgentRef):
    """An agent and the user it belongs to: a merge's target."""

    user: UserRef

    @property
    def label(self) -> str:
        """What the admin reads: "Ann Smith (ACME\\asmith on LAPTOP-7)"."""
        return f"{self.user.display_name} ({self.logon} on {self.device_name})"


@dataclass(frozen=True, kw_only=True)
class PendingInfo:
    reason: PendingReason
    entered_at: datetime
    retained_event_count: int
    retained_active_seconds: int
    oldest_retained_at: datetime | None = None
    data_expires_at: datetime | None = None
    #: When the wait reaches the account's queue target; None without a target.
    due_at: datetime | None = None
    #: ``due_at`` had passed when the server answered (its clock, not the client's).
    overdue: bool = False


@dataclass(frozen=True, kw_only=True)
class MatchedUser(UserRef):
    """An ASSIGN's user; the detail pane also reads its status and devices (three users of one
    name tell apart by them)."""

    status: UserStatus | None = None
    agents: tuple[AgentRef, ...] = ()

    @property
    def where(self) -> str:
        """ "licensed · LAPTOP-5800, LAPTOP-5800B", as far as it was read."""
        devices = ", ".join(sorted({a.device_name for a in self.agents}))
        return " · ".join(part for part in (self.status and self.status.lower(), devices) if part)


@dataclass(frozen=True, kw_only=True)
class Suggestion:
    """The server's guess at who a pending user is: ASSIGN to a user, or MERGE into an agent.

    The schema gives an ASSIGN its user and a MERGE its agent.
    """

    kind: SuggestionKind
    score: float
    reasons: tuple[str, ...]
    user: MatchedUser | None = None
    agent: OwnedAgent | None = None

    @property
    def target_id(self) -> str:
        """The user (ASSIGN) or agent (MERGE) id the mutation takes."""
        return self.agent.id if self.agent is not None else self._user.id

    @property
    def target(self) -> str:
        """What the admin reads: "Ann Smith", or "Ann Smith (ACME\\asmith on LAPTOP-7)" for a merge."""
        return self.agent.label if self.agent is not None else self._user.display_name

    @property
    def target_name(self) -> str:
        return self.agent.user.display_name if self.agent is not None else self._user.display_name

    @property
    def _user(self) -> MatchedUser:
        assert self.user is not None, "a suggestion with neither a user nor an agent"
        return self.user


@dataclass(frozen=True, kw_only=True)
class User:
    id: str
    display_name: str
    status: UserStatus
    first_seen_at: datetime
    last_seen_at: datetime
    licensed_at: datetime | None = None
    agents: tuple[AgentRef, ...]
    pending: PendingInfo | None = None
    # The best suggestion only (the queue's column); all of them: PlmApi.suggestions.
    suggestions: tuple[Suggestion, ...] = ()
    #: When its latest activity ended; read by the Reclaim list only (None there: never active).
    last_activity_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class AppUsage:
    app: str
    active_seconds: int


@dataclass(frozen=True, kw_only=True)
class DailyActivity:
    date: date
    active_seconds: int
    productive_seconds: int
    unproductive_seconds: int


@dataclass(frozen=True, kw_only=True)
class ActivitySummary:
    """A user's activity over the last ``days`` whole days: a pending user's retained activity."""

    days: int
    active_seconds: int
    productive_seconds: int
    unproductive_seconds: int
    top_apps: tuple[AppUsage, ...]
    #: One entry per day, oldest first, days without activity included.
    daily: tuple[DailyActivity, ...]

    @property
    def neutral_seconds(self) -> int:
        return max(0, self.active_seconds - self.productive_seconds - self.unproductive_seconds)


@dataclass(frozen=True, kw_only=True)
class SeenAgent(AgentRef):
    """An agent in the detail pane: when it last reported."""

    last_seen_at: datetime


@dataclass(frozen=True, kw_only=True)
class UserDetail:
    """What the detail pane shows of the row under the cursor, read for that row alone."""

    id: str
    display_name: str
    status: UserStatus
    first_seen_at: datetime
    licensed_at: datetime | None = None
    last_activity_at: datetime | None = None
    agents: tuple[SeenAgent, ...]
    pending: PendingInfo | None = None
    suggestions: tuple[Suggestion, ...] = ()
    activity: ActivitySummary


@dataclass(frozen=True, kw_only=True)
class SeatPlan:
    """What an approval or a settings change would do now; nothing changed yet."""

    #: Who would become licensed, in the order they would take the licenses.
    approve: tuple[UserRef, ...]
    #: Licensed users a lowered limit would move to the queue, most recently licensed first.
    move_to_pending: tuple[UserRef, ...]
    license_limit: int
    licenses_used_before: int
    licenses_used_after: int
    #: Passed back as ``expectedQueueVersion``: the change applies only to this very plan.
    queue_version: str
    #: What applying now would answer (nothing would change then).
    errors: tuple[UserError, ...] = ()


@dataclass(frozen=True, kw_only=True)
class AgentUser(UserRef):
    status: UserStatus


@dataclass(frozen=True, kw_only=True)
class Agent(AgentRef):
    """An agent in the agents list (the merge picker)."""

    last_seen_at: datetime
    user: AgentUser


@dataclass(frozen=True, kw_only=True)
class AuditEntry:
    id: str
    at: datetime
    actor: AdminRef | None = None
    action: QueueAction
    user_id: str
    user_display_name: str
    detail: str
    # Until when undoActions can reverse the entry; None: it cannot.
    undoable_until: datetime | None = None

    @property
    def actor_name(self) -> str | None:
        return None if self.actor is None else self.actor.name


@dataclass(frozen=True, kw_only=True)
class ActionCount:
    action: QueueAction
    count: int


@dataclass(frozen=True, kw_only=True)
class QueueMetrics:
    days: int
    pending_count: int
    oldest_pending_since: datetime | None = None
    resolved_count: int
    average_resolution_seconds: float | None = None
    median_resolution_seconds: float | None = None
    p90_resolution_seconds: float | None = None
    resolved_by_action: tuple[ActionCount, ...]
    #: Pending users past the queue target now.
    overdue_count: int = 0
    #: The share of the period's resolutions within the target; None without a target or any.
    within_target_ratio: float | None = None

    def resolved(self, action: QueueAction) -> int:
        return sum(r.count for r in self.resolved_by_action if r.action == action)


@dataclass(frozen=True, kw_only=True)
class Page(Generic[T]):
    """One page of a connection, in the list's order."""

    items: list[T]
    total_count: int
    has_next_page: bool
    end_cursor: str | None
    #: Each item's own cursor, when the document asked for them (a list re-read from any row).
    cursors: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class PendingPage(Page[User]):
    """A page of the queue, with the account's usage read by the same query."""

    account: Account


@dataclass(frozen=True, kw_only=True)
class QueueEvent:
    action: QueueAction
    user_id: str
    # The user after the change; None when it was removed, assigned or merged away.
    user: User | None = None
    account: Account
    actor: AdminRef | None = None
    at: datetime | None = None
    # ASSIGNED or MERGED: the user the pending one became part of, after the change.
    target: User | None = None

    @property
    def actor_name(self) -> str | None:
        return None if self.actor is None else self.actor.name
