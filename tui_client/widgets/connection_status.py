"""The connection indicator: live, connecting, offline (with the next retry), degraded."""

from __future__ import annotations

from textual.reactive import reactive
from textual.widgets import Static

from tui_client.messages import ConnectionState

_LABELS = {
    ConnectionState.CONNECTING: "◌ connecting…",
    ConnectionState.LIVE: "● live",
    ConnectionState.OFFLINE: "✕ offline",
    ConnectionState.DEGRADED: "◐ no live updates",
}


class ConnectionStatus(Static):
    """Shows the state of the live connection; the app sets ``state`` and ``detail``."""

    state: reactive[ConnectionState] = reactive(ConnectionState.CONNECTING)
    detail: reactive[str] = reactive("")

    def render(self) -> str:
        return f"{_LABELS[self.state]} {self.detail}".rstrip()

    def watch_state(self, old: ConnectionState, new: ConnectionState) -> None:
        self.remove_class(f"-{old}")
        self.add_class(f"-{new}")

    def on_mount(self) -> None:
        self.add_class(f"-{self.state}")
