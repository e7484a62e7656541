"""A list filter's conditions are built once per shape and shared; its values are bind
parameters, never mixed up between filters."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from server.domain.errors import DomainError
from server.domain.models import PendingReason, UserStatus
from server.domain.reads.lists import AgentFilter, PendingFilter, UserFilter


def _sql(bound) -> str:  # type: ignore[no-untyped-def]
    stmt = sa.select(sa.literal(1)).where(*bound.where).params(bound.params)
    return str(stmt.compile(compile_kwargs={"literal_binds": True}))


@pytest.mark.parametrize(
    "make",
    [
        lambda account, search: PendingFilter(account, search, PendingReason.OVER_LIMIT),
        lambda account, search: UserFilter(account, search, UserStatus.LICENSED),
        lambda account, search: AgentFilter(account, search),
    ],
    ids=["pending", "users", "agents"],
)
def test_a_filter_of_the_same_shape_reuses_the_built_conditions(make) -> None:  # type: ignore[no-untyped-def]
    first = make(7, "ada lovelace").bound()
    # Another account and another term of the same kind (three characters or more): nothing rebuilt.
    for same_shape in (make(7, "ada lovelace"), make(8, "grace hopper")):
        again = same_shape.bound()
        assert again.shape == first.shape and [id(c) for c in again.where] == [id(c) for c in first.where]
    # A short term, no term: other shapes, other conditions.
    for other in (make(7, "ad"), make(7, None)):
        bound = other.bound()
        assert bound.shape != first.shape
        assert not {id(c) for c in bound.where} & {id(c) for c in first.where}
    # Each filter's own values, and only those, in what runs.
    for filt in (make(7, "ada lovelace"), make(8, "grace hopper"), make(9, "ad"), make(9, None)):
        sql = _sql(filt.bound())
        others = {a for a in (7, 8, 9) if a != filt.account_id}
        assert f"account_id = {filt.account_id}" in sql
        assert not any(f"account_id = {a}" in sql for a in others)
        if filt.search is not None:
            assert f"%{filt.search}%" in sql
        for term in ("ada lovelace", "grace hopper", "%ad%"):
            assert (term in sql) == (filt.search is not None and term.strip("%") == filt.search), (term, sql)


def test_a_filters_optional_values_are_its_own() -> None:
    assert "MANUAL_REVIEW" in _sql(PendingFilter(1, None, PendingReason.MANUAL_REVIEW).bound())
    assert "OVER_LIMIT" in _sql(PendingFilter(1, None, PendingReason.OVER_LIMIT).bound())
    assert "LICENSED" in _sql(UserFilter(1, "x", UserStatus.LICENSED).bound())
    assert "PENDING" in _sql(UserFilter(1, "x", UserStatus.PENDING).bound())


def test_a_refused_search_is_refused_every_time() -> None:
    for _ in range(2):
        with pytest.raises(DomainError):
            PendingFilter(1, "x" * 257).bound()
