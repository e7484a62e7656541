"""Messages the workers post: results travel to widgets as messages, never as shared state."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from tui_client.types import Account, QueueEvent


@dataclass
class QueueEventReceived(Message):
    """One ``pendingQueueChanged`` event from the live subscription."""

    event: QueueEvent


@dataclass
class AccountChanged(Message):
    """Fresh license usage, from a query, a mutation payload or an event."""

    account: Account


@dataclass
class ConnectionChanged(Message):
    """The live connection's state: connecting, live, offline or degraded."""

    state: str
    detail: str = ""


@dataclass
class CaughtUp(Message):
    """The live connection is (re)established: views re-query so they miss nothing."""
