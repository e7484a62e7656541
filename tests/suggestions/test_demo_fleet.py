"""``plm serve --demo`` shows the feature: the fleet's duplicates reach the queue with the right match.

The fleet reports the way the demo does (same code, a fixed seed, no waiting between rounds).
For every person it knows which agents are theirs, so each pending user that is a known
person under a new key must have a top suggestion pointing to one of that person's users.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import sqlalchemy as sa

from server.demo.fleet import Fleet, Login, Person, setup_demo
from server.domain.models import Agent, User, UserStatus, utcnow
from server.domain.suggestions import store
from server.infra.db import Database
from server.infra.settings import Settings
from server.web.runtime import Services
from tests.support import sqlite_url


class WatchedFleet(Fleet):
    """The demo fleet, remembering every login each person ever reported from."""

    def __init__(self, account_id: int, seed: int) -> None:
        super().__init__(account_id, seed)
        self.reported: dict[str, set[tuple[str, str, str]]] = {}

    async def report(self, svc: Services, person: Person, login: Login, events: int) -> None:
        self.reported.setdefault(person.name, set()).add((login.device, login.domain, login.logon))
        await super().report(svc, person, login, events)


async def test_the_demo_fleets_duplicates_get_the_right_top_match(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "demo.db")
    db = Database(url)
    await db.migrate()
    svc = Services(Settings(database_url=url), db)
    try:
        account_id, _admin = await setup_demo(db, 30, utcnow())
        fleet = WatchedFleet(account_id, seed=7)
        for _ in range(36):  # as run_fleet starts
            person = fleet.new_person()
            for login in person.logins():
                await fleet.report(svc, person, login, 2)
        duplicates: list[tuple[Person, Login]] = []
        for _ in range(120):  # arrivals, half of them people the account knows
            known = fleet.duplicate() if fleet.rng.random() < 0.5 else None
            if known is not None:
                await fleet.report(svc, *known, 2)
                duplicates.append(known)
            else:
                person = fleet.new_person()
                for login in person.logins():
                    await fleet.report(svc, person, login, 2)

        async with db.read() as s:
            agents = (await s.execute(sa.select(Agent))).scalars().all()
            users = {u.id: u for u in (await s.execute(sa.select(User))).scalars()}
            pending = [uid for uid, u in users.items() if uid is not None and u.status == UserStatus.PENDING]
            found = await store.suggestions_by_user(s, account_id, pending)
            everyone = await store.suggestions_by_user(s, account_id, [u for u in users if u is not None])
        owner = {(a.device_name, a.domain, a.logon_name): a.user_id for a in agents}

        outcome: Counter[str] = Counter()
        for person, login in duplicates:
            uid = owner[(login.device, login.domain, login.logon)]
            theirs = {owner[k] for k in fleet.reported[person.name] if k in owner} - {uid}
            if users[uid].status != UserStatus.PENDING or not theirs:
                continue  # joined a known user directly (same login), or licensed under the limit
            top = found.get(uid, [None])[0]
            assert top is not None, f"no match for {person.name} on {login}"
            target = top.user.id if top.user is not None else top.agent.user_id  # type: ignore[union-attr]
            assert target in theirs, f"{person.name} on {login} matched user {target}: {top.reasons}"
            outcome[top.kind.value] += 1
        # The fleet produced plenty of both kinds, so the demo shows the feature.
        assert outcome["MERGE"] >= 5 and outcome["ASSIGN"] >= 5, outcome

        # Both ways, whatever the status: every user of a person the fleet reported as
        # several users (earlier pending entries, licensed re-images) shows one of the others.
        shown: Counter[str] = Counter()
        for person, logins in fleet.reported.items():
            theirs = {owner[k] for k in logins if k in owner}
            if len(theirs) < 2:
                continue
            for uid in theirs:
                top = everyone.get(uid, [None])[0]
                assert top is not None, f"no match for {person}'s user {uid} ({users[uid].status})"
                target = top.user.id if top.user is not None else top.agent.user_id  # type: ignore[union-attr]
                assert target in theirs - {uid}, f"{person}'s user {uid} matched user {target}: {top.reasons}"
                shown[users[uid].status.value] += 1
        assert shown["LICENSED"] >= 5 and shown["PENDING"] >= 5, shown
    finally:
        await svc.committer.stop()
        await db.dispose()
