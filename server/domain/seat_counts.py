"""An account's licensed and pending users, remembered between admissions.

Admission decides with the number of licensed users, and a ``COUNT`` over the account's
users takes time in their number: 0.7 ms at 12,000 users, once per group commit, and ten
times that at 100,000. Every write that changes who is licensed or pending bumps the
account's ``plan_version`` (:func:`server.domain.changes.finish`; seat plans rely on the same
promise), so counts remembered with the ``plan_version`` they were true at still hold while
the version is unchanged, whichever process or connection wrote since. Counts are
remembered per database (its engine) and only once the transaction that made them has
committed (not at a savepoint): a rolled-back transaction's version may be taken again by
another write. A database restored to an older copy under a running server takes its
versions back too: restart the server after a restore.

The read side uses them too: the queue's ``totalCount`` is the account's pending users, a
``COUNT`` of 0.4 ms at 10,000 pending users (4 ms at 100,000) on every page. A read-only
session's snapshot holds committed rows only, so what it counts is true at the
``plan_version`` it reads, and is remembered as a commit's counts are (:func:`counted`).
"""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from server.domain.models import Account, User, UserStatus

# Per engine: account id -> (plan_version, (licensed, pending)).
Remembered = dict[int, tuple[int, tuple[int, int]]]
_COMMITTED: WeakKeyDictionary[Any, Remembered] = WeakKeyDictionary()
# In a session's ``info``: what its transaction will make true once it commits.
_PENDING = "plm.seat_counts"
# In a read-only session's ``info`` (server.infra.db sets it): its snapshot is committed rows.
READ_ONLY = "plm.read_only"

_USER = sa.inspect(User).local_table
_ACCOUNT = sa.inspect(Account).local_table
_VERSION = sa.select(_ACCOUNT.c.plan_version).where(_ACCOUNT.c.id == sa.bindparam("account_id"))
_STATUS_COUNTS = (
    sa.select(_USER.c.status, sa.func.count())
    .where(_USER.c.account_id == sa.bindparam("account_id"))
    .group_by(_USER.c.status)
)


def _engine(session: Session) -> Any:
    bind = session.get_bind()
    return getattr(bind, "engine", bind)


def known(session: AsyncSession, account: Account) -> tuple[int, int] | None:
    """The account's (licensed, pending) users at its ``plan_version`` as read in this
    transaction, if remembered; else ``None``: count them."""
    assert account.id is not None
    return _remembered(session, account.id, account.plan_version)


def _remembered(session: AsyncSession, account_id: int, version: int) -> tuple[int, int] | None:
    """The counts remembered for the account at ``version``: this transaction's own (once it
    commits), else the committed ones of the session's database."""
    for remembered in (session.info.get(_PENDING), _COMMITTED.get(_engine(session.sync_session))):
        found = remembered.get(account_id) if remembered else None
        if found is not None and found[0] == version:
            return found[1]
    return None


def remember(session: AsyncSession, account: Account, counts: tuple[int, int]) -> None:
    """``counts`` are the account's at its current ``plan_version`` once this transaction commits."""
    assert account.id is not None
    session.info.setdefault(_PENDING, {})[account.id] = (account.plan_version, counts)


async def counted(session: AsyncSession, account_id: int) -> tuple[int, int]:
    """The account's (licensed, pending) users as this session's transaction sees them:
    remembered at the ``plan_version`` it reads (one row by its key), else counted. Counts
    from a read-only session (:data:`READ_ONLY`) are remembered at once: committed rows.
    The version is read here, in the same snapshot as any count, never taken from an
    ``Account`` read elsewhere (a subscription's, a websocket's: older than this snapshot)."""
    version = (await session.execute(_VERSION, {"account_id": account_id})).scalar_one()
    found = _remembered(session, account_id, version)
    if found is not None:
        return found
    rows = (await session.execute(_STATUS_COUNTS, {"account_id": account_id})).all()
    by_status = {UserStatus(status): int(n) for status, n in rows}
    counts = (by_status.get(UserStatus.LICENSED, 0), by_status.get(UserStatus.PENDING, 0))
    if session.info.get(READ_ONLY):
        _COMMITTED.setdefault(_engine(session.sync_session), {})[account_id] = (version, counts)
    return counts


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released: the transaction may still roll back
    pending: Remembered | None = session.info.pop(_PENDING, None)
    if pending:
        _COMMITTED.setdefault(_engine(session), {}).update(pending)


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(_PENDING, None)


@event.listens_for(Session, "after_transaction_end")
def _ended(session: Session, transaction: SessionTransaction) -> None:
    # However the transaction ended (a failed rollback, a close): nothing it made is kept.
    if transaction.parent is None:
        session.info.pop(_PENDING, None)
