"""Admission (the first rule of licensing): where a reported agent and its person go.

A key the account knows (directly, or as an alias left by a merge) resolves to its agent.
A new key whose domain login already belongs to a user (a domain account on a second
device) becomes a new agent of that user. Any other new key gets a new agent and a new user,
and the account decides, in this order: the key is on the do-not-track list (nothing is
stored: IGNORED); manual review is on (PENDING, MANUAL_REVIEW); a license is free
(LICENSED); otherwise PENDING, OVER_LIMIT.

The rules live in :func:`decide`, a pure function of the reports and what the database
said about them, testable in memory. :func:`admit_many` gathers those facts under the
account's lock, decides, and :func:`apply` writes the plan in a fixed number of statements
whatever the number of reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.domain.changes import (
    arrival_row,
    audit_row,
    bump_queue_version,
    count_users,
    finish,
    lock_account,
)
from server.domain.models import (
    Account,
    Agent,
    AgentAlias,
    AuditEntry,
    DoNotTrack,
    PendingReason,
    QueueAction,
    QueueArrival,
    User,
    UserStatus,
    agent_key,
    login_key,
)
from server.domain.suggestions import store as suggestions


@dataclass(frozen=True, slots=True)
class AgentReport:
    """The agent part of an ingest batch."""

    device_name: str
    domain: str
    logon_name: str
    display_name: str

    @property
    def key(self) -> str:
        return agent_key(self.device_name, self.domain, self.logon_name)

    @property
    def login(self) -> str | None:
        return login_key(self.device_name, self.domain, self.logon_name)


class AdmissionStatus:
    LICENSED = "LICENSED"
    PENDING = "PENDING"
    IGNORED = "IGNORED"


@dataclass(frozen=True, slots=True)
class Admission:
    agent_id: int | None
    user_id: int | None
    status: str
    # True when this report put a new user in the queue.
    entered_queue: bool = False


KnownAgent = tuple[int, int, str]  # (agent_id, user_id, user status)


async def resolve_keys(
    session: AsyncSession,
    keys: set[tuple[int, str]],
    origins: dict[tuple[int, str], int] | None = None,
) -> dict[tuple[int, str], KnownAgent]:
    """``(account_id, key) -> (agent_id, user_id, status)`` for keys known directly or as aliases.

    ``origins``, when given, gets for each key known as an alias the agent it was the key of
    before a merge: ingestion marks the events reported under it (server.domain.undo).
    """
    if not keys:
        return {}
    found: dict[tuple[int, str], KnownAgent] = {}
    direct = await session.execute(
        sa.select(col(Agent.account_id), col(Agent.key), col(Agent.id), col(Agent.user_id), col(User.status))
        .join(User, col(User.id) == col(Agent.user_id))
        .where(sa.tuple_(col(Agent.account_id), col(Agent.key)).in_(keys))
    )
    for account_id, key, agent_id, user_id, status in direct:
        assert agent_id is not None
        found[(account_id, key)] = (agent_id, user_id, UserStatus(status).value)
    rest = keys - found.keys()
    if rest:
        aliased = await session.execute(
            sa.select(
                col(AgentAlias.account_id),
                col(AgentAlias.key),
                col(Agent.id),
                col(Agent.user_id),
                col(User.status),
                col(AgentAlias.origin_agent_id),
            )
            .join(Agent, col(Agent.id) == col(AgentAlias.agent_id))
            .join(User, col(User.id) == col(Agent.user_id))
            .where(sa.tuple_(col(AgentAlias.account_id), col(AgentAlias.key)).in_(rest))
        )
        for account_id, key, agent_id, user_id, status, origin in aliased:
            assert agent_id is not None
            found[(account_id, key)] = (agent_id, user_id, UserStatus(status).value)
            if origins is not None and origin is not None:
                origins[(account_id, key)] = origin
    return found


async def admit(session: AsyncSession, account_id: int, report: AgentReport, now: datetime) -> Admission:
    """Resolve a reported agent to its user, creating and admitting a new one (docs/behaviour.md, Admission)."""
    (admission,) = await admit_many(session, account_id, [report], now)
    return admission


# ---------------------------------------------------------------------------- deciding


@dataclass(frozen=True, slots=True)
class Facts:
    """What the database says about a group of new keys, read under the account's lock."""

    #: key -> the agent it already is (another process admitted it meanwhile)
    known: dict[str, KnownAgent]
    #: keys on the do-not-track list
    ignored: frozenset[str]
    #: domain login -> the existing user (id, status) a new device of that login joins
    owners: dict[str, tuple[int, UserStatus]]
    manual_review: bool
    license_limit: int
    #: licensed users now (not needed, and not counted, while manual review is on)
    licensed: int | None


@dataclass(eq=False)
class NewUser:
    """A user the plan creates, for the report that first showed them."""

    report: AgentReport
    status: UserStatus
    reason: PendingReason | None
    id: int | None = None  # known once applied


@dataclass(eq=False)
class NewAgent:
    """An agent the plan creates, owned by an existing user (an id) or a :class:`NewUser`."""

    report: AgentReport
    owner: int | NewUser
    #: the owner's status
    status: UserStatus
    id: int | None = None  # known once applied


@dataclass(frozen=True, eq=False)
class Placed:
    """A report placed on a new agent: made for it, or for the same key earlier in the list."""

    agent: NewAgent
    #: whether this report put a new user in the queue
    entered_queue: bool


@dataclass
class Plan:
    """The decision for each report, in order: an :class:`Admission` decided outright, or
    the new agent it is :class:`Placed` on."""

    outcomes: list[Admission | Placed] = field(default_factory=list)
    new_users: list[NewUser] = field(default_factory=list)
    #: one per new key, in the order first seen
    new_agents: list[NewAgent] = field(default_factory=list)


def decide(reports: Sequence[AgentReport], facts: Facts) -> Plan:
    """Admit ``reports`` in order, exactly as if they came one by one.

    A key seen earlier in the list resolves to the agent made for it; a domain login seen
    earlier joins that user; each license taken counts for the next report.
    """
    plan = Plan()
    made: dict[str, NewAgent] = {}
    login_owner: dict[str, int | NewUser] = {login: uid for login, (uid, _) in facts.owners.items()}
    statuses = dict(facts.owners.values())
    licensed = facts.licensed
    for report in reports:
        if report.key in facts.known:
            agent_id, user_id, status = facts.known[report.key]
            plan.outcomes.append(Admission(agent_id, user_id, status))
            continue
        if report.key in made:
            plan.outcomes.append(Placed(made[report.key], entered_queue=False))
            continue
        if report.key in facts.ignored:
            plan.outcomes.append(Admission(None, None, AdmissionStatus.IGNORED))
            continue
        login = report.login
        owner: int | NewUser | None = login_owner.get(login) if login is not None else None
        entered = False
        if owner is None:
            if facts.manual_review:
                owner = NewUser(report, UserStatus.PENDING, PendingReason.MANUAL_REVIEW)
            elif licensed is not None and licensed < facts.license_limit:
                owner = NewUser(report, UserStatus.LICENSED, None)
                licensed += 1
            else:
                owner = NewUser(report, UserStatus.PENDING, PendingReason.OVER_LIMIT)
            plan.new_users.append(owner)
            entered = owner.status is UserStatus.PENDING
            if login is not None:
                login_owner[login] = owner
        status = owner.status if isinstance(owner, NewUser) else statuses[owner]
        agent = NewAgent(report, owner, status)
        made[report.key] = agent
        plan.new_agents.append(agent)
        plan.outcomes.append(Placed(agent, entered))
    return plan


async def admit_many(
    session: AsyncSession,
    account_id: int,
    reports: Sequence[AgentReport],
    now: datetime,
    *,
    known: dict[tuple[int, str], KnownAgent] | None = None,
) -> list[Admission]:
    """:func:`admit` for several reports of one account, in order, in a fixed number of statements.

    ``known``: keys the caller already resolved in this transaction (only keys missing from
    it are looked up before the lock).
    """
    if known is None:
        known = await resolve_keys(session, {(account_id, r.key) for r in reports})
    todo = [r for r in reports if (account_id, r.key) not in known]
    if not todo:
        return [Admission(*known[(account_id, r.key)]) for r in reports]
    # New keys: from here on decisions depend on counts, so take the account lock and look
    # again (another process may have admitted the same keys meanwhile).
    account = await lock_account(session, account_id)
    plan = decide(todo, await _facts(session, account, todo))
    decided = iter(await apply(session, account, plan, now))
    return [
        Admission(*known[(account_id, r.key)]) if (account_id, r.key) in known else next(decided)
        for r in reports
    ]


async def _facts(session: AsyncSession, account: Account, reports: Sequence[AgentReport]) -> Facts:
    """What :func:`decide` needs to know about these reports' keys, read under the lock."""
    assert account.id is not None
    keys = {r.key for r in reports}
    under_lock = await resolve_keys(session, {(account.id, k) for k in keys})
    ignored = frozenset(
        (
            await session.execute(
                sa.select(col(DoNotTrack.key)).where(
                    col(DoNotTrack.account_id) == account.id, col(DoNotTrack.key).in_(keys)
                )
            )
        ).scalars()
    )
    logins = {login for r in reports if (login := r.login) is not None}
    owners: dict[str, tuple[int, UserStatus]] = {}
    if logins:
        rows = await session.execute(
            sa.select(col(Agent.login_key), col(User.id), col(User.status))
            .join(User, col(User.id) == col(Agent.user_id))
            .where(col(Agent.account_id) == account.id, col(Agent.login_key).in_(logins))
            .order_by(col(Agent.id))
        )
        for login, found_id, status in rows:
            if login is not None and found_id is not None:
                owners.setdefault(login, (found_id, UserStatus(status)))
    return Facts(
        known={key: agent for (_, key), agent in under_lock.items()},
        ignored=ignored,
        owners=owners,
        manual_review=account.manual_review,
        license_limit=account.license_limit,
        licensed=None
        if account.manual_review
        else await count_users(session, account.id, UserStatus.LICENSED),
    )


# ---------------------------------------------------------------------------- applying


async def apply(session: AsyncSession, account: Account, plan: Plan, now: datetime) -> list[Admission]:
    """Write what :func:`decide` planned: the new users and agents in one statement each,
    then the audit entries and queue arrivals of those who entered the queue; returns each
    report's admission, in order."""
    assert account.id is not None
    account_id = account.id
    if plan.new_users:
        ids = await session.execute(
            sa.insert(User.__table__).returning(User.__table__.c.id, sort_by_parameter_order=True),  # type: ignore[attr-defined]
            [
                {
                    "account_id": account_id,
                    "display_name": u.report.display_name,
                    "status": u.status.value,
                    "first_seen_at": now,
                    "last_seen_at": now,
                    "licensed_at": now if u.status is UserStatus.LICENSED else None,
                    "pending_reason": u.reason.value if u.reason else None,
                    "pending_since": now if u.status is UserStatus.PENDING else None,
                }
                for u in plan.new_users
            ],
        )
        for u, (uid,) in zip(plan.new_users, ids, strict=True):
            u.id = uid
    if plan.new_agents:
        agent_ids = await session.execute(
            sa.insert(Agent.__table__).returning(Agent.__table__.c.id, sort_by_parameter_order=True),  # type: ignore[attr-defined]
            [
                {
                    "account_id": account_id,
                    "user_id": _owner_id(a.owner),
                    "device_name": a.report.device_name,
                    "domain": a.report.domain,
                    "logon_name": a.report.logon_name,
                    "key": a.report.key,
                    "login_key": a.report.login,
                    "first_seen_at": now,
                    "last_seen_at": now,
                }
                for a in plan.new_agents
            ],
        )
        for a, (aid,) in zip(plan.new_agents, agent_ids, strict=True):
            a.id = aid

    entered = [u for u in plan.new_users if u.status is UserStatus.PENDING]
    if entered:
        await session.execute(
            sa.insert(AuditEntry.__table__),  # type: ignore[attr-defined]
            [
                audit_row(
                    account_id,
                    None,
                    QueueAction.ENTERED,
                    _owner_id(u),
                    u.report.display_name,
                    entered_detail(u.reason or PendingReason.OVER_LIMIT, u.report),
                    now,
                )
                for u in entered
            ],
        )
        await session.execute(
            sa.insert(QueueArrival.__table__),  # type: ignore[attr-defined]
            [
                arrival_row(
                    account_id,
                    _owner_id(u),
                    u.report.display_name,
                    u.report.device_name,
                    f"{u.report.domain}\\{u.report.logon_name}",
                    u.reason or PendingReason.OVER_LIMIT,
                    now,
                )
                for u in entered
            ],
        )
        await finish(session, account, [(QueueAction.ENTERED, _owner_id(u), None) for u in entered], now)
    elif plan.new_agents:
        # License usage and pending users' agents are shown with the queue, whose cached
        # pages are keyed by this version. A newcomer that took a free license changes the
        # usage a seat plan starts from, so it changes the plan version too.
        await bump_queue_version(session, account_id, plan=bool(plan.new_users))
    await suggestions.on_admitted(
        session,
        account_id,
        [(a.id or 0, _owner_id(a.owner), a.report) for a in plan.new_agents],
        [_owner_id(u) for u in plan.new_users],
        now,
    )
    return [o if isinstance(o, Admission) else _admission(o) for o in plan.outcomes]


def _owner_id(owner: int | NewUser) -> int:
    if isinstance(owner, int):
        return owner
    assert owner.id is not None, "the plan's new users are inserted first"
    return owner.id


def _admission(placed: Placed) -> Admission:
    agent = placed.agent
    assert agent.id is not None, "the plan's new agents are inserted first"
    return Admission(agent.id, _owner_id(agent.owner), agent.status.value, entered_queue=placed.entered_queue)


def entered_detail(reason: PendingReason, report: AgentReport) -> str:
    where = f"{report.domain}\\{report.logon_name} on {report.device_name}"
    if reason is PendingReason.MANUAL_REVIEW:
        return f"first report from {where}; manual review is on"
    return f"first report from {where}; no license free"
