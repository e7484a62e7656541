"""Asking before the Audit tab undoes entries: what each entry did, and until when it can be undone."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from tui_client import format as fmt
from tui_client import safe
from tui_client.types import AuditEntry

SHOWN = 8


class ConfirmUndo(ModalScreen[bool]):
    """Dismisses with True (undo them all) or False (cancel)."""

    BINDINGS = [
        Binding("y", "answer(True)", "Undo"),
        Binding("n,escape", "answer(False)", "Cancel"),
    ]

    def __init__(self, entries: Sequence[AuditEntry], tz: tzinfo | None) -> None:
        super().__init__()
        self.entries, self.tz = list(entries), tz

    def compose(self) -> ComposeResult:
        lines = [
            f"{fmt.action(e.action)} {safe.clean(e.user_display_name)} · undoable until "
            f"{fmt.when(e.undoable_until, self.tz)}"
            for e in self.entries[:SHOWN]
        ]
        if len(self.entries) > SHOWN:
            lines.append(f"and {len(self.entries) - SHOWN:,} more")
        with Vertical(classes="dialog"):
            n = len(self.entries)
            yield Label(f"Undo {n:,} {'entry' if n == 1 else 'entries'}?", classes="title")
            yield Static(
                Content.assemble(
                    safe.plain("\n".join(lines)),
                    "\n\nAll or nothing: each user comes back as it was before, with its devices "
                    "and activity. If one can no longer be undone, nothing is.",
                ),
                classes="body",
            )
            with Horizontal(classes="buttons"):
                yield Button("Undo", variant="warning", id="yes")
                yield Button("Cancel", id="no")

    def on_mount(self) -> None:
        self.query_one("#yes", Button).focus()

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")
