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
"""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from server.domain.models import Account

# Per engine: account id -> (plan_version, (licensed, pending)).
Remembered = dict[int, tuple[int, tuple[int, int]]]
_COMMITTED: WeakKeyDictionary[Any, Remembered] = WeakKeyDictionary()
# In a session's ``info``: what its transaction will make true once it commits.
_PENDING = "plm.seat_counts"


def _engine(session: Session) -> Any:
    bind = session.get_bind()
    return getattr(bind, "engine", bind)


def known(session: AsyncSession, account: Account) -> tuple[int, int] | None:
    """The account's (licensed, pending) users at its ``plan_version`` as read in this
    transaction, if remembered; else ``None``: count them."""
    assert account.id is not None
    for remembered in (session.info.get(_PENDING), _COMMITTED.get(_engine(session.sync_session))):
        found = remembered.get(account.id) if remembered else None
        if found is not None and found[0] == account.plan_version:
            return found[1]
    return None


def remember(session: AsyncSession, account: Account, counts: tuple[int, int]) -> None:
    """``counts`` are the account's at its current ``plan_version`` once this transaction commits."""
    assert account.id is not None
    session.info.setdefault(_PENDING, {})[account.id] = (account.plan_version, counts)


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
