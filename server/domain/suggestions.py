"""Likely-match suggestions: which existing user or agent a pending user probably is.

Many pending users are not new people: a local account on a laptop whose owner is licensed
through the domain, a renamed or re-imaged device (a new agent key for the same login), a
login in another format (``jdoe`` / ``john.doe`` / ``john.doe@acme.com``), a domain
migration (``OLDCORP\\jdoe`` -> ``ACME\\jdoe``). For each user entering the queue the server
stores up to :data:`MAX_STORED` suggestions, best first, each an ASSIGN (to an existing
user) or a MERGE (into an existing agent) with a score and reasons an admin reads.

**When.** Computed when a user enters the queue (:func:`on_admitted` from admission,
:func:`compute` from a lowered limit), in bulk: one query for the pending users' agents,
one for every candidate of the whole call, one delete and one insert. Never per request.
Refreshed when candidates change: a suggestion goes with its target (foreign keys
``ON DELETE CASCADE``: target removed, assigned or merged away) and with its pending user
(assigned, merged, removed); an approved user's are deleted (:func:`forget`). A new
candidate (a new agent of a licensed or existing user; agents moved by an assign or a merge)
recomputes the pending users whose keys it shares (:func:`refresh_near`). A merged key
becomes an alias that later reports resolve to directly, so it needs no filing here.

**Candidates.** Only agents of the same account, found through ``match_key`` (indexed on
``(account_id, key)``): every agent is stored under its normalised login forms, the forms
of its user's display name (``p:``) and its normalised device name (``d:``), and a pending
user's own forms are looked up there, so a small candidate set is scored, never the
account's users. Generic logins (``administrator``, ``user``...) are not keys. A pending
candidate counts only if it entered the queue earlier (lower id): the later duplicate folds
into the earlier one, never both ways.

**Normalisation.** Logins: case and accents folded, a ``DOMAIN\\`` prefix and an ``@upn``
suffix dropped, dots, underscores, dashes and spaces removed (``John.Doe@acme.com`` ->
``johndoe``); a separated login also gives its initial form (``john.doe`` -> ``jdoe``).
Names: ``Doe, John`` reordered; first and last token (``John Q. Doe`` -> john, doe); forms
``johndoe`` and ``jdoe``. A one-word name (``jdoe``, ``Administrator``) says nothing.
Devices: case and separators folded (``LAPTOP-7`` -> ``laptop7``).

**Scoring** (log-odds, summed per pair of pending agent and candidate agent; the score is
``1 / (1 + e^-x)``; a candidate user's score is its best pair):

=====================================================  ======
base                                                    -4.0
login: same normalised login (not generic)              +4.5
  ... across a local/domain boundary                    +4.0
  ... and it is a form of the candidate's name          +0.5
login: another form of it (``jdoe`` ~ ``john.doe``)     +2.5
login: fits the other's name (``jdoe`` ~ John Doe)      +2.0
login: numbered variant (``jsmith`` vs ``jsmith2``)     -3.0
name: same first and last name                          +2.5
name: compatible (``J. Smith``, ``John S.`` ~ John Smith) +1.0
name: same last name, different first name              -5.0
name: different last name                               -2.5
device: same device                                     +2.5
device: renamed (``LAPTOP-7`` -> ``LAPTOP-7B``)         +1.5
MERGE on a renamed device, old one silent >= 1 day      +0.5
MERGE on a renamed device, old one reported < 1 h ago   -1.5
ASSIGN to a user silent for >= 30 days                  -0.5
=====================================================  ======

A name alone never passes (two people called John Smith exist), nor does a shared device
alone; a login, or a device with the same full name, does.

**Kind.** MERGE into the candidate agent when it is probably that agent under a new key:
the same normalised login on the same or a renamed device, both local accounts or both
domain accounts (a renamed device, a domain migration, another login format). Otherwise
ASSIGN to the candidate's user: the same person on another device or with another login,
including a local account beside the domain account on one laptop (two logins that both go
on reporting, so neither's key should become the other's alias).

**Threshold.** :data:`THRESHOLD` = 0.70 (``x`` >= 0.85): nothing below it is stored. On the
labelled scenario of ``bench/suggestions.py`` it keeps top-1 precision >= 0.95 with recall
>= 0.85; below it, the only remaining evidence is a name or a device alone.

Nothing here imports GraphQL, Starlette or Textual. The work runs on a synchronous
connection (:meth:`AsyncSession.run_sync`) so the migration that backfills existing data
runs the very same code.
"""

from __future__ import annotations

import enum
import json
import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlmodel import col

from server.domain.models import Agent, MatchKey, Suggestion, SuggestionKind, User, UserStatus

THRESHOLD = 0.70
MAX_STORED = 5
# Guards a bulk call against a pathological key (thousands of agents on one device name).
MAX_CANDIDATES_PER_USER = 50

# fmt: off
GENERIC_LOGINS = frozenset(
    {
        "administrator", "admin", "localadmin", "user", "users", "guest", "owner", "support", "helpdesk",
        "it", "test", "testuser", "student", "teacher", "pc", "local", "default", "root", "sysadmin",
        "service", "kiosk", "public", "shared", "operator", "demo", "temp", "training",
    }
)
# fmt: on

BASE = -4.0
W_LOGIN_SAME = 4.5
W_LOGIN_SAME_CROSS = 4.0
W_LOGIN_PERSONAL = 0.5
W_LOGIN_FORM = 2.5
W_LOGIN_NAMED = 2.0
W_LOGIN_NUMBERED = -3.0
W_NAME_SAME = 2.5
W_NAME_COMPATIBLE = 1.0
W_NAME_CONFLICT = -5.0
W_NAME_DIFFERENT = -2.5
W_DEVICE_SAME = 2.5
W_DEVICE_RENAMED = 1.5
W_OLD_DEVICE_SILENT = 0.5
W_OLD_DEVICE_ACTIVE = -1.5
W_USER_SILENT = -0.5
SILENT_DEVICE = timedelta(days=1)
ACTIVE_DEVICE = timedelta(hours=1)
SILENT_USER = timedelta(days=30)

Db = Connection | Session


# ---------------------------------------------------------------------------- normalising


def _fold(s: str) -> str:
    decomposed = unicodedata.normalize("NFKD", s)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


_ALNUM = re.compile(r"[0-9a-z]+")


def login_tokens(logon: str) -> list[str]:
    """``OLDCORP\\John.Doe@acme.com`` -> ``["john", "doe"]``."""
    s = _fold(logon)
    s = s.rsplit("\\", 1)[-1]
    s = s.split("@", 1)[0]
    return _ALNUM.findall(s)


def login_canon(logon: str) -> str:
    return "".join(login_tokens(logon))


def login_forms(logon: str) -> set[str]:
    """The normalised login and, for a separated one, its initial form; none if generic."""
    tokens = login_tokens(logon)
    canon = "".join(tokens)
    if len(canon) < 2 or canon in GENERIC_LOGINS:
        return set()
    forms = {canon}
    if len(tokens) >= 2 and tokens[0].isalpha() and tokens[-1].isalpha():
        forms.add(tokens[0][0] + tokens[-1])
    return forms


@dataclass(frozen=True, slots=True)
class Name:
    first: str
    last: str

    @property
    def forms(self) -> set[str]:
        return {self.first + self.last, self.first[0] + self.last}


def parse_name(display_name: str) -> Name | None:
    """First and last name, or None when the display name says nothing (one word, digits)."""
    s = _fold(display_name)
    if "," in s:
        last, _, first = s.partition(",")
        s = f"{first} {last}"
    tokens = [t for t in ("".join(_ALNUM.findall(w)) for w in s.split()) if t]
    if len(tokens) < 2 or not all(t.isalpha() for t in tokens):
        return None
    if tokens[0] in GENERIC_LOGINS or tokens[-1] in GENERIC_LOGINS:
        return None
    return Name(tokens[0], tokens[-1])


def device_canon(device_name: str) -> str:
    return "".join(_ALNUM.findall(_fold(device_name)))


def is_local(device_name: str, domain: str) -> bool:
    """A local account: its domain is its device's name (SPEC §2)."""
    return domain.casefold() == device_name.casefold()


def match_keys(device_name: str, logon_name: str, display_name: str) -> set[str]:
    """What an agent is filed under in ``match_key``, and what a pending agent looks up."""
    keys = {f"p:{f}" for f in login_forms(logon_name)}
    name = parse_name(display_name)
    if name is not None:
        keys |= {f"p:{f}" for f in name.forms}
    device = device_canon(device_name)
    if device:
        keys.add(f"d:{device}")
    return {k[:300] for k in keys}


# ---------------------------------------------------------------------------- relations


class LoginMatch(enum.Enum):
    SAME = "same"
    FORM = "form"
    NAMED = "named"
    NUMBERED = "numbered"
    NONE = "none"


class NameMatch(enum.Enum):
    SAME = "same"
    COMPATIBLE = "compatible"
    CONFLICT = "conflict"
    DIFFERENT = "different"
    UNKNOWN = "unknown"


class DeviceMatch(enum.Enum):
    SAME = "same"
    RENAMED = "renamed"
    OTHER = "other"


def _numbered(a: str, b: str) -> bool:
    """``jsmith`` vs ``jsmith2``: a directory's way of telling two people apart."""
    base_a, base_b = a.rstrip("0123456789"), b.rstrip("0123456789")
    return a != b and base_a == base_b and len(base_a) >= 2


def name_match(a: Name | None, b: Name | None) -> NameMatch:
    if a is None or b is None:
        return NameMatch.UNKNOWN
    if a.last != b.last:
        # ``Ada L.`` for Ada Lovelace: an abbreviated last name, same first name.
        short, long = sorted((a.last, b.last), key=len)
        if len(short) == 1 and long.startswith(short) and a.first == b.first:
            return NameMatch.COMPATIBLE
        return NameMatch.DIFFERENT
    if a.first == b.first:
        return NameMatch.SAME
    short, long = sorted((a.first, b.first), key=len)
    if len(short) == 1:
        return NameMatch.COMPATIBLE if long.startswith(short) else NameMatch.CONFLICT
    # ``Chris`` / ``Christopher``: a short form, not another person.
    if len(short) >= 3 and long.startswith(short):
        return NameMatch.COMPATIBLE
    return NameMatch.CONFLICT


def device_match(a: str, b: str) -> DeviceMatch:
    ca, cb = device_canon(a), device_canon(b)
    if ca == cb:
        return DeviceMatch.SAME
    short, long = sorted((ca, cb), key=len)
    if len(short) >= 4 and long.startswith(short) and len(long) - len(short) <= 4:
        # LAPTOP-7 -> LAPTOP-71 is the next machine in a series, not a rename.
        if short[-1].isdigit() and long[len(short)].isdigit():
            return DeviceMatch.OTHER
        return DeviceMatch.RENAMED
    return DeviceMatch.OTHER


# ---------------------------------------------------------------------------- scoring


@dataclass(frozen=True, slots=True)
class Side:
    """One agent with what scoring needs of its user."""

    agent_id: int
    user_id: int
    user_status: UserStatus
    display_name: str
    device_name: str
    domain: str
    logon_name: str
    agent_last_seen: datetime
    user_last_seen: datetime

    @property
    def login(self) -> str:
        return f"{self.domain}\\{self.logon_name}"


@dataclass(frozen=True, slots=True)
class Scored:
    kind: SuggestionKind
    user_id: int
    agent_id: int
    x: float
    reasons: list[str]

    @property
    def score(self) -> float:
        return 1.0 / (1.0 + math.exp(-self.x))


def _ago(delta: timedelta) -> str:
    days = delta.days
    if days >= 2:
        return f"{days} days"
    hours = int(delta.total_seconds() // 3600)
    return f"{hours} hour{'s' if hours != 1 else ''}" if hours >= 1 else "minutes"


def score_pair(p: Side, c: Side, now: datetime) -> Scored:
    """How likely the pending agent ``p`` is the candidate agent ``c`` or its user."""
    x = BASE
    reasons: list[str] = []
    p_local, c_local = is_local(p.device_name, p.domain), is_local(c.device_name, c.domain)
    p_canon, c_canon = login_canon(p.logon_name), login_canon(c.logon_name)
    p_name, c_name = parse_name(p.display_name), parse_name(c.display_name)
    p_forms, c_forms = login_forms(p.logon_name), login_forms(c.logon_name)

    login = LoginMatch.NONE
    if p_canon == c_canon and p_forms:
        login = LoginMatch.SAME
    elif _numbered(p_canon, c_canon):
        login = LoginMatch.NUMBERED
    elif p_forms & c_forms:
        login = LoginMatch.FORM
    elif (c_name is not None and p_canon in c_name.forms and p_forms) or (
        p_name is not None and c_canon in p_name.forms and c_forms
    ):
        login = LoginMatch.NAMED

    if login is LoginMatch.SAME:
        if p_local != c_local:
            x += W_LOGIN_SAME_CROSS
            local, dom = (p, c) if p_local else (c, p)
            reasons.append(f"local account {local.logon_name} on {local.device_name} matches {dom.login}")
        else:
            x += W_LOGIN_SAME
            if p_local:
                reasons.append(f"same local login {c_canon}")
            elif p.domain.casefold() != c.domain.casefold():
                reasons.append(f"same login {c_canon}, domain {c.domain} -> {p.domain}")
            elif p.logon_name.casefold() == c.logon_name.casefold():
                reasons.append(f"same login {c.logon_name} on {c.domain}")
            else:
                reasons.append(f"same login {c_canon} on {c.domain} ({p.logon_name} / {c.logon_name})")
        # A personal login (a form of the candidate's name) shared by two agents is rarely
        # a coincidence, unlike ``john`` or ``scanner``.
        if c_name is not None and c_canon in c_name.forms:
            x += W_LOGIN_PERSONAL
            reasons.append(f"login {c.logon_name} fits the name {c.display_name}")
    elif login is LoginMatch.FORM:
        x += W_LOGIN_FORM
        reasons.append(f"login {p.logon_name} is another form of {c.logon_name}")
    elif login is LoginMatch.NAMED:
        x += W_LOGIN_NAMED
        if c_name is not None and p_canon in c_name.forms:
            reasons.append(f"login {p.logon_name} fits the name {c.display_name}")
        else:
            reasons.append(f"login {c.logon_name} fits the name {p.display_name}")
    elif login is LoginMatch.NUMBERED:
        x += W_LOGIN_NUMBERED

    names = name_match(p_name, c_name)
    if names is NameMatch.SAME:
        x += W_NAME_SAME
        reasons.append(f"display name matches ({c.display_name})")
    elif names is NameMatch.COMPATIBLE:
        x += W_NAME_COMPATIBLE
        reasons.append(f"display name {p.display_name} is compatible with {c.display_name}")
    elif names is NameMatch.CONFLICT:
        x += W_NAME_CONFLICT
    elif names is NameMatch.DIFFERENT:
        x += W_NAME_DIFFERENT

    device = device_match(p.device_name, c.device_name)
    if device is DeviceMatch.SAME:
        x += W_DEVICE_SAME
        reasons.append(f"same device {c.device_name}")
    elif device is DeviceMatch.RENAMED:
        x += W_DEVICE_RENAMED
        reasons.append(f"device {p.device_name} looks like {c.device_name} renamed")

    merge = login is LoginMatch.SAME and device is not DeviceMatch.OTHER and p_local == c_local
    if merge and device is DeviceMatch.RENAMED:
        silent = now - c.agent_last_seen
        if silent >= SILENT_DEVICE:
            x += W_OLD_DEVICE_SILENT
            reasons.append(f"{c.device_name} has not reported for {_ago(silent)}")
        elif silent < ACTIVE_DEVICE:
            x += W_OLD_DEVICE_ACTIVE
    if not merge and now - c.user_last_seen >= SILENT_USER:
        x += W_USER_SILENT
    kind = SuggestionKind.MERGE if merge else SuggestionKind.ASSIGN
    return Scored(kind, c.user_id, c.agent_id, x, reasons)


def rank(pending: Sequence[Side], candidates: Iterable[Side], now: datetime) -> list[Scored]:
    """The suggestions for one pending user: best per candidate user, above the threshold, best first."""
    if not pending:
        return []
    me = pending[0].user_id
    best: dict[int, Scored] = {}
    for c in candidates:
        if c.user_id == me or (c.user_status is UserStatus.PENDING and c.user_id > me):
            continue
        for p in pending:
            s = score_pair(p, c, now)
            old = best.get(c.user_id)
            if old is None or s.x > old.x:
                best[c.user_id] = s
    x_min = math.log(THRESHOLD / (1 - THRESHOLD))
    kept = sorted((s for s in best.values() if s.x >= x_min), key=lambda s: (-s.x, s.user_id))
    return kept[:MAX_STORED]


# ---------------------------------------------------------------------------- storage


class NamedAgent(Protocol):
    """What admission knows of a new agent (:class:`server.licensing.AgentReport`)."""

    @property
    def device_name(self) -> str: ...

    @property
    def domain(self) -> str: ...

    @property
    def logon_name(self) -> str: ...

    @property
    def display_name(self) -> str: ...


_SIDE_COLUMNS = (
    col(Agent.id),
    col(Agent.user_id),
    col(User.status),
    col(User.display_name),
    col(Agent.device_name),
    col(Agent.domain),
    col(Agent.logon_name),
    col(Agent.last_seen_at),
    col(User.last_seen_at),
)


def _side(row: Any) -> Side:
    return Side(row[0], row[1], UserStatus(row[2]), *row[3:])


def _key_rows(account_id: int, agents: Iterable[tuple[int, str, str, str]]) -> list[dict[str, Any]]:
    return [
        {"account_id": account_id, "agent_id": agent_id, "key": key}
        for agent_id, device, logon, name in agents
        for key in sorted(match_keys(device, logon, name))
    ]


def _compute(db: Db, account_id: int, user_ids: Sequence[int], now: datetime) -> None:
    ids = sorted(set(user_ids))
    if not ids:
        return
    db.execute(sa.delete(Suggestion).where(col(Suggestion.pending_user_id).in_(ids)))
    rows = db.execute(
        sa.select(*_SIDE_COLUMNS)
        .join(User, col(User.id) == col(Agent.user_id))
        .where(
            col(Agent.account_id) == account_id,
            col(User.id).in_(ids),
            col(User.status) == UserStatus.PENDING,
        )
        .order_by(col(Agent.id))
    )
    pending: dict[int, list[Side]] = defaultdict(list)
    for row in rows:
        side = _side(row)
        pending[side.user_id].append(side)
    _suggest(db, account_id, pending, now)


def _suggest(db: Db, account_id: int, pending: dict[int, list[Side]], now: datetime) -> None:
    """Score and store suggestions for pending users (their agents given) that have none."""
    if not pending:
        return
    keys = {
        k
        for sides in pending.values()
        for s in sides
        for k in match_keys(s.device_name, s.logon_name, s.display_name)
    }
    by_key: dict[str, list[Side]] = defaultdict(list)
    if keys:
        # One query for the whole call; the (account_id, key) index keeps it to a handful
        # of rows per pending user.
        found = db.execute(
            sa.select(col(MatchKey.key), *_SIDE_COLUMNS)
            .select_from(MatchKey)
            .join(Agent, col(Agent.id) == col(MatchKey.agent_id))
            .join(User, col(User.id) == col(Agent.user_id))
            .where(col(MatchKey.account_id) == account_id, col(MatchKey.key).in_(sorted(keys)))
            .limit(MAX_CANDIDATES_PER_USER * len(pending))
        )
        for hit in found:
            by_key[hit[0]].append(_side(hit[1:]))
    inserts: list[dict[str, Any]] = []
    for user_id, sides in pending.items():
        mine = {k for s in sides for k in match_keys(s.device_name, s.logon_name, s.display_name)}
        near = {c.agent_id: c for k in mine for c in by_key.get(k, ())}
        for s in rank(sides, near.values(), now):
            inserts.append(
                {
                    "account_id": account_id,
                    "pending_user_id": user_id,
                    "kind": s.kind.value,
                    "target_user_id": s.user_id if s.kind is SuggestionKind.ASSIGN else None,
                    "target_agent_id": s.agent_id if s.kind is SuggestionKind.MERGE else None,
                    "score": round(s.score, 4),
                    "reasons": json.dumps(s.reasons),
                    "computed_at": now,
                }
            )
    if inserts:
        db.execute(sa.insert(Suggestion.__table__), inserts)  # type: ignore[attr-defined]


def _pending_near(db: Db, account_id: int, keys: set[str], exclude_agents: Sequence[int]) -> list[int]:
    """Pending users filed under any of ``keys`` (through agents other than ``exclude_agents``)."""
    if not keys:
        return []
    return list(
        uid
        for uid in db.execute(
            sa.select(col(User.id))
            .distinct()
            .select_from(MatchKey)
            .join(Agent, col(Agent.id) == col(MatchKey.agent_id))
            .join(User, col(User.id) == col(Agent.user_id))
            .where(
                col(MatchKey.account_id) == account_id,
                col(MatchKey.key).in_(sorted(keys)),
                col(User.status) == UserStatus.PENDING,
                col(Agent.id).not_in(list(exclude_agents)),
            )
            .limit(500)
        ).scalars()
        if uid is not None
    )


def _agent_keys(db: Db, user_ids: Sequence[int]) -> tuple[set[str], list[int]]:
    rows = db.execute(
        sa.select(col(MatchKey.key), col(MatchKey.agent_id))
        .join(Agent, col(Agent.id) == col(MatchKey.agent_id))
        .where(col(Agent.user_id).in_(list(user_ids)))
    ).all()
    return {k for k, _ in rows}, sorted({a for _, a in rows})


def _refresh_near(db: Db, account_id: int, user_ids: Sequence[int], now: datetime) -> None:
    keys, agent_ids = _agent_keys(db, user_ids)
    near = set(_pending_near(db, account_id, keys, agent_ids))
    pending_targets = db.execute(
        sa.select(col(User.id)).where(
            col(User.id).in_(list(user_ids)), col(User.status) == UserStatus.PENDING
        )
    ).scalars()
    _compute(db, account_id, sorted(near | {u for u in pending_targets if u is not None}), now)


# ---------------------------------------------------------------------------- the domain's calls


async def on_admitted(
    session: AsyncSession,
    account_id: int,
    new_agents: Sequence[tuple[int, int, NamedAgent]],
    entered_user_ids: Sequence[int],
    now: datetime,
) -> None:
    """After admission: file the new agents, suggest for the users who entered the queue,
    and refresh pending users a new agent of an existing or licensed user may be."""
    if not new_agents:
        return
    entered = set(entered_user_ids)

    def work(s: Session) -> None:
        db = s.connection()
        rows = _key_rows(
            account_id, ((a, r.device_name, r.logon_name, r.display_name) for a, _, r in new_agents)
        )
        if rows:
            db.execute(sa.insert(MatchKey.__table__), rows)  # type: ignore[attr-defined]
        # Users who just entered have no suggestions and their agents are the reports: no
        # delete, no look-up, on the ingest path.
        arrived: dict[int, list[Side]] = defaultdict(list)
        for agent_id, owner, r in new_agents:
            if owner in entered:
                arrived[owner].append(
                    Side(
                        agent_id,
                        owner,
                        UserStatus.PENDING,
                        r.display_name,
                        r.device_name,
                        r.domain,
                        r.logon_name,
                        now,
                        now,
                    )
                )
        _suggest(db, account_id, arrived, now)
        # A new pending user is never a candidate for the pending users before it, so only
        # agents of other users (new licensed users, new devices of known users) refresh.
        fresh = [(a, r) for a, owner, r in new_agents if owner not in entered]
        if fresh:
            keys = {k for _, r in fresh for k in match_keys(r.device_name, r.logon_name, r.display_name)}
            near = set(_pending_near(db, account_id, keys, [a for a, _, _ in new_agents])) - entered
            _compute(db, account_id, sorted(near), now)

    await session.run_sync(work)


async def compute(session: AsyncSession, account_id: int, user_ids: Sequence[int], now: datetime) -> None:
    """(Re)compute the stored suggestions of these users (those not pending get none)."""
    if user_ids:
        await session.run_sync(lambda s: _compute(s.connection(), account_id, user_ids, now))


async def forget(session: AsyncSession, user_ids: Sequence[int]) -> None:
    """Users left the queue without leaving the account (approved): drop their suggestions."""
    if user_ids:
        await session.execute(
            sa.delete(Suggestion).where(col(Suggestion.pending_user_id).in_(list(user_ids)))
        )


async def refresh_near(
    session: AsyncSession, account_id: int, user_ids: Sequence[int], now: datetime
) -> None:
    """These users' agents changed (an assign or a merge gave them more): recompute the
    pending users filed under the same keys, and these users themselves if pending."""
    if user_ids:
        await session.run_sync(lambda s: _refresh_near(s.connection(), account_id, user_ids, now))


def backfill(db: Connection, now: datetime) -> None:
    """File every existing agent and suggest for every pending user (migration 0003)."""
    rows = db.execute(
        sa.select(
            col(Agent.account_id),
            col(Agent.id),
            col(Agent.device_name),
            col(Agent.logon_name),
            col(User.display_name),
        )
        .join(User, col(User.id) == col(Agent.user_id))
        .order_by(col(Agent.id))
    ).all()
    by_account: dict[int, list[tuple[int, str, str, str]]] = defaultdict(list)
    for account_id, agent_id, device, logon, name in rows:
        assert agent_id is not None
        by_account[account_id].append((agent_id, device, logon, name))
    for account_id, agents in by_account.items():
        for start in range(0, len(agents), 1000):
            keys = _key_rows(account_id, agents[start : start + 1000])
            if keys:
                db.execute(sa.insert(MatchKey.__table__), keys)  # type: ignore[attr-defined]
    pending = db.execute(
        sa.select(col(User.account_id), col(User.id))
        .where(col(User.status) == UserStatus.PENDING)
        .order_by(col(User.id))
    ).all()
    users: dict[int, list[int]] = defaultdict(list)
    for account_id, user_id in pending:
        assert user_id is not None
        users[account_id].append(user_id)
    for account_id, ids in users.items():
        for start in range(0, len(ids), 500):
            _compute(db, account_id, ids[start : start + 500], now)


# ---------------------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class Found:
    """A stored suggestion with its target row."""

    kind: SuggestionKind
    score: float
    reasons: list[str]
    user: User | None = None
    agent: Agent | None = None
    computed_at: datetime | None = field(default=None, compare=False)


async def suggestions_by_user(
    session: AsyncSession, account_id: int, user_ids: Sequence[int]
) -> dict[int, list[Found]]:
    """Each pending user's stored suggestions, best first, in three queries whatever the count."""
    if not user_ids:
        return {}
    rows = list(
        (
            await session.execute(
                sa.select(Suggestion)
                .where(
                    col(Suggestion.account_id) == account_id,
                    col(Suggestion.pending_user_id).in_(list(user_ids)),
                )
                .order_by(col(Suggestion.pending_user_id), col(Suggestion.score).desc(), col(Suggestion.id))
            )
        ).scalars()
    )
    user_ids_wanted = {r.target_user_id for r in rows if r.target_user_id is not None}
    agent_ids_wanted = {r.target_agent_id for r in rows if r.target_agent_id is not None}
    users: dict[int | None, User] = {}
    agents: dict[int | None, Agent] = {}
    if user_ids_wanted:
        found_users = await session.execute(
            sa.select(User).where(col(User.account_id) == account_id, col(User.id).in_(user_ids_wanted))
        )
        users = {u.id: u for u in found_users.scalars()}
    if agent_ids_wanted:
        found_agents = await session.execute(
            sa.select(Agent).where(col(Agent.account_id) == account_id, col(Agent.id).in_(agent_ids_wanted))
        )
        agents = {a.id: a for a in found_agents.scalars()}
    out: dict[int, list[Found]] = defaultdict(list)
    for r in rows:
        user = users.get(r.target_user_id) if r.target_user_id is not None else None
        agent = agents.get(r.target_agent_id) if r.target_agent_id is not None else None
        if user is None and agent is None:
            continue
        out[r.pending_user_id].append(
            Found(r.kind, r.score, list(json.loads(r.reasons)), user, agent, r.computed_at)
        )
    return dict(out)
