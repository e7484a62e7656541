"""What the read side loads of users and agents: frozen rows, and the fields it shows.

Lists and batch loads of users and agents are SQLAlchemy Core selects of the table columns,
returned as :class:`UserRow` / :class:`AgentRow` records (frozen, :mod:`server.domain.records`): the read side never changes a row,
and an ORM load (identity map, instance state, SQLModel's ``__new__``) cost several times the
query itself on a 50-row page. Conditions are written against ``Table.c`` rather than the ORM
attributes for the same reason: an ORM attribute anywhere in a statement routes its execution
through the ORM's compile and result machinery.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa

from server.domain.models import Agent, PendingReason, User, UserStatus
from server.domain.records import record

# The tables, for Core statements (see the module docstring).
USER, AGENT = (sa.inspect(m).local_table for m in (User, Agent))


class UserFields(Protocol):
    """What the read side shows of a user: a :class:`UserRow`, or a :class:`User` a write returned."""

    @property
    def id(self) -> int | None: ...
    @property
    def display_name(self) -> str: ...
    @property
    def status(self) -> UserStatus: ...
    @property
    def first_seen_at(self) -> datetime: ...
    @property
    def last_seen_at(self) -> datetime: ...
    @property
    def licensed_at(self) -> datetime | None: ...
    @property
    def pending_reason(self) -> PendingReason | None: ...
    @property
    def pending_since(self) -> datetime | None: ...


class AgentFields(Protocol):
    """What the read side shows of an agent: an :class:`AgentRow`, or an :class:`Agent`."""

    @property
    def id(self) -> int | None: ...
    @property
    def user_id(self) -> int: ...
    @property
    def device_name(self) -> str: ...
    @property
    def domain(self) -> str: ...
    @property
    def logon_name(self) -> str: ...
    @property
    def first_seen_at(self) -> datetime: ...
    @property
    def last_seen_at(self) -> datetime: ...


@record
class UserRow:
    """A ``user`` row as the read side loads it (Core, no ORM instance)."""

    id: int
    account_id: int
    display_name: str
    status: UserStatus
    first_seen_at: datetime
    last_seen_at: datetime
    licensed_at: datetime | None
    pending_reason: PendingReason | None
    pending_since: datetime | None


@record
class AgentRow:
    """An ``agent`` row as the read side loads it (without its normalised keys)."""

    id: int
    account_id: int
    user_id: int
    device_name: str
    domain: str
    logon_name: str
    first_seen_at: datetime
    last_seen_at: datetime


# Selected in the dataclasses' field order, so a result row unpacks straight into one.
USER_COLUMNS = tuple(USER.c[f.name] for f in fields(UserRow))
AGENT_COLUMNS = tuple(AGENT.c[f.name] for f in fields(AgentRow))


def user_row(row: Sequence[Any]) -> UserRow:
    return UserRow(*row[: len(USER_COLUMNS)])


def agent_row(row: Sequence[Any]) -> AgentRow:
    return AgentRow(*row[: len(AGENT_COLUMNS)])
