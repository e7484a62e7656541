"""Scoring a user against candidate agents: the rules, the weights and the threshold.

A user is scored against the other users' agents whatever either status (a pending user
against a licensed or another pending one, a licensed user against its licensed re-image),
and a pair scores the same whichever side asks and whichever arrived first: every rule
below is symmetric (of a renamed device, the old one is the agent filed first), which the
store relies on to refresh, when a user changes, exactly the users it matches.

**Scoring** (log-odds, summed per pair of the user's agent and a candidate agent; the score is
``1 / (1 + e^-x)``; a candidate user's score is its best pair):

=====================================================  ======
base                                                    -4.0
login: same normalised login (not generic)              +4.5
  ... across a local/domain boundary                    +4.0
  ... and it is a form of either one's name             +0.5
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
ASSIGN, either user silent for >= 30 days               -0.5
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

Pure: no queries and no clock (``now`` is given).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from server.domain.models import SuggestionKind
from server.domain.suggestions.normalise import (
    Name,
    device_canon,
    is_local,
    login_canon,
    login_forms,
    parse_name,
)

THRESHOLD = 0.70
MAX_STORED = 5

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
    """How likely the agent ``p`` (of the user suggestions are for) is the candidate agent
    ``c`` or its user."""
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
        # A personal login (a form of either one's name) shared by two agents is rarely
        # a coincidence, unlike ``john`` or ``scanner``.
        named = next((s for s, n in ((c, c_name), (p, p_name)) if n is not None and c_canon in n.forms), None)
        if named is not None:
            x += W_LOGIN_PERSONAL
            reasons.append(f"login {named.logon_name} fits the name {named.display_name}")
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
    # Of a renamed device, the old name is the agent filed first, whichever side asks: a
    # pending user is scored against later arrivals too, so both sides score alike.
    old, new = (c, p) if c.agent_id < p.agent_id else (p, c)
    if device is DeviceMatch.SAME:
        x += W_DEVICE_SAME
        reasons.append(f"same device {c.device_name}")
    elif device is DeviceMatch.RENAMED:
        x += W_DEVICE_RENAMED
        reasons.append(f"device {new.device_name} looks like {old.device_name} renamed")

    merge = login is LoginMatch.SAME and device is not DeviceMatch.OTHER and p_local == c_local
    if merge and device is DeviceMatch.RENAMED:
        silent = now - old.agent_last_seen
        if silent >= SILENT_DEVICE:
            x += W_OLD_DEVICE_SILENT
            reasons.append(f"{old.device_name} has not reported for {_ago(silent)}")
        elif silent < ACTIVE_DEVICE:
            x += W_OLD_DEVICE_ACTIVE
    if not merge and now - min(p.user_last_seen, c.user_last_seen) >= SILENT_USER:
        x += W_USER_SILENT
    kind = SuggestionKind.MERGE if merge else SuggestionKind.ASSIGN
    return Scored(kind, c.user_id, c.agent_id, x, reasons)


def matches(mine: Sequence[Side], candidates: Iterable[Side], now: datetime) -> list[Scored]:
    """Every likely match of one user (its agents given), whatever its status and theirs:
    best per candidate user, above the threshold, best first.

    A pair scores the same whichever side asks (see the module docstring), so the users
    found here are exactly those for which this user is a likely match in return: the store
    refreshes them when this user's agents change.
    """
    if not mine:
        return []
    me = mine[0].user_id
    best: dict[int, Scored] = {}
    for c in candidates:
        if c.user_id == me:
            continue
        for p in mine:
            s = score_pair(p, c, now)
            old = best.get(c.user_id)
            if old is None or s.x > old.x:
                best[c.user_id] = s
    x_min = math.log(THRESHOLD / (1 - THRESHOLD))
    return sorted((s for s in best.values() if s.x >= x_min), key=lambda s: (-s.x, s.user_id))


def rank(mine: Sequence[Side], candidates: Iterable[Side], now: datetime) -> list[Scored]:
    """The suggestions kept for one user: its :data:`MAX_STORED` best :func:`matches`."""
    return matches(mine, candidates, now)[:MAX_STORED]
