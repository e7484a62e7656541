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

from server.domain import seat_counts
from server.domain.agent_keys import KnownAgent, resolve_keys
from server.domain.changes import (
    arrival_row,
    audit_row,
    bump_account,
    finish,
    lock_account,
)
from server.domain.models import (
    Account,
    Agent,
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
    #: :func:`agent_key` and :func:`login_key` of the names, worked out once: an ingest
    #: group reads them a dozen times per report.
    key: str = field(init=False, compare=False, repr=False)
    login: str | None = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", agent_key(self.device_name, self.domain, self.logon_name))
        object.__setattr__(self, "login", login_key(self.device_name, self.domain, self.logon_name))


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
    # The agent, and its user, were created by this admission (with ``last_seen_at`` now).
    new_agent: bool = False
    new_user: bool = False


# What admission reads and writes, built once: building a statement and its cache key
# costs more than running it on SQLite. They run on the session's connection (Core: no ORM
# bookkeeping); lists are expanding parameters.
_AGENT: sa.Table = Agent.__table__  # type: ignore[attr-defined]
_USER: sa.Table = User.__table__  # type: ignore[attr-defined]
_DNT: sa.Table = DoNotTrack.__table__  # type: ignore[attr-defined]
_ACCOUNT: sa.BindParameter[int] = sa.bindparam("account_id")
#: Everything :func:`decide` needs besides the account's settings, as tagged rows:
#: ``("ignored", key)`` for keys on the do-not-track list, ``("owner", login, agent id,
#: user id, status)`` for domain logins that already have agents, ``("count", status, n)``
#: for the account's users by status.
_IGNORED = sa.select(sa.literal_column("'ignored'"), _DNT.c.key, sa.null(), sa.null(), sa.null()).where(
    _DNT.c.account_id == _ACCOUNT, _DNT.c.key.in_(sa.bindparam("keys", expanding=True))
)
_OWNERS = (
    sa.select(sa.literal_column("'owner'"), _AGENT.c.login_key, _AGENT.c.id, _USER.c.id, _USER.c.status)
    .join_from(_AGENT, _USER, _USER.c.id == _AGENT.c.user_id)
    .where(_AGENT.c.account_id == _ACCOUNT, _AGENT.c.login_key.in_(sa.bindparam("logins", expanding=True)))
)
_COUNT = sa.select(sa.literal_column("'count'"), _USER.c.status, sa.func.count(), sa.null(), sa.null())
_COUNTS = _COUNT.where(_USER.c.account_id == _ACCOUNT).group_by(_USER.c.status)
_FACTS = sa.union_all(_IGNORED, _OWNERS, _COUNTS)
#: The same, when the counts are remembered (server.domain.seat_counts).
_FACTS_BUT_COUNTS = sa.union_all(_IGNORED, _OWNERS)
_INSERT_USERS = sa.insert(_USER).returning(_USER.c.id, sort_by_parameter_order=True)
_INSERT_AGENTS = sa.insert(_AGENT).returning(_AGENT.c.id, sort_by_parameter_order=True)
_INSERT_AUDIT = sa.insert(AuditEntry.__table__)  # type: ignore[attr-defined]
_INSERT_ARRIVALS = sa.insert(QueueArrival.__table__)  # type: ignore[attr-defined]


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
    #: licensed users now (None while manual review is on: nobody takes a license then)
    licensed: int | None
    #: licensed and pending users now, which the usage after the plan starts from
    counts: tuple[int, int] = (0, 0)


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

    def counts_after(self, counts: tuple[int, int]) -> tuple[int, int]:
        """The licensed and pending users once applied, from ``counts`` before."""
        entered = sum(u.status is UserStatus.PENDING for u in self.new_users)
        return counts[0] + len(self.new_users) - entered, counts[1] + entered


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

    ``known``: the caller resolved these reports' keys in this transaction while it held the
    account's lock (ingestion locks its accounts before anything else: a lock held on
    PostgreSQL, the write lock taken at ``BEGIN IMMEDIATE`` on SQLite), so nobody can have
    admitted one of the keys since: they are not looked up again.
    """
    under_lock = known is not None
    if known is None:
        known = await resolve_keys(session, {(account_id, r.key) for r in reports})
    todo = [r for r in reports if (account_id, r.key) not in known]
    if not todo:
        return [Admission(*known[(account_id, r.key)]) for r in reports]
    # New keys: from here on decisions depend on counts, so take the account lock (and,
    # unless the caller resolved them under it, look again: another process may have
    # admitted the same keys meanwhile).
    account = await lock_account(session, account_id)
    again = {} if under_lock else await resolve_keys(session, {(account_id, r.key) for r in todo})
    facts = await _facts(session, account, todo, {key: agent for (_, key), agent in again.items()})
    plan = decide(todo, facts)
    decided = iter(await apply(session, account, plan, now, counts=facts.counts))
    # The counts after the plan, at the version it left (server.domain.seat_counts).
    seat_counts.remember(session, account, plan.counts_after(facts.counts))
    return [
        Admission(*known[(account_id, r.key)]) if (account_id, r.key) in known else next(decided)
        for r in reports
    ]


async def _facts(
    session: AsyncSession, account: Account, reports: Sequence[AgentReport], known: dict[str, KnownAgent]
) -> Facts:
    """What :func:`decide` needs to know about these reports' keys, read under the lock in
    one statement."""
    assert account.id is not None
    keys = {r.key for r in reports}
    logins = {login for r in reports if (login := r.login) is not None}
    conn = await session.connection()
    remembered = seat_counts.known(session, account)
    rows = (
        await conn.execute(
            _FACTS if remembered is None else _FACTS_BUT_COUNTS,
            {"account_id": account.id, "keys": list(keys), "logins": list(logins)},
        )
    ).all()
    ignored: set[str] = set()
    counts = {UserStatus.LICENSED: 0, UserStatus.PENDING: 0}
    if remembered is not None:
        counts[UserStatus.LICENSED], counts[UserStatus.PENDING] = remembered
    owned: list[tuple[int, str, int, UserStatus]] = []
    for tag, value, agent_id, user_id, status in rows:
        if tag == "ignored":
            ignored.add(value)
        elif tag == "owner":
            owned.append((agent_id, value, user_id, UserStatus(status)))
        else:
            counts[UserStatus(value)] = int(agent_id)
    owners: dict[str, tuple[int, UserStatus]] = {}
    # A login's owner is the user of its oldest agent.
    for _, login, user_id, status in sorted(owned):
        owners.setdefault(login, (user_id, status))
    return Facts(
        known=known,
        ignored=frozenset(ignored),
        owners=owners,
        manual_review=account.manual_review,
        license_limit=account.license_limit,
        licensed=None if account.manual_review else counts[UserStatus.LICENSED],
        counts=(counts[UserStatus.LICENSED], counts[UserStatus.PENDING]),
    )


# ---------------------------------------------------------------------------- applying


async def apply(
    session: AsyncSession,
    account: Account,
    plan: Plan,
    now: datetime,
    *,
    counts: tuple[int, int] | None = None,
) -> list[Admission]:
    """Write what :func:`decide` planned: the new users and agents in one statement each,
    then the audit entries and queue arrivals of those who entered the queue; returns each
    report's admission, in order.

    ``counts``: the licensed and pending users counted under the lock before the plan; the
    usage the queue events carry is then derived from the plan instead of counted again.
    """
    assert account.id is not None
    account_id = account.id
    conn = await session.connection()
    if plan.new_users:
        ids = await conn.execute(
            _INSERT_USERS,
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
        agent_ids = await conn.execute(
            _INSERT_AGENTS,
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
        await conn.execute(
            _INSERT_AUDIT,
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
        await conn.execute(
            _INSERT_ARRIVALS,
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
        after = None if counts is None else plan.counts_after(counts)
        await finish(
            session, account, [(QueueAction.ENTERED, _owner_id(u), None) for u in entered], now, counts=after
        )
    elif plan.new_agents:
        # License usage and pending users' agents are shown with the queue, whose cached
        # pages are keyed by this version. A newcomer that took a free license changes the
        # usage a seat plan starts from, so it changes the plan version too.
        await bump_account(session, account, plan=bool(plan.new_users))
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
    return Admission(
        agent.id,
        _owner_id(agent.owner),
        agent.status.value,
        entered_queue=placed.entered_queue,
        new_agent=True,
        new_user=isinstance(agent.owner, NewUser),
    )


def entered_detail(reason: PendingReason, report: AgentReport) -> str:
    where = f"{report.domain}\\{report.logon_name} on {report.device_name}"
    if reason is PendingReason.MANUAL_REVIEW:
        return f"first report from {where}; manual review is on"
    return f"first report from {where}; no license free"
