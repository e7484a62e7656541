"""The connection indicator: live, connecting, offline (with the next retry), degraded."""

from __future__ import annotations

from textual.reactive import reactive
from textual.widgets import Static

_LABELS = {
    "connecting": "◌ connecting…",
    "live": "● live",
    "offline": "✕ offline",
    "degraded": "◐ no live updates",
}


class ConnectionStatus(Static):
    """Shows the state of the live connection; the app sets ``state`` and ``detail``."""

    state: reactive[str] = reactive("connecting")
    detail: reactive[str] = reactive("")

    def render(self) -> str:
        label = _LABELS.get(self.state, self.state)
        return f"{label} {self.detail}".rstrip()

    def watch_state(self, old: str, new: str) -> None:
        self.remove_class(f"-{old}")
        self.add_class(f"-{new}")

    def on_mount(self) -> None:
        self.add_class(f"-{self.state}")
