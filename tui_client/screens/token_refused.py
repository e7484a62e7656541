"""Shown once the server refuses the client's token: no reconnecting, no retrying, just why."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Static

REVOKED = "Your token was revoked"
REFUSED = "The server does not accept this token"
WHAT_NOW = (
    "The server no longer accepts the API token this client was started with: an operator "
    "revoked or rotated it. Nothing more is sent with it.\n\n"
    "Ask an operator for a new token (plm admin rotate-token), then start the client again "
    "with --token or PLM_TOKEN.\n\nPress q to quit."
)


class TokenRefusedScreen(Screen[None]):
    """Covers every tab: the client cannot do anything more with its token."""

    BINDINGS = [Binding("q", "app.quit", "Quit")]
    DEFAULT_CSS = """
    TokenRefusedScreen { align: center middle; }
    TokenRefusedScreen > Vertical { width: 72; height: auto; border: heavy $error; padding: 1 2; }
    TokenRefusedScreen #title { text-style: bold; color: $error; margin-bottom: 1; }
    """

    def __init__(self, was_signed_in: bool) -> None:
        super().__init__()
        self.title_text = REVOKED if was_signed_in else REFUSED

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.title_text, id="title", markup=False)
            yield Static(WHAT_NOW, id="what-now", markup=False)
