"""Confirmation dialogs: a yes/no question with what the answer does (a release, a swap, a
webhook's deletion), and removal with its do-not-track choice (approvals and settings show a
plan: :mod:`tui_client.screens.plan`)."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Label, Static

from tui_client import format as fmt
from tui_client import safe

SHOWN_NAMES = 8


class ConfirmScreen(ModalScreen[bool]):
    """Dismisses with True (``y`` or the yes button) or False (``n``, escape, cancel).

    ``body`` is plain text (a question may name anything), or a content object its caller
    built from plain parts (:mod:`tui_client.safe`), never markup.
    """

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, title: str, body: str | Content, yes: str = "Yes") -> None:
        super().__init__()
        self.heading, self.yes = title, yes
        self.body = body if isinstance(body, Content) else Content(safe.clean(body, multiline=True))

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(safe.plain(self.heading), classes="title")
            with VerticalScroll(id="confirm-scroll"):
                yield Static(self.body, classes="body")
            with Horizontal(classes="buttons"):
                yield Button(self.yes, variant="primary", id="yes")
                yield Button("Cancel", id="no")

    def on_mount(self) -> None:
        self.query_one("#yes", Button).focus()

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)

    @on(Button.Pressed, "#yes, #no")
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class ConfirmRemove(ModalScreen[bool | None]):
    """Dismisses with the do-not-track choice (checked by default), or None when cancelled."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("d", "toggle_dnt", "Do not track"),
    ]

    def __init__(self, names: list[str]) -> None:
        super().__init__()
        self.names = names

    def compose(self) -> ComposeResult:
        shown = ", ".join(self.names[:SHOWN_NAMES])
        if len(self.names) > SHOWN_NAMES:
            shown += f" and {len(self.names) - SHOWN_NAMES:,} more"
        with Vertical(classes="dialog"):
            yield Label(f"Remove {fmt.plural(len(self.names), 'user')}?", classes="title")
            yield Static(
                Content.assemble(
                    safe.plain(shown),
                    "\n\nTheir devices and all their activity go; a licensed user's license is "
                    "freed. Until the server's undo window ends, u (right after) or the Audit log undoes it.",
                ),
                classes="body",
            )
            yield Checkbox("Do not track: ignore future reports from their devices", True, id="dnt")
            with Horizontal(classes="buttons"):
                yield Button("Remove", variant="error", id="remove")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#remove", Button).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_toggle_dnt(self) -> None:
        box = self.query_one("#dnt", Checkbox)
        box.value = not box.value

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "remove":
            self.dismiss(self.query_one("#dnt", Checkbox).value)
        else:
            self.dismiss(None)
