"""Who consumes a license: admission (SPEC §2) and the admin actions of SPEC §5.

Every function here runs inside one write transaction the caller opened with
:meth:`server.db.Database.write`. A refusal raises :class:`DomainError` before anything is
written, or the caller's transaction rolls back, so a refused action changes nothing. Each
action writes one audit entry per affected user and records one :class:`QueueEvent` per
affected user, which the database publishes after the commit.

The license invariant (licensed users <= ``licenseLimit``) rests on :func:`lock_account`:
every path that can license someone first takes the account's lock, then counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.domain import suggestions
from server.domain.errors import DomainError, ErrorCode, PermissionDenied
from server.domain.events import AccountUsage, QueueEvent, record
from server.domain.models import (
    Account,
    ActivityEvent,
    Agent,
    AgentAlias,
    AuditEntry,
    DoNotTrack,
    PendingReason,
    QueueAction,
    QueueArrival,
    Role,
    SettingsChange,
    User,
    UserStatus,
    agent_key,
    login_key,
)

MAX_BULK_IDS = 500
MAX_LICENSE_LIMIT = 10_000_000


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: an admin of ``account_id``, or the system (``admin_id`` None)."""

    account_id: int
    admin_id: int | None
    role: Role

    @classmethod
    def system(cls, account_id: int) -> Actor:
        return cls(account_id=account_id, admin_id=None, role=Role.ADMIN)

    def require_admin(self) -> None:
        if self.role is not Role.ADMIN:
            raise PermissionDenied("this action needs the ADMIN role; VIEWERs may only read")


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


@dataclass
class ActionResult:
    """What an action changed, for the API to show and the live queue to publish."""

    account: Account
    usage: AccountUsage
    events: list[QueueEvent] = field(default_factory=list)
    users: list[User] = field(default_factory=list)
    agent: Agent | None = None
    removed_user_ids: list[int] = field(default_factory=list)


# ---------------------------------------------------------------------------- helpers


async def lock_account(session: AsyncSession, account_id: int) -> Account:
    """Load the account, holding its lock until the transaction ends.

    PostgreSQL: ``SELECT … FOR UPDATE`` on the account row. SQLite: the transaction already
    holds the database's write lock (``BEGIN IMMEDIATE``) and ``FOR UPDATE`` renders nothing.
    """
    account = (
        await session.execute(
            sa.select(Account).where(Account.id == account_id).with_for_update()  # type: ignore[arg-type]
        )
    ).scalar_one_or_none()
    if account is None:
        raise DomainError(ErrorCode.NOT_FOUND, f"account {account_id} does not exist")
    return account


async def lock_accounts(session: AsyncSession, account_ids: Iterable[int]) -> None:
    """:func:`lock_account` for several accounts, always in id order so two callers never deadlock."""
    ids = sorted(set(account_ids))
    if ids:
        await session.execute(
            sa.select(col(Account.id)).where(col(Account.id).in_(ids)).order_by(col(Account.id)).with_for_update()
        )


async def count_users(session: AsyncSession, account_id: int, status: UserStatus) -> int:
    return int(
        (
            await session.execute(
                sa.select(sa.func.count())
                .select_from(User)
                .where(User.account_id == account_id, User.status == status)  # type: ignore[arg-type]
            )
        ).scalar_one()
    )


async def account_usage(session: AsyncSession, account: Account) -> AccountUsage:
    assert account.id is not None
    return AccountUsage(
        account_id=account.id,
        license_limit=account.license_limit,
        licenses_used=await count_users(session, account.id, UserStatus.LICENSED),
        pending_count=await count_users(session, account.id, UserStatus.PENDING),
        manual_review=account.manual_review,
    )


async def bump_queue_version(session: AsyncSession, account_id: int) -> int:
    """Mark the account's queue as changed; returns the new version."""
    return int(
        (
            await session.execute(
                sa.update(Account)
                .where(Account.id == account_id)  # type: ignore[arg-type]
                .values(queue_version=col(Account.queue_version) + 1)
                .returning(col(Account.queue_version))
            )
        ).scalar_one()
    )


def _audit(
    session: AsyncSession,
    actor: Actor | None,
    action: QueueAction,
    user: User,
    detail: str,
    now: datetime,
    queue_entered_at: datetime | None = None,
) -> None:
    assert user.id is not None
    session.add(
        AuditEntry(
            account_id=user.account_id,
            at=now,
            actor_id=actor.admin_id if actor else None,
            action=action,
            user_id=user.id,
            user_display_name=user.display_name,
            detail=detail,
            queue_entered_at=queue_entered_at,
        )
    )


async def _finish(
    session: AsyncSession,
    account: Account,
    changes: Sequence[tuple[QueueAction, int, int | None]],
    now: datetime,
    *,
    target_user_id: int | None = None,
) -> tuple[AccountUsage, list[QueueEvent]]:
    """Flush, bump the queue version, compute usage and record one event per change.

    ``target_user_id``: for an assign or a merge, the user the pending one became part of.
    """
    assert account.id is not None
    await session.flush()
    version = await bump_queue_version(session, account.id)
    account.queue_version = version
    usage = await account_usage(session, account)
    events = [
        QueueEvent(
            action=action,
            account_id=account.id,
            user_id=user_id,
            at=now,
            actor_id=actor_id,
            usage=usage,
            queue_version=version,
            target_user_id=target_user_id,
        )
        for action, user_id, actor_id in changes
    ]
    record(session, events)
    return usage, events


def _check_ids(user_ids: Sequence[int], field_name: str) -> list[int]:
    ids = list(dict.fromkeys(user_ids))
    if not ids:
        raise DomainError(ErrorCode.INVALID_INPUT, "give at least one user id", field_name)
    if len(ids) > MAX_BULK_IDS:
        raise DomainError(
            ErrorCode.INVALID_INPUT,
            f"at most {MAX_BULK_IDS} ids at once; {len(ids)} were given",
            field_name,
        )
    return ids


async def _load_users(
    session: AsyncSession, account_id: int, user_ids: Sequence[int], field_name: str
) -> list[User]:
    """The users with these ids in this account, in the order given; NOT_FOUND if any is missing."""
    rows = (
        await session.execute(
            sa.select(User).where(User.account_id == account_id, User.id.in_(user_ids))  # type: ignore[union-attr,arg-type]
        )
    ).scalars()
    found = {u.id: u for u in rows}
    missing = [i for i in user_ids if i not in found]
    if missing:
        raise DomainError(
            ErrorCode.NOT_FOUND,
            f"no user with id {', '.join(map(str, missing))}",
            field_name,
            missing=missing,
        )
    return [found[i] for i in user_ids]


def _require_pending(users: Iterable[User], field_name: str) -> None:
    not_pending = [u for u in users if u.status is not UserStatus.PENDING]
    if not_pending:
        names = ", ".join(f"{u.display_name} ({u.id})" for u in not_pending)
        raise DomainError(
            ErrorCode.NOT_PENDING,
            f"not pending: {names}",
            field_name,
            not_pending=[u.id for u in not_pending],
        )


def _make_pending(user: User, reason: PendingReason, now: datetime) -> None:
    user.status = UserStatus.PENDING
    user.pending_reason = reason
    user.pending_since = now
    user.licensed_at = None


def _make_licensed(user: User, now: datetime) -> None:
    user.status = UserStatus.LICENSED
    user.licensed_at = now
    user.pending_reason = None
    user.pending_since = None


def _queue_arrival(session: AsyncSession, user: User, agent: Agent | None, now: datetime) -> None:
    assert user.id is not None and user.pending_reason is not None
    session.add(
        QueueArrival(
            account_id=user.account_id,
            user_id=user.id,
            display_name=user.display_name,
            device_name=agent.device_name if agent else "",
            logon=f"{agent.domain}\\{agent.logon_name}" if agent else "",
            reason=user.pending_reason,
            at=now,
        )
    )


# ---------------------------------------------------------------------------- admission


KnownAgent = tuple[int, int, str]  # (agent_id, user_id, user status)


async def resolve_keys(
    session: AsyncSession, keys: set[tuple[int, str]]
) -> dict[tuple[int, str], KnownAgent]:
    """``(account_id, key) -> (agent_id, user_id, status)`` for keys known directly or as aliases."""
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
            sa.select(col(AgentAlias.account_id), col(AgentAlias.key), col(Agent.id), col(Agent.user_id), col(User.status))
            .join(Agent, col(Agent.id) == col(AgentAlias.agent_id))
            .join(User, col(User.id) == col(Agent.user_id))
            .where(sa.tuple_(col(AgentAlias.account_id), col(AgentAlias.key)).in_(rest))
        )
        for account_id, key, agent_id, user_id, status in aliased:
            assert agent_id is not None
            found[(account_id, key)] = (agent_id, user_id, UserStatus(status).value)
    return found


async def admit(
    session: AsyncSession, account_id: int, report: AgentReport, now: datetime
) -> Admission:
    """Resolve a reported agent to its user, creating and admitting a new one (SPEC §2)."""
    (admission,) = await admit_many(session, account_id, [report], now)
    return admission


@dataclass
class _NewUser:
    report: AgentReport
    status: UserStatus
    reason: PendingReason | None
    id: int | None = None


async def admit_many(
    session: AsyncSession,
    account_id: int,
    reports: Sequence[AgentReport],
    now: datetime,
    *,
    known: dict[tuple[int, str], KnownAgent] | None = None,
) -> list[Admission]:
    """:func:`admit` for several reports of one account, in order, in a fixed number of statements.

    Reports are decided one after another exactly as if they came one by one: a key seen
    earlier in the list resolves to the agent made for it, a domain login seen earlier
    joins that user. ``known``: keys the caller already resolved in this transaction
    (only keys missing from it are looked up before the lock).
    """
    results: list[Admission | None] = [None] * len(reports)
    keys = {(account_id, r.key) for r in reports}
    if known is None:
        known = await resolve_keys(session, keys)
    todo = [i for i, r in enumerate(reports) if (account_id, r.key) not in known]
    for i, r in enumerate(reports):
        if (account_id, r.key) in known:
            agent_id, user_id, status = known[(account_id, r.key)]
            results[i] = Admission(agent_id, user_id, status)
    if not todo:
        return [r for r in results if r is not None]

    # New keys: from here on decisions depend on counts, so take the account lock and look
    # again (another process may have admitted the same keys meanwhile).
    account = await lock_account(session, account_id)
    new_keys = {reports[i].key for i in todo}
    under_lock = await resolve_keys(session, {(account_id, k) for k in new_keys})
    ignored = set(
        (
            await session.execute(
                sa.select(col(DoNotTrack.key)).where(
                    col(DoNotTrack.account_id) == account_id, col(DoNotTrack.key).in_(new_keys)
                )
            )
        ).scalars()
    )
    logins = {login for i in todo if (login := reports[i].login) is not None}
    # login -> the existing user (id, status) a new device of that domain account joins.
    owners: dict[str, tuple[int, UserStatus]] = {}
    if logins:
        rows = await session.execute(
            sa.select(col(Agent.login_key), col(User.id), col(User.status))
            .join(User, col(User.id) == col(Agent.user_id))
            .where(col(Agent.account_id) == account_id, col(Agent.login_key).in_(logins))
            .order_by(col(Agent.id))
        )
        for login, found_id, status in rows:
            if login is not None and found_id is not None:
                owners.setdefault(login, (found_id, UserStatus(status)))
    licensed = None if account.manual_review else await count_users(session, account_id, UserStatus.LICENSED)

    # Decide in order, in memory. Each new agent belongs to an existing user (an int) or to
    # a user created here (a _NewUser), resolved to ids after the inserts.
    new_users: list[_NewUser] = []
    new_agents: list[tuple[int, AgentReport, int | _NewUser]] = []
    made: dict[str, int] = {}  # key -> index in new_agents
    login_owner: dict[str, int | _NewUser] = {login: uid for login, (uid, _) in owners.items()}
    for i in todo:
        report = reports[i]
        if (account_id, report.key) in under_lock:
            agent_id, user_id, status = under_lock[(account_id, report.key)]
            results[i] = Admission(agent_id, user_id, status)
            continue
        if report.key in made:
            new_agents.append((i, report, new_agents[made[report.key]][2]))
            continue
        if report.key in ignored:
            results[i] = Admission(None, None, AdmissionStatus.IGNORED)
            continue
        login = report.login
        owner: int | _NewUser | None = login_owner.get(login) if login is not None else None
        if owner is None:
            if account.manual_review:
                owner = _NewUser(report, UserStatus.PENDING, PendingReason.MANUAL_REVIEW)
            elif licensed is not None and licensed < account.license_limit:
                owner = _NewUser(report, UserStatus.LICENSED, None)
                licensed += 1
            else:
                owner = _NewUser(report, UserStatus.PENDING, PendingReason.OVER_LIMIT)
            new_users.append(owner)
            if login is not None:
                login_owner[login] = owner
        made[report.key] = len(new_agents)
        new_agents.append((i, report, owner))

    if new_users:
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
                for u in new_users
            ],
        )
        for u, (uid,) in zip(new_users, ids, strict=True):
            u.id = uid
    statuses = {uid: st for uid, st in owners.values()}

    def owner_id(owner: int | _NewUser) -> int:
        return owner if isinstance(owner, int) else owner.id  # type: ignore[return-value]

    def owner_status(owner: int | _NewUser) -> str:
        return (statuses[owner] if isinstance(owner, int) else owner.status).value

    first_agent: dict[str, int] = {}
    unique = [(i, r, o) for n, (i, r, o) in enumerate(new_agents) if made[r.key] == n]
    if unique:
        agent_ids = await session.execute(
            sa.insert(Agent.__table__).returning(Agent.__table__.c.id, sort_by_parameter_order=True),  # type: ignore[attr-defined]
            [
                {
                    "account_id": account_id,
                    "user_id": owner_id(o),
                    "device_name": r.device_name,
                    "domain": r.domain,
                    "logon_name": r.logon_name,
                    "key": r.key,
                    "login_key": r.login,
                    "first_seen_at": now,
                    "last_seen_at": now,
                }
                for _, r, o in unique
            ],
        )
        for (_, r, _), (aid,) in zip(unique, agent_ids, strict=True):
            first_agent[r.key] = aid
    for i, report, owner in new_agents:
        is_new_user = isinstance(owner, _NewUser) and owner.report is report
        entered = is_new_user and owner_status(owner) == UserStatus.PENDING.value
        results[i] = Admission(first_agent[report.key], owner_id(owner), owner_status(owner), entered_queue=entered)

    entered_users = [u for u in new_users if u.status is UserStatus.PENDING]
    if entered_users:
        await session.execute(
            sa.insert(AuditEntry.__table__),  # type: ignore[attr-defined]
            [
                {
                    "account_id": account_id,
                    "at": now,
                    "actor_id": None,
                    "action": QueueAction.ENTERED.value,
                    "user_id": u.id,
                    "user_display_name": u.report.display_name,
                    "detail": _entered_detail(u.reason or PendingReason.OVER_LIMIT, u.report),
                    "queue_entered_at": None,
                }
                for u in entered_users
            ],
        )
        await session.execute(
            sa.insert(QueueArrival.__table__),  # type: ignore[attr-defined]
            [
                {
                    "account_id": account_id,
                    "user_id": u.id,
                    "display_name": u.report.display_name,
                    "device_name": u.report.device_name,
                    "logon": f"{u.report.domain}\\{u.report.logon_name}",
                    "reason": (u.reason or PendingReason.OVER_LIMIT).value,
                    "at": now,
                }
                for u in entered_users
            ],
        )
        await _finish(session, account, [(QueueAction.ENTERED, u.id or 0, None) for u in entered_users], now)
    elif new_agents:
        # License usage and pending users' agents are shown with the queue, whose cached
        # pages are keyed by this version.
        await bump_queue_version(session, account_id)
    await suggestions.on_admitted(
        session,
        account_id,
        [(first_agent[r.key], owner_id(o), r) for _, r, o in unique],
        [u.id for u in entered_users if u.id is not None],
        now,
    )
    return [r for r in results if r is not None]


def _entered_detail(reason: PendingReason, report: AgentReport) -> str:
    where = f"{report.domain}\\{report.logon_name} on {report.device_name}"
    if reason is PendingReason.MANUAL_REVIEW:
        return f"first report from {where}; manual review is on"
    return f"first report from {where}; no license free"


# ---------------------------------------------------------------------------- actions


async def approve(
    session: AsyncSession, actor: Actor, user_ids: Sequence[int], now: datetime
) -> ActionResult:
    """License every given pending user, or none (SPEC §5)."""
    actor.require_admin()
    ids = _check_ids(user_ids, "userIds")
    account = await lock_account(session, actor.account_id)
    users = await _load_users(session, actor.account_id, ids, "userIds")
    _require_pending(users, "userIds")
    used = await count_users(session, actor.account_id, UserStatus.LICENSED)
    available = max(account.license_limit - used, 0)
    if len(users) > available:
        raise DomainError(
            ErrorCode.LICENSE_LIMIT_EXCEEDED,
            f"{len(users)} license(s) requested but only {available} available; nobody was approved",
            "userIds",
            available=available,
            requested=len(users),
        )
    changes: list[tuple[QueueAction, int, int | None]] = []
    for user in users:
        entered, reason = user.pending_since, user.pending_reason
        _make_licensed(user, now)
        assert user.id is not None and reason is not None
        _audit(session, actor, QueueAction.APPROVED, user, f"approved (was {reason.value})", now, entered)
        changes.append((QueueAction.APPROVED, user.id, actor.admin_id))
    usage, events = await _finish(session, account, changes, now)
    await suggestions.forget(session, [uid for _, uid, _ in changes])
    return ActionResult(account=account, usage=usage, events=events, users=users)


async def assign(
    session: AsyncSession, actor: Actor, pending_user_id: int, target_user_id: int, now: datetime
) -> ActionResult:
    """Give the pending user's agents and activity to an existing user; delete the pending user."""
    actor.require_admin()
    account = await lock_account(session, actor.account_id)
    (pending,) = await _load_users(session, actor.account_id, [pending_user_id], "pendingUserId")
    _require_pending([pending], "pendingUserId")
    (target,) = await _load_users(session, actor.account_id, [target_user_id], "targetUserId")
    if target.id == pending.id:
        raise DomainError(ErrorCode.CONFLICT, "a user cannot be assigned to itself", "targetUserId")
    assert pending.id is not None and target.id is not None
    await session.execute(
        sa.update(Agent).where(Agent.user_id == pending.id).values(user_id=target.id)  # type: ignore[arg-type]
    )
    await session.execute(
        sa.update(ActivityEvent).where(ActivityEvent.user_id == pending.id).values(user_id=target.id)  # type: ignore[arg-type]
    )
    target.first_seen_at = min(target.first_seen_at, pending.first_seen_at)
    target.last_seen_at = max(target.last_seen_at, pending.last_seen_at)
    _audit(
        session,
        actor,
        QueueAction.ASSIGNED,
        pending,
        f"assigned to {target.display_name} ({target.id}, {target.status.value})",
        now,
        pending.pending_since,
    )
    await session.delete(pending)
    usage, events = await _finish(
        session, account, [(QueueAction.ASSIGNED, pending.id, actor.admin_id)], now, target_user_id=target.id
    )
    await suggestions.refresh_near(session, actor.account_id, [target.id], now)
    return ActionResult(account=account, usage=usage, events=events, users=[target])


async def merge(
    session: AsyncSession, actor: Actor, pending_user_id: int, target_agent_id: int, now: datetime
) -> ActionResult:
    """Fold the pending user's agent(s) into an existing agent; their keys become aliases."""
    actor.require_admin()
    account = await lock_account(session, actor.account_id)
    (pending,) = await _load_users(session, actor.account_id, [pending_user_id], "pendingUserId")
    _require_pending([pending], "pendingUserId")
    target = (
        await session.execute(
            sa.select(Agent).where(Agent.account_id == actor.account_id, Agent.id == target_agent_id)  # type: ignore[arg-type]
        )
    ).scalar_one_or_none()
    if target is None:
        raise DomainError(ErrorCode.NOT_FOUND, f"no agent with id {target_agent_id}", "targetAgentId")
    if target.user_id == pending.id:
        raise DomainError(
            ErrorCode.CONFLICT, "the target agent belongs to the pending user itself", "targetAgentId"
        )
    assert pending.id is not None and target.id is not None
    folded = list(
        (await session.execute(sa.select(Agent).where(Agent.user_id == pending.id))).scalars()  # type: ignore[arg-type]
    )
    folded_ids = [a.id for a in folded]
    await session.execute(
        sa.update(ActivityEvent)
        .where(ActivityEvent.agent_id.in_(folded_ids))  # type: ignore[attr-defined]
        .values(agent_id=target.id, user_id=target.user_id)
    )
    # Aliases the folded agents already had now lead to the target too.
    await session.execute(
        sa.update(AgentAlias).where(AgentAlias.agent_id.in_(folded_ids)).values(agent_id=target.id)  # type: ignore[attr-defined]
    )
    for agent in folded:
        session.add(
            AgentAlias(
                account_id=agent.account_id,
                agent_id=target.id,
                device_name=agent.device_name,
                domain=agent.domain,
                logon_name=agent.logon_name,
                key=agent.key,
                created_at=now,
            )
        )
        target.first_seen_at = min(target.first_seen_at, agent.first_seen_at)
        target.last_seen_at = max(target.last_seen_at, agent.last_seen_at)
        await session.delete(agent)
    owner = await session.get(User, target.user_id)
    assert owner is not None
    owner.last_seen_at = max(owner.last_seen_at, pending.last_seen_at)
    names = ", ".join(f"{a.domain}\\{a.logon_name} on {a.device_name}" for a in folded)
    _audit(
        session,
        actor,
        QueueAction.MERGED,
        pending,
        f"merged {names} into agent {target.id} ({target.domain}\\{target.logon_name} on "
        f"{target.device_name}) of {owner.display_name}",
        now,
        pending.pending_since,
    )
    # The agents' rows must go before the user's (foreign key) and after the aliases exist.
    await session.flush()
    await session.delete(pending)
    usage, events = await _finish(
        session, account, [(QueueAction.MERGED, pending.id, actor.admin_id)], now, target_user_id=owner.id
    )
    await suggestions.refresh_near(session, actor.account_id, [target.user_id], now)
    return ActionResult(account=account, usage=usage, events=events, agent=target, users=[owner])


async def remove(
    session: AsyncSession,
    actor: Actor,
    user_ids: Sequence[int],
    do_not_track: bool,
    now: datetime,
) -> ActionResult:
    """Delete users of any status with their agents and activity, all or nothing."""
    actor.require_admin()
    ids = _check_ids(user_ids, "userIds")
    account = await lock_account(session, actor.account_id)
    users = await _load_users(session, actor.account_id, ids, "userIds")
    agents = list(
        (await session.execute(sa.select(Agent).where(Agent.user_id.in_(ids)))).scalars()  # type: ignore[attr-defined]
    )
    agent_ids = [a.id for a in agents]
    aliases = list(
        (await session.execute(sa.select(AgentAlias).where(AgentAlias.agent_id.in_(agent_ids)))).scalars()  # type: ignore[attr-defined]
    )
    if do_not_track:
        await _add_do_not_track(session, actor.account_id, [*agents, *aliases], now)
    await session.execute(sa.delete(ActivityEvent).where(ActivityEvent.user_id.in_(ids)))  # type: ignore[attr-defined]
    await session.execute(sa.delete(AgentAlias).where(AgentAlias.agent_id.in_(agent_ids)))  # type: ignore[attr-defined]
    await session.execute(sa.delete(Agent).where(Agent.user_id.in_(ids)))  # type: ignore[attr-defined]
    changes: list[tuple[QueueAction, int, int | None]] = []
    for user in users:
        assert user.id is not None
        detail = f"removed ({user.status.value})" + ("; agent keys on the do-not-track list" if do_not_track else "")
        _audit(session, actor, QueueAction.REMOVED, user, detail, now, user.pending_since)
        changes.append((QueueAction.REMOVED, user.id, actor.admin_id))
    await session.execute(sa.delete(User).where(User.id.in_(ids)))  # type: ignore[union-attr]
    for user in users:
        session.expunge(user)
    usage, events = await _finish(session, account, changes, now)
    return ActionResult(account=account, usage=usage, events=events, removed_user_ids=ids)


async def _add_do_not_track(
    session: AsyncSession, account_id: int, keyed: Sequence[Agent | AgentAlias], now: datetime
) -> None:
    keys = {k.key: k for k in keyed}
    if not keys:
        return
    existing = set(
        (
            await session.execute(
                sa.select(col(DoNotTrack.key)).where(
                    col(DoNotTrack.account_id) == account_id, col(DoNotTrack.key).in_(keys)
                )
            )
        ).scalars()
    )
    for key, k in keys.items():
        if key not in existing:
            session.add(
                DoNotTrack(
                    account_id=account_id,
                    device_name=k.device_name,
                    domain=k.domain,
                    logon_name=k.logon_name,
                    key=key,
                    created_at=now,
                )
            )


async def update_settings(
    session: AsyncSession,
    actor: Actor,
    now: datetime,
    *,
    manual_review: bool | None = None,
    license_limit: int | None = None,
) -> ActionResult:
    """Toggle manual review and/or change the limit; a lowered limit queues the newest licensed."""
    actor.require_admin()
    if license_limit is not None and not 0 <= license_limit <= MAX_LICENSE_LIMIT:
        raise DomainError(
            ErrorCode.INVALID_INPUT,
            f"licenseLimit must be from 0 to {MAX_LICENSE_LIMIT}; got {license_limit}",
            "licenseLimit",
        )
    account = await lock_account(session, actor.account_id)
    before = (account.manual_review, account.license_limit)
    if manual_review is not None:
        account.manual_review = manual_review
    changes: list[tuple[QueueAction, int, int | None]] = []
    if license_limit is not None and license_limit != account.license_limit:
        old = account.license_limit
        account.license_limit = license_limit
        used = await count_users(session, actor.account_id, UserStatus.LICENSED)
        if used > license_limit:
            moved = list(
                (
                    await session.execute(
                        sa.select(User)
                        .where(User.account_id == actor.account_id, User.status == UserStatus.LICENSED)  # type: ignore[arg-type]
                        .order_by(User.licensed_at.desc(), User.id.desc())  # type: ignore[union-attr]
                        .limit(used - license_limit)
                    )
                ).scalars()
            )
            for user in moved:
                assert user.id is not None
                _make_pending(user, PendingReason.OVER_LIMIT, now)
                _audit(
                    session,
                    None,
                    QueueAction.ENTERED,
                    user,
                    f"license limit lowered from {old} to {license_limit}",
                    now,
                )
                _queue_arrival(session, user, await _first_agent(session, user.id), now)
                changes.append((QueueAction.ENTERED, user.id, None))
    if (account.manual_review, account.license_limit) != before:
        session.add(
            SettingsChange(
                account_id=actor.account_id,
                at=now,
                actor_id=actor.admin_id,
                manual_review_before=before[0],
                manual_review_after=account.manual_review,
                license_limit_before=before[1],
                license_limit_after=account.license_limit,
                moved_to_pending=len(changes),
            )
        )
    usage, events = await _finish(session, account, changes, now)
    await suggestions.compute(session, actor.account_id, [uid for a, uid, _ in changes if a is QueueAction.ENTERED], now)
    return ActionResult(account=account, usage=usage, events=events)


async def _first_agent(session: AsyncSession, user_id: int) -> Agent | None:
    return (
        await session.execute(
            sa.select(Agent).where(Agent.user_id == user_id).order_by(Agent.id).limit(1)  # type: ignore[arg-type]
        )
    ).scalar_one_or_none()
