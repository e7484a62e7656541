"""Likely-match suggestions on a labelled scenario: top-1 precision, recall and time per arrival.

    .venv/bin/python bench/suggestions.py [--seed 7] [--licensed 1000] [--pending 240] [--database-url URL]

Builds an account of ``--licensed`` licensed people (domain logins in the ``jdoe`` style,
numbered on collision as directories do, some local-only laptops, some still in an
``OLDCORP`` domain), then sends ``--pending`` arrivals past the limit, one transaction each,
through the real admission path (``admission.admit_many``, which computes the suggestions).
Every arrival carries its truth:

* duplicates (55%): a renamed device, a re-imaged device (new random name, same local
  login), a local account on the owner's domain laptop, another login format
  (``john.doe`` / ``jdoe@acme.com``, same or another device), a domain migration
  (``OLDCORP\\jdoe`` -> ``ACME\\jdoe``, same or another device);
* new people (45%): random names, and hard negatives: another first name with the same
  initial and last name (Jane vs John Smith, login ``jsmith2``), exact namesakes (a second
  John Smith), generic local accounts (``Administrator`` on a new PC), a new person on an
  existing person's shared device.

A suggestion is right when its target (the ASSIGN user, or the MERGE agent's owner) is the
person the arrival really is. Prints top-1 precision (right / arrivals with a suggestion),
recall (right / duplicates), a breakdown per case, and the time the suggestion work takes
per arrival (inside admission, and recomputed one by one and in bulk). Asserts nothing.
Targets: precision >= 0.95, recall >= 0.85, <= 5 ms per arrival.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import sqlalchemy as sa  # noqa: E402

from server.domain import accounts, admission  # noqa: E402
from server.domain.admission import AgentReport  # noqa: E402
from server.domain.models import Agent, User  # noqa: E402
from server.domain.suggestions import score, store  # noqa: E402
from server.infra.db import Database  # noqa: E402

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)

FIRST = """James Mary John Patricia Robert Jennifer Michael Linda William Elizabeth David Barbara
Richard Susan Joseph Jessica Thomas Sarah Charles Karen Christopher Nancy Daniel Lisa Matthew
Betty Anthony Margaret Mark Sandra Donald Ashley Steven Kimberly Paul Emily Andrew Donna Joshua
Michelle Kenneth Dorothy Kevin Carol Brian Amanda George Melissa Edward Deborah Ronald Stephanie
Timothy Rebecca Jason Sharon Jeffrey Laura Ryan Cynthia Jacob Kathleen Gary Amy Nicholas Shirley
Eric Angela Jonathan Helen Stephen Anna Larry Brenda Justin Pamela Scott Nicole Brandon Emma
Benjamin Samantha Samuel Katherine Frank Christine Gregory Debra Raymond Rachel Alexander
Catherine Patrick Carolyn Jack Janet Dennis Ruth Jerry Maria Tyler Heather Aaron Diane Jose
Virginia Adam Julie Henry Joyce Nathan Victoria Douglas Olivia Zachary Kelly Peter Christina""".split()  # noqa: SIM905
LAST = """Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez
Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris
Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill
Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips
Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers
Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson
Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo Sanders
Patel Myers Long Ross Foster Jimenez Powell Jenkins Perry Russell Sullivan Bell Coleman Butler
Henderson Barnes Gonzales Fisher Vasquez Simmons Romero Jordan Patterson Alexander Hamilton""".split()  # noqa: SIM905
GENERIC = ["Administrator", "admin", "User", "Owner", "localadmin", "support"]


@dataclass
class Person:
    uid: int | None
    first: str
    last: str
    logon: str
    domain: str  # "ACME", "OLDCORP" or "" for a local-only laptop owner
    devices: list[str]

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"


@dataclass
class Arrival:
    case: str
    report: AgentReport
    truth: Person | None  # None: a new person
    # The licensed agent that goes silent (renames, migrations) or stays active.
    silent_device: str | None = None


@dataclass
class Scenario:
    people: list[Person] = field(default_factory=list)
    arrivals: list[Arrival] = field(default_factory=list)


class Maker:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.logons: set[str] = set()
        self.devices: set[str] = set()
        self.names: set[tuple[str, str]] = set()

    def logon(self, first: str, last: str) -> str:
        base = (first[0] + last).lower()
        logon, n = base, 2
        while logon in self.logons:
            logon, n = f"{base}{n}", n + 1
        self.logons.add(logon)
        return logon

    def device(self, prefix: str | None = None) -> str:
        while True:
            if prefix is None:
                prefix = self.rng.choice(["LAPTOP", "LAPTOP", "DESKTOP", "WS", "NB"])
            name = f"{prefix}-{self.rng.randrange(100, 99999)}"
            if name not in self.devices:
                self.devices.add(name)
                return name

    def random_device(self) -> str:
        # A fresh Windows install's name: DESKTOP- and seven random characters.
        alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
        name = "DESKTOP-" + "".join(self.rng.choice(alphabet) for _ in range(7))
        self.devices.add(name)
        return name

    def person(self, domain: str) -> Person:
        first, last = self.rng.choice(FIRST), self.rng.choice(LAST)
        self.names.add((first, last))
        devices = [self.device()]
        # A local account is one user per device: local-only owners have one laptop.
        if domain and self.rng.random() < 0.3:
            devices.append(self.device())
        return Person(None, first, last, self.logon(first, last), domain, devices)


def display(p: Person, rng: random.Random) -> str:
    r = rng.random()
    if r < 0.1:
        return f"{p.last}, {p.first}"
    if r < 0.15:
        return f"{p.first} {rng.choice('ABCDEFGHJKLMNPRSTW')}. {p.last}"
    return p.name


def build(rng: random.Random, licensed: int, pending: int) -> Scenario:
    mk = Maker(rng)
    sc = Scenario()
    for i in range(licensed):
        domain = "ACME" if i % 10 < 8 else ("OLDCORP" if i % 10 == 8 else "")
        sc.people.append(mk.person(domain))
    acme = [p for p in sc.people if p.domain == "ACME"]
    old = [p for p in sc.people if p.domain == "OLDCORP"]
    lone = [p for p in sc.people if p.domain == ""]
    used: set[int] = set()

    def pick(pool: list[Person]) -> Person:
        while True:
            p = rng.choice(pool)
            if id(p) not in used:
                used.add(id(p))
                return p

    def local_name(p: Person) -> str:
        # A local account's full name is often set at install, sometimes left empty.
        return display(p, rng) if rng.random() < 0.7 else p.logon

    dups = int(pending * 0.55)
    cases = ["renamed", "reimaged", "local_on_domain_laptop", "login_format", "migration"]
    for n in range(dups):
        case = cases[n % len(cases)]
        if case == "renamed":
            p = pick(lone)
            dev = p.devices[0]
            new = dev + rng.choice(["B", "-NEW", "X", "-2"])
            if new.endswith("-2") and dev[-1].isdigit():
                new = dev + "B"
            sc.arrivals.append(
                Arrival(case, AgentReport(new, new, p.logon, local_name(p)), p, silent_device=dev)
            )
        elif case == "reimaged":
            p = pick(lone)
            new = mk.random_device()
            sc.arrivals.append(
                Arrival(case, AgentReport(new, new, p.logon, local_name(p)), p, silent_device=p.devices[0])
            )
        elif case == "local_on_domain_laptop":
            p = pick(acme)
            dev = rng.choice(p.devices)
            logon = p.logon if rng.random() < 0.8 else p.first.lower()
            name = display(p, rng) if logon != p.logon or rng.random() < 0.7 else logon
            sc.arrivals.append(Arrival(case, AgentReport(dev, dev, logon, name), p))
        elif case == "login_format":
            p = pick(acme)
            fmt = rng.choice(["dotted", "upn", "upn_dotted"])
            dotted = f"{p.first}.{p.last}".lower()
            logon = {"dotted": dotted, "upn": f"{p.logon}@acme.com", "upn_dotted": f"{dotted}@acme.com"}[fmt]
            same_device = rng.random() < 0.5
            dev = rng.choice(p.devices) if same_device else mk.device()
            sc.arrivals.append(
                Arrival(
                    case,
                    AgentReport(dev, "ACME", logon, display(p, rng)),
                    p,
                    silent_device=dev if same_device else None,
                )
            )
        else:
            p = pick(old)
            same_device = rng.random() < 0.6
            dev = p.devices[0] if same_device else mk.device()
            sc.arrivals.append(
                Arrival(
                    case,
                    AgentReport(dev, "ACME", p.logon, display(p, rng)),
                    p,
                    silent_device=p.devices[0] if same_device else None,
                )
            )
    kinds = [
        "new",
        "new",
        "new",
        "same_initial",
        "same_initial",
        "namesake",
        "generic_local",
        "shared_device",
    ]
    for n in range(pending - dups):
        case = kinds[n % len(kinds)]
        if case == "new":
            first, last = rng.choice(FIRST), rng.choice(LAST)
            logon = mk.logon(first, last)
            sc.arrivals.append(
                Arrival(case, AgentReport(mk.device(), "ACME", logon, f"{first} {last}"), None)
            )
        elif case == "same_initial":
            # Jane Smith beside John Smith: the directory numbers her login (jsmith2) or
            # she uses first.last.
            p = rng.choice([q for q in acme if sum(f[0] == q.first[0] for f in FIRST) > 1])
            first = rng.choice([f for f in FIRST if f[0] == p.first[0] and f != p.first])
            logon = mk.logon(first, p.last) if rng.random() < 0.6 else f"{first}.{p.last}".lower()
            mk.logons.add(logon)
            sc.arrivals.append(
                Arrival(case, AgentReport(mk.device(), "ACME", logon, f"{first} {p.last}"), None)
            )
        elif case == "namesake":
            p = rng.choice(acme)
            logon = mk.logon(p.first, p.last)
            shown = f"{p.first[0]}. {p.last}" if rng.random() < 0.3 else p.name
            sc.arrivals.append(Arrival(case, AgentReport(mk.device(), "ACME", logon, shown), None))
        elif case == "generic_local":
            dev = mk.device()
            logon = rng.choice(GENERIC)
            sc.arrivals.append(Arrival(case, AgentReport(dev, dev, logon, logon), None))
        else:
            p = rng.choice(acme)
            first, last = rng.choice(FIRST), rng.choice(LAST)
            logon = mk.logon(first, last)
            sc.arrivals.append(
                Arrival(case, AgentReport(rng.choice(p.devices), "ACME", logon, f"{first} {last}"), None)
            )
    rng.shuffle(sc.arrivals)
    return sc


def report_of(p: Person, device: str, rng: random.Random) -> AgentReport:
    domain = p.domain or device
    return AgentReport(
        device, domain, p.logon, display(p, rng) if p.domain or rng.random() < 0.7 else p.logon
    )


async def run(url: str, seed: int, licensed: int, pending: int) -> None:
    rng = random.Random(seed)
    sc = build(rng, licensed, pending)
    db = Database(url)
    await db.migrate()
    async with db.write() as s:
        acct = await accounts.create_account(
            s,
            name=f"Suggestions bench {time.time_ns()}",
            license_limit=licensed,
            retention_days=30,
            now=NOW - timedelta(days=30),
        )
    account_id = acct.id

    # The licensed fleet, in bulk through the real admission path (which files every agent).
    reports: list[tuple[Person, AgentReport]] = [
        (p, report_of(p, d, rng)) for p in sc.people for d in p.devices
    ]
    for start in range(0, len(reports), 250):
        chunk = reports[start : start + 250]
        async with db.write() as s:
            admitted = await admission.admit_many(
                s, account_id, [r for _, r in chunk], NOW - timedelta(days=30)
            )
        for (p, _), admitted_as in zip(chunk, admitted, strict=True):
            assert admitted_as.status == "LICENSED", admitted_as
            p.uid = admitted_as.user_id
    # Agents report all the time: every licensed agent was seen in the last two hours,
    # except the ones an arrival replaces (renamed, re-imaged, migrated), silent for days
    # (or, for a fifth of them, renamed just now).
    async with db.write() as s:
        await s.execute(
            sa.update(Agent)
            .where(Agent.account_id == account_id)  # type: ignore[arg-type]
            .values(last_seen_at=NOW - timedelta(minutes=30))
        )
        await s.execute(
            sa.update(User)
            .where(User.account_id == account_id)  # type: ignore[arg-type]
            .values(last_seen_at=NOW - timedelta(minutes=30))
        )
        for a in sc.arrivals:
            if a.silent_device is not None and a.truth is not None:
                ago = timedelta(minutes=20) if rng.random() < 0.2 else timedelta(days=rng.randrange(1, 20))
                await s.execute(
                    sa.update(Agent)
                    .where(Agent.account_id == account_id, Agent.device_name == a.silent_device)  # type: ignore[arg-type]
                    .values(last_seen_at=NOW - ago)
                )

    # Arrivals one by one, timing the suggestion work inside admission.
    timings: list[float] = []
    real = store.on_admitted

    async def timed(*args: Any, **kwargs: Any) -> None:
        t0 = time.perf_counter()
        await real(*args, **kwargs)
        timings.append(time.perf_counter() - t0)

    store.on_admitted = timed
    uids: list[int] = []
    try:
        for n, a in enumerate(sc.arrivals):
            async with db.write() as s:
                (adm,) = await admission.admit_many(s, account_id, [a.report], NOW + timedelta(seconds=n))
            assert adm.status == "PENDING" and adm.user_id is not None, (a, adm)
            uids.append(adm.user_id)
    finally:
        store.on_admitted = real

    async with db.read() as s:
        found = await store.suggestions_by_user(s, account_id, uids)
    per_case: dict[str, Counter[str]] = defaultdict(Counter)
    right = suggested = dups = kind_ok = 0
    wrong: list[str] = []
    for a, uid in zip(sc.arrivals, uids, strict=True):
        top = found[uid][0] if found.get(uid) else None
        c = per_case[a.case]
        c["n"] += 1
        if a.truth is not None:
            dups += 1
        if top is None:
            c["none"] += 1
            continue
        suggested += 1
        target = (
            top.user.id if top.user is not None else (top.agent.user_id if top.agent is not None else None)
        )
        if a.truth is not None and target == a.truth.uid:
            right += 1
            c["right"] += 1
            expected = (
                "MERGE"
                if a.case in ("renamed",)
                or (a.silent_device == a.report.device_name and a.case in ("migration",))
                else None
            )
            if expected is None or top.kind.value == expected:
                kind_ok += 1
        else:
            c["wrong"] += 1
            r = a.report
            wrong.append(
                f"{a.case}: {r.domain}\\{r.logon_name} on {r.device_name} ({r.display_name}) -> "
                f"{top.kind.value} {top.score:.2f} {top.reasons}"
            )

    # The suggestion work alone, recomputed per arrival and in bulk.
    one: list[float] = []
    for uid in uids:
        async with db.write() as s:
            t0 = time.perf_counter()
            await store.compute(s, account_id, [uid], NOW)
            one.append(time.perf_counter() - t0)
    async with db.write() as s:
        t0 = time.perf_counter()
        await store.compute(s, account_id, uids, NOW)
        bulk = time.perf_counter() - t0
    await db.dispose()

    def ms(xs: list[float]) -> str:
        xs = sorted(xs)
        return (
            f"mean {statistics.mean(xs) * 1000:.2f} ms, p50 {xs[len(xs) // 2] * 1000:.2f} ms, "
            f"p95 {xs[int(len(xs) * 0.95)] * 1000:.2f} ms"
        )

    print(
        f"{url.split(':')[0]}: {licensed} licensed people ({sum(len(p.devices) for p in sc.people)} agents), "
        f"{len(uids)} arrivals ({dups} duplicates, {len(uids) - dups} new people), threshold {score.THRESHOLD}"
    )
    print(f"{'case':<24}{'n':>5}{'right':>7}{'wrong':>7}{'none':>6}")
    for case, c in sorted(per_case.items()):
        print(f"{case:<24}{c['n']:>5}{c['right']:>7}{c['wrong']:>7}{c['none']:>6}")
    precision = right / suggested if suggested else 1.0
    print(f"top-1 precision: {precision:.3f}  ({right} right of {suggested} arrivals with a suggestion)")
    print(f"recall:          {right / dups:.3f}  ({right} of {dups} duplicates)")
    print(f"expected kind (MERGE for renames and same-device migrations): {kind_ok} of {right} right")
    print(f"time per arrival, inside admission (file keys, suggest, refresh): {ms(timings)}")
    print(f"time per arrival, recomputed one by one: {ms(one)}")
    print(f"time per arrival, recomputed in one bulk call: {bulk * 1000 / len(uids):.2f} ms")
    print("targets: precision >= 0.95, recall >= 0.85, <= 5 ms per arrival")
    for w in wrong[:15]:
        print("  wrong:", w)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--licensed", type=int, default=1000)
    ap.add_argument("--pending", type=int, default=240)
    ap.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = ap.parse_args()
    if args.database_url:
        asyncio.run(run(args.database_url, args.seed, args.licensed, args.pending))
        return
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(f"sqlite+aiosqlite:///{tmp}/bench.db", args.seed, args.licensed, args.pending))


_: Callable[..., Awaitable[None]] = run

if __name__ == "__main__":
    main()
