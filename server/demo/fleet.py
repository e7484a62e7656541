"""The demo: an account near its license limit and a simulated fleet of agents reporting.

People report from one or more devices; new people keep appearing every few seconds, so the
account crosses its limit and the Pending Licenses queue fills while the admin works it.
About half the arrivals are not new people but someone the account already knows, as in a
real fleet, so the queue's likely-match suggestions have something to find: a local account
on a domain laptop, another login format, a domain migration (``OLDCORP`` -> ``DEMOCORP``),
a renamed or re-imaged home laptop. The fleet calls the same ingestion code as ``POST /ingest``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from server.domain.accounts import (
    Created,
    create_account,
    create_admin,
    find_account_by_name,
    rotate_admin_token,
)
from server.domain.activity import ingestion
from server.domain.activity.batch import Batch, Event
from server.domain.admission import AgentReport
from server.domain.models import Role
from server.infra.db import Database
from server.web.runtime import Services

log = logging.getLogger(__name__)

DEMO_ACCOUNT = "Demo Corp"
DEMO_ADMIN = "admin@demo.example"
DEMO_LICENSES = 40
DOMAIN = "DEMOCORP"
OLD_DOMAIN = "OLDCORP"

FIRST = [
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Margaret",
    "Dennis",
    "Barbara",
    "Ken",
    "Radia",
    "Tim",
    "Frances",
    "John",
    "Edsger",
    "Hedy",
    "Donald",
    "Katherine",
    "Guido",
    "Anita",
    "Niklaus",
    "Shafi",
    "Leslie",
    "Sophie",
    "Bjarne",
    "Adele",
    "James",
    "Lynn",
    "Yukihiro",
    "Karen",
    "Brian",
    "Jean",
    "Rob",
    "Mary",
    "Whitfield",
    "Ivan",
    "Carol",
    "Vint",
    "Joan",
    "Bob",
]
LAST = [
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Hamilton",
    "Ritchie",
    "Liskov",
    "Thompson",
    "Perlman",
    "Berners-Lee",
    "Allen",
    "McCarthy",
    "Dijkstra",
    "Lamarr",
    "Knuth",
    "Johnson",
    "van Rossum",
    "Borg",
    "Wirth",
    "Goldwasser",
    "Lamport",
    "Wilson",
    "Stroustrup",
    "Goldberg",
    "Gosling",
    "Conway",
    "Matsumoto",
    "Jones",
    "Kernighan",
    "Bartik",
    "Pike",
]
APPS = [
    ("excel.exe", "productive", "Budget FY27.xlsx", None),
    ("winword.exe", "productive", "Proposal draft.docx", None),
    ("code.exe", "productive", "licensing.py - plm", None),
    ("outlook.exe", "neutral", "Inbox", None),
    ("teams.exe", "neutral", "Weekly sync", None),
    ("chrome.exe", "productive", "Jira board", "https://jira.demo.example/board/7"),
    ("chrome.exe", "unproductive", "YouTube", "https://www.youtube.com/"),
    ("chrome.exe", "neutral", "News", "https://news.example.com/"),
    ("slack.exe", "neutral", "#general", None),
    ("figma.exe", "productive", "Onboarding flow", None),
]
MAX_AGENTS = 300


@dataclass(frozen=True)
class Login:
    device: str
    domain: str
    logon: str


@dataclass
class Person:
    first: str
    last: str
    logon: str
    devices: list[str]
    # OLD_DOMAIN until migrated; "" for a home laptop's local account (domain = device name).
    domain: str = DOMAIN
    # More logins of the same person: a local account beside the domain one, another format.
    extra: list[Login] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"

    def logins(self) -> list[Login]:
        return [Login(d, self.domain or d, self.logon) for d in self.devices] + self.extra


async def setup_demo(db: Database, retention_days: int, now: datetime) -> tuple[int, Created]:
    """Create the demo account and admin, or reuse them with a fresh token; returns (account, admin)."""
    async with db.write() as session:
        account = await find_account_by_name(session, DEMO_ACCOUNT)
        if account is None:
            created = await create_account(
                session,
                name=DEMO_ACCOUNT,
                license_limit=DEMO_LICENSES,
                retention_days=retention_days,
                now=now,
            )
            account_id = created.id
        else:
            assert account.id is not None
            account_id = account.id
        admin = await rotate_admin_token(session, account_id, DEMO_ADMIN)
        if admin is None:
            admin = await create_admin(
                session, account_id=account_id, email=DEMO_ADMIN, name="Demo Admin", role=Role.ADMIN, now=now
            )
    return account_id, admin


class Fleet:
    """The simulated agents of one account."""

    def __init__(self, account_id: int, seed: int | None = None) -> None:
        self.account_id = account_id
        self.rng = random.Random(seed)
        self.people: list[Person] = []
        self._batch = 0
        self._used: set[str] = set()

    def new_person(self) -> Person:
        for _ in range(1000):
            first, last = self.rng.choice(FIRST), self.rng.choice(LAST)
            logon = f"{first[0]}{last}".lower().replace(" ", "").replace("-", "")
            if logon not in self._used:
                break
        else:
            logon = f"user{len(self._used)}"
        self._used.add(logon)
        devices = [f"LAPTOP-{self.rng.randrange(1000, 9999)}"]
        r = self.rng.random()
        domain = DOMAIN if r < 0.7 else OLD_DOMAIN if r < 0.85 else ""
        if domain and self.rng.random() < 0.35:
            devices.append(f"DESKTOP-{self.rng.randrange(1000, 9999)}")
        person = Person(first, last, logon, devices, domain)
        self.people.append(person)
        return person

    def duplicate(self) -> tuple[Person, Login] | None:
        """Someone the account knows shows up under a new agent key; None if nobody fits."""
        rng = self.rng
        case = rng.choice(["local account", "login format", "migration", "renamed", "re-imaged"])
        # Whose logins each case can change: domain users, OLDCORP users, home laptops.
        wanted = {"local account": DOMAIN, "login format": DOMAIN, "migration": OLD_DOMAIN}.get(case, "")
        pool = [p for p in self.people if p.domain == wanted]
        if not pool:
            return None
        person = rng.choice(pool)
        device = rng.choice(person.devices)
        if case == "local account":
            login = Login(device, device, person.logon)
            person.extra.append(login)
        elif case == "login format":
            logon = rng.choice([f"{person.first}.{person.last}", f"{person.logon}@democorp.example"])
            login = Login(device, DOMAIN, logon.lower().replace(" ", ""))
            person.extra.append(login)
        elif case == "migration":
            # Every device of the person now reports in the new domain; the old keys go quiet.
            person.domain = DOMAIN
            login = Login(device, DOMAIN, person.logon)
        else:
            new = f"{device}B" if case == "renamed" else f"DESKTOP-{rng.randrange(16**6):06X}"
            person.devices = [new if d == device else d for d in person.devices]
            login = Login(new, new, person.logon)
        return person, login

    def agents(self) -> list[tuple[Person, Login]]:
        return [(p, login) for p in self.people for login in p.logins()]

    def batch(self, person: Person, login: Login, svc: Services, events: int) -> Batch:
        self._batch += 1
        now = svc.clock()
        evs = []
        for _ in range(events):
            app, prod, title, url = self.rng.choice(APPS)
            start = now - timedelta(seconds=self.rng.randrange(60, 3600))
            evs.append(Event(start, self.rng.randrange(30, 900), app, title, url, prod))
        agent = AgentReport(login.device, login.domain, login.logon, person.name)
        return Batch(f"demo-{self._batch}", agent, evs)

    async def report(self, svc: Services, person: Person, login: Login, events: int) -> None:
        async with svc.db.write() as session:
            await ingestion.ingest(
                session, self.account_id, self.batch(person, login, svc, events), svc.clock()
            )


async def run_fleet(
    svc: Services, account_id: int, initial_people: int = 36, *, stopping: asyncio.Event | None = None
) -> None:
    """Report until ``stopping`` is set: existing agents every second or so, a new person every few seconds.

    It stops between reports, never in the middle of one, so a server shutting down finds
    no write half-done.
    """
    stop = stopping or asyncio.Event()
    fleet = Fleet(account_id)
    for _ in range(initial_people):
        person = fleet.new_person()
        for login in person.logins():
            if stop.is_set():
                return
            await fleet.report(svc, person, login, fleet.rng.randrange(1, 6))
    next_arrival = 0.0
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        try:
            reports: list[tuple[Person, Login, int]] = []
            if loop.time() >= next_arrival and len(fleet.agents()) < MAX_AGENTS:
                known = fleet.duplicate() if fleet.rng.random() < 0.5 else None
                if known is not None:
                    reports.append((known[0], known[1], fleet.rng.randrange(1, 6)))
                else:
                    person = fleet.new_person()
                    reports += [(person, login, fleet.rng.randrange(1, 6)) for login in person.logins()]
                next_arrival = loop.time() + fleet.rng.uniform(2, 6)
            agents = fleet.agents()
            reports += [
                (p, lg, fleet.rng.randrange(1, 10))
                for p, lg in fleet.rng.sample(agents, min(len(agents), 25))
            ]
            for person, login, events in reports:
                if stop.is_set():
                    return
                await fleet.report(svc, person, login, events)
        except Exception:  # the demo must keep going; the log says what went wrong
            log.exception("demo fleet report failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0)


def fleet_task(account_id: int) -> Callable[[Services, asyncio.Event], Coroutine[Any, Any, None]]:
    async def task(svc: Services, stopping: asyncio.Event) -> None:
        await run_fleet(svc, account_id, stopping=stopping)

    return task
