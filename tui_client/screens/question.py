"""A yes-or-no question with what the answer would do: a release, a swap.

The body is a content object the caller built from plain parts (:mod:`tui_client.safe`), so
names in it are never markup.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from tui_client import safe


class Question(ModalScreen[bool]):
    """Dismisses with True (``y`` or the confirm button) or False (``n``, escape, cancel)."""

    BINDINGS = [
        Binding("escape,n", "answer(False)", "Cancel"),
        Binding("y", "answer(True)", "Confirm"),
    ]

    def __init__(self, title: str, body: Content, *, confirm: str) -> None:
        super().__init__()
        self.heading, self.body, self.confirm = title, body, confirm

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog plan"):
            yield Label(safe.plain(self.heading), classes="title")
            with VerticalScroll(id="question-scroll"):
                yield Static(self.body, id="question-body")
            with Horizontal(classes="buttons"):
                yield Button(self.confirm, variant="primary", id="confirm")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#confirm", Button).focus()

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm")
