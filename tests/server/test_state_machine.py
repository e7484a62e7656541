"""A hypothesis state machine over the domain: random admissions, admin actions and undos, with
the invariants of docs/behaviour.md, Admission, Admin actions and Undo checked after every step."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from server.domain import actions, admission, plans, reclaim
from server.domain.admission import AgentReport
from server.domain.changes import Actor
from server.domain.errors import DomainError, ErrorCode
from server.domain.models import (
    Account,
    Agent,
    AgentAlias,
    AuditEntry,
    AutoApproveMode,
    DoNotTrack,
    QueueAction,
    Role,
    User,
    UserStatus,
)
from server.domain.undo import apply
from server.infra.db import Database
from tests.support import START, make_tenant, sqlite_url

_TEMPLATE: Path | None = None


def template_db() -> Path:
    """A migrated database with one account, copied for every example (migrating is slow)."""
    global _TEMPLATE
    if _TEMPLATE is None:
        path = Path(tempfile.mkdtemp()) / "template.db"

        async def build() -> None:
            db = Database(sqlite_url(path))
            await db.migrate()
            await make_tenant(db, licenses=2)
            await db.dispose()

        asyncio.run(build())
        _TEMPLATE = path
    return _TEMPLATE


DEVICES = ["LAPTOP-1", "LAPTOP-2", "DESKTOP-3", "KIOSK"]
LOGONS = ["ann", "bob", "cy", "dee", "eve"]


class LicenseMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp())
        shutil.copy(template_db(), self.dir / "plm.db")
        self.runner = asyncio.Runner()
        self.db = Database(sqlite_url(self.dir / "plm.db"))
        self.account_id = 1
        self.actor = Actor(self.account_id, 1, Role.ADMIN)
        self.expected_audit = 0
        self.now = START
        self.seen_plan_facts: dict[int, Any] = {}
        self._state_cache: dict[str, Any] | None = None
        # The last undoable action: the newest audit id before it, and the account before it.
        self.last: tuple[int, Any] | None = None

    def teardown(self) -> None:
        self.runner.run(self.db.dispose())
        self.runner.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def run(self, coro: Any) -> Any:
        return self.runner.run(coro)

    async def _state(self) -> dict[str, Any]:
        async with self.db.read() as s:
            users = list((await s.execute(sa.select(User).order_by(User.id))).scalars())
            agents = list((await s.execute(sa.select(Agent).order_by(Agent.id))).scalars())
            account = await s.get(Account, self.account_id)
            audits = int((await s.execute(sa.select(sa.func.count()).select_from(AuditEntry))).scalar_one())
        assert account is not None
        return {
            "users": users,
            "agents": agents,
            "limit": account.license_limit,
            "manual": account.manual_review,
            "audits": audits,
            "rows": sorted((u.id, u.status, u.pending_reason, u.licensed_at) for u in users),
            "plan_version": account.plan_version,
            # What a seat plan depends on (server.domain.plans).
            "plan_facts": (
                account.license_limit,
                account.manual_review,
                tuple(sorted((u.id, u.status, u.pending_reason, u.pending_since) for u in users)),
            ),
        }

    def state(self) -> dict[str, Any]:
        """The database's state, read once per write (every write goes through ``write``)."""
        if self._state_cache is None:
            self._state_cache = dict(self.run(self._state()))
        return self._state_cache

    def write(self, coro: Any) -> Any:
        self._state_cache = None
        try:
            return self.run(coro)
        finally:
            self._state_cache = None

    def pending(self) -> list[int]:
        return [u.id for u in self.state()["users"] if u.status is UserStatus.PENDING]

    def act(self, fn: Any, expected_audits: int, undoable: bool = False) -> DomainError | None:
        """Run an action; on success expect ``expected_audits`` new entries, on refusal no change.

        ``undoable``: an action undo can reverse; ``undo_last`` may then undo it.
        """
        before = self.state()
        dumped, newest = self.dump(), self.newest_entry()
        self.now = self.now.replace(second=(self.now.second + 1) % 60)

        async def go() -> None:
            async with self.db.write() as s:
                await fn(s)

        try:
            self.write(go())
        except DomainError as err:
            after = self.state()
            assert after["rows"] == before["rows"] and after["audits"] == before["audits"], err
            assert self.dump() == dumped, err
            return err
        self.expected_audit += expected_audits
        self.last = (newest, dumped) if undoable else None
        return None

    def dump(self) -> Any:
        """Everything an action and its undo touch (the audit apart)."""

        async def go() -> Any:
            async with self.db.read() as s:
                return [
                    sorted(map(tuple, (await s.execute(sa.select(*cols))).all()), key=repr)
                    for cols in (
                        [c for c in User.__table__.c if c.name != "_sentinel"],  # type: ignore[attr-defined]
                        [c for c in Agent.__table__.c if c.name != "_sentinel"],  # type: ignore[attr-defined]
                        [AgentAlias.key, AgentAlias.agent_id, AgentAlias.origin_agent_id],
                        [DoNotTrack.key],
                    )
                ]

        return self.run(go())

    def newest_entry(self) -> int:
        async def go() -> int:
            async with self.db.read() as s:
                return int(
                    (await s.execute(sa.select(sa.func.coalesce(sa.func.max(AuditEntry.id), 0)))).scalar_one()
                )

        return self.run(go())

    def undo(self, entry_ids: list[int]) -> tuple[DomainError | None, list[Any]]:
        """Undo these entries (a window no example outlives); the error, or the events published."""
        published: list[Any] = []

        async def fn(s: Any) -> None:
            result = await apply.undo_actions(s, self.actor, entry_ids, self.now, timedelta(days=3650))
            published.extend(result.events)

        err = self.act(fn, 0)
        if err is None:
            # One UNDONE per entry, one APPROVED per user the rule licensed after it.
            self.expected_audit += len(published)
        return err, published

    # ------------------------------------------------------------------ rules

    @rule(device=st.sampled_from(DEVICES), logon=st.sampled_from(LOGONS), local=st.booleans())
    def arrive(self, device: str, logon: str, local: bool) -> None:
        before = self.state()
        report = AgentReport(device, device if local else "ACME", logon, logon)

        async def go() -> admission.Admission:
            async with self.db.write() as s:
                return await admission.admit(s, self.account_id, report, self.now)

        result = self.write(go())
        self.last = None
        if result.entered_queue:
            self.expected_audit += 1
        if result.status == "LICENSED" and len(self.state()["users"]) > len(before["users"]):
            assert not before["manual"]

    def preview(self, planner: Any) -> plans.Preview:
        async def go() -> plans.Preview:
            async with self.db.read() as s:
                found: plans.Preview = await planner(s)
                return found

        return self.run(go())  # type: ignore[no-any-return]

    def applies_as_previewed(
        self, preview: plans.Preview, before: dict[str, Any], err: DomainError | None
    ) -> None:
        """The action did exactly what its preview said (the same planner decided both)."""
        assert [e.code for e in preview.errors] == ([] if err is None else [err.code])
        was = {u.id: u.status for u in before["users"]}
        now = {u.id: u.status for u in self.state()["users"]}
        licensed = [i for i in now if now[i] is UserStatus.LICENSED and was.get(i) is UserStatus.PENDING]
        moved = [i for i in now if now[i] is UserStatus.PENDING and was.get(i) is UserStatus.LICENSED]
        assert sorted(licensed) == sorted(u.id for u in preview.plan.approve)
        assert sorted(moved) == sorted(u.id for u in preview.plan.move_to_pending)
        if err is None:
            assert sum(s is UserStatus.LICENSED for s in now.values()) == preview.plan.licenses_used_after

    @rule(data=st.data(), stale=st.booleans())
    def approve(self, data: st.DataObject, stale: bool) -> None:
        pending = self.pending()
        if not pending:
            return
        chosen = data.draw(st.lists(st.sampled_from(pending), min_size=1, unique=True))
        state = self.state()
        used = sum(u.status is UserStatus.LICENSED for u in state["users"])
        preview = self.preview(lambda s: plans.preview_approval(s, self.account_id, chosen))
        # A stale version (what a concurrent change leaves) refuses and changes nothing.
        version = str(int(preview.queue_version) - 1) if stale else preview.queue_version
        err = self.act(lambda s: actions.approve(s, self.actor, chosen, self.now, version), len(chosen), True)
        if stale:
            assert err is not None and err.code is ErrorCode.PLAN_CHANGED
            return
        self.applies_as_previewed(preview, state, err)
        if len(chosen) > state["limit"] - used:
            assert err is not None and err.code is ErrorCode.LICENSE_LIMIT_EXCEEDED
        else:
            assert err is None

    @rule(data=st.data())
    def assign(self, data: st.DataObject) -> None:
        pending, users = self.pending(), [u.id for u in self.state()["users"]]
        if not pending:
            return
        source = data.draw(st.sampled_from(pending))
        target = data.draw(st.sampled_from(users))
        err = self.act(lambda s: actions.assign(s, self.actor, source, target, self.now), 1, True)
        assert (err is not None and err.code is ErrorCode.CONFLICT) == (source == target)

    @rule(data=st.data())
    def merge(self, data: st.DataObject) -> None:
        pending, agents = self.pending(), self.state()["agents"]
        if not pending or not agents:
            return
        source = data.draw(st.sampled_from(pending))
        target = data.draw(st.sampled_from(agents))
        err = self.act(lambda s: actions.merge(s, self.actor, source, target.id, self.now), 1, True)
        assert (err is not None and err.code is ErrorCode.CONFLICT) == (target.user_id == source)

    @rule(data=st.data(), dnt=st.booleans())
    def remove(self, data: st.DataObject, dnt: bool) -> None:
        users = [u.id for u in self.state()["users"]]
        if not users:
            return
        chosen = data.draw(st.lists(st.sampled_from(users), min_size=1, max_size=3, unique=True))
        before = self.state()
        assert (
            self.act(lambda s: actions.remove(s, self.actor, chosen, dnt, self.now), len(chosen), True)
            is None
        )
        self.expected_audit += self.newly_licensed(before)  # the auto-approval rule's

    def licensed(self) -> list[int]:
        return [u.id for u in self.state()["users"] if u.status is UserStatus.LICENSED]

    def change_settings(self, change: plans.SettingsInput) -> None:
        """Preview, then apply with the preview's version: it does exactly what was shown."""
        state = self.state()
        preview = self.preview(lambda s: plans.preview_settings(s, self.account_id, change))
        audits = len(preview.plan.move_to_pending) + len(preview.plan.approve)
        err = self.act(
            lambda s: actions.update_settings(
                s,
                self.actor,
                self.now,
                manual_review=change.manual_review,
                license_limit=change.license_limit,
                auto_approve=change.auto_approve,
                auto_approve_domains=change.auto_approve_domains,
                expected_version=preview.queue_version,
            ),
            audits,
        )
        assert err is None
        self.applies_as_previewed(preview, state, None)

    @rule(limit=st.integers(min_value=0, max_value=6))
    def set_limit(self, limit: int) -> None:
        self.change_settings(plans.SettingsInput(license_limit=limit))

    @rule(on=st.booleans(), domains=st.sampled_from([[], ["acme"], ["kiosk", "laptop-1"]]))
    def set_auto_approve(self, on: bool, domains: list[str]) -> None:
        mode = AutoApproveMode.OLDEST_FIRST if on else AutoApproveMode.OFF
        self.change_settings(plans.SettingsInput(auto_approve=mode, auto_approve_domains=domains))

    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        users = [u.id for u in self.state()["users"]]
        if not users:
            return
        chosen = data.draw(st.lists(st.sampled_from(users), min_size=1, max_size=2, unique=True))
        licensed = set(self.licensed())
        before = self.state()
        err = self.act(lambda s: reclaim.release(s, self.actor, chosen, self.now), 0, True)
        if not set(chosen) <= licensed:
            assert err is not None and err.code is ErrorCode.CONFLICT
            return
        assert err is None
        # One entry per released user, one per user the rule licensed into what they freed.
        self.expected_audit += len(chosen) + self.newly_licensed(before)
        assert not set(chosen) & set(self.licensed()), "the rule never re-licenses the released"

    @rule(data=st.data())
    def swap(self, data: st.DataObject) -> None:
        licensed, pending = self.licensed(), self.pending()
        if not licensed or not pending:
            return
        out, into = data.draw(st.sampled_from(licensed)), data.draw(st.sampled_from(pending))
        before = self.state()
        assert self.act(lambda s: reclaim.swap(s, self.actor, out, into, self.now), 0, True) is None
        # The release, the swap's approval (a newly licensed user) and any the rule made.
        self.expected_audit += 1 + self.newly_licensed(before)
        assert into in self.licensed() and out not in self.licensed()

    def newly_licensed(self, before: dict[str, Any]) -> int:
        was = {u.id: u.status for u in before["users"]}
        return sum(
            1
            for u in self.state()["users"]
            if u.status is UserStatus.LICENSED and was.get(u.id) is UserStatus.PENDING
        )

    @rule()
    def toggle_manual_review(self) -> None:
        # Any settings write lets the auto-approval rule fill free licenses (a released
        # user waits for the next one): change_settings counts what its preview showed.
        self.change_settings(plans.SettingsInput(manual_review=not self.state()["manual"]))

    @precondition(lambda self: self.last is not None)
    @rule()
    def undo_last(self) -> None:
        """Undoing every entry of the last action, right after it, puts the account back as it
        was, unless the auto-approval rule then licensed someone (as after any write)."""
        if self.last is None:
            return
        newest, before = self.last
        entries = [e.id for e in self.entries() if e.id > newest and e.undo is not None]
        err, published = self.undo(entries)
        assert err is None, err
        if not any(e.action is QueueAction.APPROVED for e in published):
            assert self.dump() == before, "the action and its undo changed the account"

    @rule(data=st.data())
    def undo_some(self, data: st.DataObject) -> None:
        """Any entries: undone all together, or refused with nothing changed."""
        recent = [e.id for e in self.entries()][-8:]
        if not recent:
            return
        chosen = data.draw(st.lists(st.sampled_from(recent), min_size=1, max_size=3, unique=True))
        err, _ = self.undo(chosen)
        assert err is None or err.code is ErrorCode.NOT_UNDOABLE, err

    def entries(self) -> list[AuditEntry]:
        async def go() -> list[AuditEntry]:
            async with self.db.read() as s:
                return list((await s.execute(sa.select(AuditEntry).order_by(AuditEntry.id))).scalars())

        return self.run(go())

    # ------------------------------------------------------------------ invariants

    @invariant()
    def invariants(self) -> None:
        state = self.state()
        users = {u.id: u for u in state["users"]}
        licensed = [u for u in users.values() if u.status is UserStatus.LICENSED]
        assert len(licensed) <= state["limit"], "licensed users exceed the limit"
        for agent in state["agents"]:
            assert agent.user_id in users, "an agent without its user"
        for u in users.values():
            is_pending = u.status is UserStatus.PENDING
            assert (u.pending_reason is not None) == is_pending
            assert (u.pending_since is not None) == is_pending
            assert (u.licensed_at is not None) == (not is_pending)
        assert state["audits"] == self.expected_audit, "one audit entry per affected user per action"
        # queueVersion: a version names one state of what plans depend on, and never comes back.
        facts = self.seen_plan_facts.setdefault(state["plan_version"], state["plan_facts"])
        assert facts == state["plan_facts"], "what a plan depends on changed without a new queueVersion"


LicenseMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_license_state_machine = LicenseMachine.TestCase
