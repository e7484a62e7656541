"""Messages the workers post: results travel to widgets as messages, never as shared state."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from textual.message import Message

from tui_client.types import Account, QueueEvent


class ConnectionState(StrEnum):
    """The live connection: connecting, live, offline, or degraded (the server refused the
    subscription; queries still work)."""

    CONNECTING = "connecting"
    LIVE = "live"
    OFFLINE = "offline"
    DEGRADED = "degraded"


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
    """The live connection's state changed."""

    state: ConnectionState
    detail: str = ""


@dataclass
class CaughtUp(Message):
    """The live connection is (re)established: views re-query so they miss nothing."""
