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
    # Seconds the client waits because the server answered 429 (0: not slowed down).
    slowdown: reactive[int] = reactive(0)

    def render(self) -> str:
        text = f"{_LABELS[self.state]} {self.detail}".rstrip()
        if self.slowdown:
            text += f" · slowing down, retrying in {self.slowdown} s"
        return text

    def watch_state(self, old: ConnectionState, new: ConnectionState) -> None:
        self.remove_class(f"-{old}")
        self.add_class(f"-{new}")

    def on_mount(self) -> None:
        self.add_class(f"-{self.state}")
