"""A list filter's conditions are built once per distinct filter and shared, never mixed up."""

from __future__ import annotations

import pytest

from server.domain.errors import DomainError
from server.domain.models import PendingReason, UserStatus
from server.domain.reads.lists import AgentFilter, PendingFilter, UserFilter


@pytest.mark.parametrize(
    "make",
    [
        lambda account, search: PendingFilter(account, search, PendingReason.OVER_LIMIT),
        lambda account, search: UserFilter(account, search, UserStatus.LICENSED),
        lambda account, search: AgentFilter(account, search),
    ],
    ids=["pending", "users", "agents"],
)
def test_an_equal_filter_reuses_the_built_conditions(make) -> None:  # type: ignore[no-untyped-def]
    first = make(7, "ada lovelace").where()
    again = make(7, "ada lovelace").where()
    assert [id(c) for c in again] == [id(c) for c in first]  # nothing rebuilt
    again.append("the caller's own")  # a caller may extend its list...
    assert len(make(7, "ada lovelace").where()) == len(first)  # ...without touching the shared one
    for other in (make(8, "ada lovelace"), make(7, "ada"), make(7, None)):
        conditions = other.where()
        assert not {id(c) for c in conditions} & {id(c) for c in first}
        compiled = " ".join(str(c.compile(compile_kwargs={"literal_binds": True})) for c in conditions)
        assert ("8" in compiled) == (other.account_id == 8)


def test_a_refused_search_is_refused_every_time() -> None:
    for _ in range(2):
        with pytest.raises(DomainError):
            PendingFilter(1, "x" * 257).where()
