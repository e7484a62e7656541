"""Admission's rules in memory: :func:`server.domain.admission.decide`, no database.

The database tests (test_admission.py) prove the rules hold when applied under the lock;
these pin the decision itself, report by report, including what a list of reports decides
that no single report would (a key or a domain login seen twice, licenses running out).
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from server.domain.admission import Admission, AdmissionStatus, AgentReport, Facts, NewUser, Placed, decide
from server.domain.models import PendingReason, UserStatus


def report(device: str, logon: str, domain: str = "ACME", name: str | None = None) -> AgentReport:
    return AgentReport(device, domain, logon, name or logon)


def facts(**kw: object) -> Facts:
    base: dict[str, object] = {
        "known": {},
        "ignored": frozenset(),
        "owners": {},
        "manual_review": False,
        "license_limit": 10,
        "licensed": 0,
    }
    return Facts(**{**base, **kw})  # type: ignore[arg-type]


def placed(plan_outcome: Admission | Placed) -> Placed:
    assert isinstance(plan_outcome, Placed)
    return plan_outcome


def test_new_people_take_free_licenses_in_order_then_queue_over_the_limit() -> None:
    reports = [report(f"PC-{i}", f"u{i}") for i in range(4)]
    plan = decide(reports, facts(license_limit=3, licensed=1))
    statuses = [(u.status, u.reason) for u in plan.new_users]
    assert statuses == [
        (UserStatus.LICENSED, None),
        (UserStatus.LICENSED, None),
        (UserStatus.PENDING, PendingReason.OVER_LIMIT),
        (UserStatus.PENDING, PendingReason.OVER_LIMIT),
    ]
    assert [placed(o).entered_queue for o in plan.outcomes] == [False, False, True, True]


def test_manual_review_holds_every_newcomer_even_with_licenses_free() -> None:
    plan = decide([report("PC-1", "ann"), report("PC-2", "bob")], facts(manual_review=True, licensed=None))
    assert {(u.status, u.reason) for u in plan.new_users} == {
        (UserStatus.PENDING, PendingReason.MANUAL_REVIEW)
    }


def test_a_domain_login_on_another_device_joins_its_user_and_takes_no_license() -> None:
    ann = report("LAPTOP-2", "ann")
    assert ann.login is not None
    plan = decide([ann], facts(owners={ann.login: (7, UserStatus.PENDING)}, license_limit=0))
    assert plan.new_users == []
    (agent,) = plan.new_agents
    assert agent.owner == 7 and agent.status is UserStatus.PENDING
    assert placed(plan.outcomes[0]).entered_queue is False


def test_within_one_list_a_key_or_a_login_seen_earlier_is_the_same_agent_or_person() -> None:
    first, again = report("PC-1", "ann"), report("PC-1", "ann")
    other_device = report("PC-2", "ann")
    local = report("HOME", "ann", domain="HOME")  # a local account never joins by login
    plan = decide([first, again, other_device, local], facts(license_limit=1))
    assert len(plan.new_users) == 2 and len(plan.new_agents) == 3
    one, two, three, four = (placed(o) for o in plan.outcomes)
    assert one.agent is two.agent and (one.entered_queue, two.entered_queue) == (False, False)
    assert isinstance(three.agent.owner, NewUser) and three.agent.owner is one.agent.owner
    assert four.agent.status is UserStatus.PENDING and four.entered_queue


def test_do_not_track_keys_are_ignored_and_keys_admitted_meanwhile_resolve() -> None:
    ignored, known = report("PC-1", "spy"), report("PC-2", "old")
    plan = decide(
        [ignored, known], facts(ignored=frozenset({ignored.key}), known={known.key: (5, 6, "PENDING")})
    )
    assert plan.outcomes == [Admission(None, None, AdmissionStatus.IGNORED), Admission(5, 6, "PENDING")]
    assert plan.new_users == [] and plan.new_agents == []


names = st.sampled_from(["ann", "bob", "cy", "dee"])
devices = st.sampled_from(["PC-1", "PC-2", "HOME"])


@given(
    reports=st.lists(st.builds(report, devices, names, st.sampled_from(["ACME", "HOME"])), max_size=25),
    limit=st.integers(0, 6),
    licensed=st.integers(0, 6),
    manual=st.booleans(),
)
def test_a_plan_never_licenses_past_the_limit_and_places_every_report(
    reports: list[AgentReport], limit: int, licensed: int, manual: bool
) -> None:
    plan = decide(
        reports, facts(license_limit=limit, licensed=None if manual else licensed, manual_review=manual)
    )
    new_licensed = sum(u.status is UserStatus.LICENSED for u in plan.new_users)
    assert new_licensed <= max(0, limit - licensed)
    if manual:
        assert new_licensed == 0
    assert len(plan.outcomes) == len(reports)
    assert (
        len({a.report.key for a in plan.new_agents}) == len(plan.new_agents) == len({r.key for r in reports})
    )
    # Every user entering the queue is entered by exactly one report.
    entered = [o for o in plan.outcomes if isinstance(o, Placed) and o.entered_queue]
    assert len(entered) == sum(u.status is UserStatus.PENDING for u in plan.new_users)
