"""The Webhooks tab's dialogs: adding or editing a webhook, and a new secret shown once."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, RadioButton, RadioSet, Static

from tui_client import format as fmt
from tui_client import safe
from tui_client.types import QueueAction
from tui_client.webhooks_api import Webhook, WebhookFormat

ACTIONS = (
    QueueAction.ENTERED,
    QueueAction.APPROVED,
    QueueAction.ASSIGNED,
    QueueAction.MERGED,
    QueueAction.REMOVED,
)

_DIALOG_CSS = """
WebhookForm, SecretScreen { align: center middle; background: $background 60%; }
WebhookForm .actions { height: auto; layout: grid; grid-size: 3; }
WebhookForm Checkbox { width: 1fr; }
SecretScreen #secret { border: tall $success; }
"""


@dataclass(frozen=True)
class WebhookInput:
    """What the form asks for; ``actions`` empty means every action, including later ones."""

    url: str
    format: WebhookFormat
    actions: tuple[QueueAction, ...]
    enabled: bool = True


class WebhookForm(ModalScreen[WebhookInput | None]):
    """Add (``webhook`` None) or edit a webhook. Dismisses with the input, or None."""

    DEFAULT_CSS = _DIALOG_CSS
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, webhook: Webhook | None = None) -> None:
        super().__init__()
        self.webhook = webhook

    def compose(self) -> ComposeResult:
        hook = self.webhook
        every = hook is None or set(hook.actions) >= set(ACTIONS)
        with Vertical(classes="dialog"):
            yield Label("Add a webhook" if hook is None else f"Edit webhook {hook.id}", classes="title")
            yield Input(hook.url if hook else "", placeholder="https://…", id="url")
            if hook is None:
                with RadioSet(id="format"):
                    yield RadioButton("Standard Webhooks (signed JSON)", value=True, id="standard")
                    yield RadioButton("Slack incoming webhook", id="slack")
            yield Static("Actions (none checked: every action, including future ones)", classes="body")
            with Horizontal(classes="actions"):
                for action in ACTIONS:
                    checked = not every and hook is not None and action in hook.actions
                    yield Checkbox(fmt.action(action), checked, id=f"action-{action.value.lower()}")
            if hook is not None:
                yield Checkbox("Enabled", hook.enabled, id="enabled")
            with Horizontal(classes="buttons"):
                yield Button("Save", variant="primary", id="save")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#url", Input).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def _input(self) -> WebhookInput:
        slack = self.webhook is None and self.query_one("#slack", RadioButton).value
        fmt_ = (
            WebhookFormat.SLACK
            if slack
            else (self.webhook.format if self.webhook else WebhookFormat.STANDARD)
        )
        chosen = tuple(a for a in ACTIONS if self.query_one(f"#action-{a.value.lower()}", Checkbox).value)
        enabled = self.query_one("#enabled", Checkbox).value if self.webhook is not None else True
        return WebhookInput(self.query_one("#url", Input).value.strip(), fmt_, chosen, enabled)

    @on(Input.Submitted, "#url")
    def _submitted(self) -> None:
        self.dismiss(self._input())

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(self._input() if event.button.id == "save" else None)


class SecretScreen(ModalScreen[None]):
    """A signing secret, shown this once: copy it now (``c``), or select it in the field."""

    DEFAULT_CSS = _DIALOG_CSS
    BINDINGS = [Binding("c", "copy", "Copy"), Binding("escape,enter", "close", "Done")]

    def __init__(self, webhook_id: str, secret: str, *, rotated: bool = False) -> None:
        super().__init__()
        self.webhook_id, self.secret, self.rotated = webhook_id, secret, rotated

    def compose(self) -> ComposeResult:
        grace = (
            " The previous secret keeps signing beside it for 24 hours, so receivers can switch over."
            if self.rotated
            else ""
        )
        with Vertical(classes="dialog"):
            yield Label(f"Signing secret of webhook {safe.clean(self.webhook_id)}", classes="title")
            yield Static(
                "Copy it now: it is shown only this once. Press c to copy it to the clipboard "
                "(if your terminal allows), or select it below." + grace,
                classes="body",
            )
            yield Input(self.secret, id="secret")
            with Horizontal(classes="buttons"):
                yield Button("Copy", variant="primary", id="copy")
                yield Button("Done", id="done")

    def on_mount(self) -> None:
        self.query_one("#copy", Button).focus()

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.secret)
        self.notify("Secret copied to the clipboard.", timeout=3)

    def action_close(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "copy":
            self.action_copy()
        else:
            self.dismiss(None)
