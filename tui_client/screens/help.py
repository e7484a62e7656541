"""The keys, in one dialog."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from tui_client import format as fmt
from tui_client.reclaim_list import DAYS

KEYS = [
    (
        "Everywhere",
        [
            ("1 … 7", "Tabs: Pending · Users · Audit · Metrics · Webhooks · Reclaim · Settings"),
            ("t", "Toggle manual review (shows the plan first)"),
            ("l", "Change the license limit (plan first: who moves to the queue)"),
            ("u", "Undo the last action, right after it (its notification says so)"),
            ("?", "This help"),
            ("q", "Quit"),
        ],
    ),
    (
        "Pending licenses",
        [
            ("↑ ↓ PgUp PgDn", "Move; more rows load as you near the end"),
            ("enter", "Open / close the detail pane (open from 160 columns on)"),
            ("space", "Select / unselect the row (multi-select)"),
            ("ctrl+a", "Select all loaded rows (up to 500) / unselect them"),
            ("a", "Approve the row; a selection after its plan (order, usage)"),
            ("s", "Assign the user's devices to an existing user (searchable picker)"),
            ("m", "Merge the user into an existing agent (searchable picker)"),
            ("x / delete", "Remove the row or the selection (asks; do-not-track checked)"),
            ("y", "Accept the likely match (assign or merge) of the row, or of every selected row"),
            ("w", "Show all likely matches with the server's reasons; enter accepts one"),
            ("/", "Filter by name, logon or device (esc clears)"),
            ("f", f"Cycle the reason filter: all · {' · '.join(fmt.REASONS.values())}"),
            ("esc", "Clear the selection or the filter"),
            ("red, !", "Waited past the queue target (7 Settings); the detail pane says when it was due"),
        ],
    ),
    (
        "Users",
        [
            ("/", "Search"),
            ("f", "Cycle status: all · licensed · pending"),
            ("enter", "Open / close the detail pane"),
        ],
    ),
    (
        "Audit log",
        [
            ("space", "Select / unselect the entry"),
            ("u", "Undo the entry or the selection (asks first; all or nothing)"),
        ],
    ),
    ("Queue metrics", [("d", "Cycle the period: 7 · 30 · 90 · 365 days")]),
    ("Webhooks", [("a e x", "Add · edit · delete"), ("r s g", "Rotate the secret · send a test · reload")]),
    (
        "Reclaim: licensed users idle longest first",
        [
            ("d", f"Cycle the idle days: {' · '.join(map(str, DAYS))}"),
            ("space / ctrl+a", "Select the row / select all loaded rows"),
            ("r", "Release the row or the selection to the queue (asks, with the usage after; u undoes)"),
            ("s", "Swap: give the row's license to a pending user (picker, then the plan)"),
            ("enter", "Open / close the detail pane"),
        ],
    ),
    (
        "Settings",
        [
            ("tab / shift+tab", "Move between fields; ← → then space picks an option"),
            (
                "enter / ctrl+s",
                "Show the plan of the change (who the rule approves, who moves); y applies it",
            ),
            ("esc", "Put the form back as the settings are"),
        ],
    ),
]


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog help"):
            yield Label("Keys", classes="title")
            with VerticalScroll(id="help-keys"):
                for section, keys in KEYS:
                    yield Label(section, classes="section")
                    yield Static("\n".join(f"  [b]{k:<16}[/] {what}" for k, what in keys))
            yield Static("esc closes · ↑ ↓ scroll", classes="hint")

    def action_close(self) -> None:
        self.dismiss(None)
