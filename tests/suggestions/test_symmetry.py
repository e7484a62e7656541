"""A pair of users scores the same whichever side asks: the store relies on it to refresh,
when a user's agents change, exactly the users that have it as a likely match (pure, no
database)."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from server.domain.suggestions.score import Side, matches, score_pair
from tests.support import START

NAMES = ["John Doe", "Doe, John", "J. Doe", "John D.", "Jane Doe", "John Smith", "Jon Doe", "jdoe", "Ann Lee"]
LOGONS = ["jdoe", "john.doe", "jdoe2", "JDoe@acme.com", "jsmith", "administrator", "ann.lee", "doej"]
DEVICES = ["LAPTOP-7", "LAPTOP-7B", "LAPTOP-71", "laptop_7", "DESKTOP-F00E3A", "PC-1"]
AGO = st.sampled_from([timedelta(minutes=5), timedelta(hours=3), timedelta(days=2), timedelta(days=45)])


@st.composite
def agents(draw: st.DrawFn, agent_id: int, user_id: int) -> Side:
    device = draw(st.sampled_from(DEVICES))
    # A local account's domain is its device.
    domain = draw(st.sampled_from(["ACME", "OLDCORP", device]))
    return Side(
        agent_id,
        user_id,
        draw(st.sampled_from(NAMES)),
        device,
        domain,
        draw(st.sampled_from(LOGONS)),
        START - draw(AGO),
        START - draw(AGO),
    )


@given(agents(1, 10), agents(2, 20))
def test_a_pair_scores_the_same_both_ways(p: Side, c: Side) -> None:
    forward, backward = score_pair(p, c, START), score_pair(c, p, START)
    assert forward.x == backward.x
    assert forward.kind is backward.kind


@given(st.lists(st.integers(1, 99), min_size=2, max_size=6, unique=True), st.data())
def test_who_matches_whom_is_symmetric(agent_ids: list[int], data: st.DataObject) -> None:
    # Agents dealt over three users (ids 1..3), each with at least one.
    sides = [data.draw(agents(a, 1 + i % 3)) for i, a in enumerate(agent_ids)]
    by_user: dict[int, list[Side]] = {}
    for s in sides:
        by_user.setdefault(s.user_id, []).append(s)
    found = {uid: {m.user_id: m.x for m in matches(mine, sides, START)} for uid, mine in by_user.items()}
    for uid, found_by_me in found.items():
        for other, x in found_by_me.items():
            assert found[other].get(uid) == x
