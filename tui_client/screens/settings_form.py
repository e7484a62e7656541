"""The Settings tab: manual review, the auto-approval rule and its domains, the queue target
and the license limit, in one form that shows its plan before anything changes.

The form is filled from the account as last read and follows it while the admin has not
edited it. Reviewing (enter in a field, ctrl+s or the button) reads what differs
(:func:`tui_client.settings_change.read_form`) and asks the server for the plan
(``previewAccountSettings``): who the rule would approve, in order, who a lower limit would
move, the usage before and after. A domain the server refuses (``INVALID_INPUT``) is said
under the form, and the field gets the focus. Otherwise the plan is shown
(:class:`~tui_client.screens.plan.PlanScreen`) and, confirmed, applied with its
``queueVersion``; a queue that changed in between shows the fresh plan (``PLAN_CHANGED``).
"""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Button, Input, Label, RadioButton, RadioSet, Static

from tui_client import safe
from tui_client.api import ApiError
from tui_client.messages import AccountChanged
from tui_client.screens.base import ApiView
from tui_client.screens.plan import preview_then_apply
from tui_client.settings_change import FormError, FormValues, SettingsChange, read_form
from tui_client.types import Account, AutoApproveMode, ErrorCode, SeatPlan

# Where a problem is: the form's names and the server's (a UserError's ``field``).
FIELDS = {
    "manual_review": "#set-review",
    "auto_approve": "#set-auto",
    "autoApproveDomains": "#set-domains",
    "queue_target": "#set-target",
    "queueTargetHours": "#set-target",
    "license_limit": "#set-limit",
    "licenseLimit": "#set-limit",
}
HINTS = {
    "review": "Every newcomer waits for an admin, even while licenses are free.",
    "auto": "Oldest first: whenever licenses are free, the oldest over-limit and released users "
    "take them, in the same transaction. Users held for manual review always wait for an admin.",
    "domains": "Only users with an agent in one of these domains (comma or space separated; a "
    "local account's domain is its device name). Empty: every domain.",
    "target": "Hours a pending user may wait before the queue shows it overdue. Empty or 0: no target.",
    "limit": "Licenses purchased. A lower limit moves the most recently licensed to the queue.",
}
RULE_APPROVES = (
    "The rule approves the users below now, oldest first, and keeps doing so whenever licenses free up."
)


def _choice(set_id: str, **labels: tuple[str, str]) -> RadioSet:
    """Two choices on one line: ``{name}-0`` (off) and ``{name}-1`` (on)."""
    ((name, (off, on)),) = labels.items()
    return RadioSet(
        RadioButton(off, id=f"{name}-0"), RadioButton(on, id=f"{name}-1"), id=set_id, compact=True
    )


class SettingsView(ApiView):
    BINDINGS = [
        Binding("ctrl+s", "review", "Review the change"),
        Binding("escape", "reset", "Reset", show=False),
    ]

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        #: The account the form was filled from; None until one is read.
        self.base: Account | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="settings-form"):
            yield Label("Account settings", classes="title")
            yield from self._field("Manual review", _choice("set-review", review=("Off", "On")), "review")
            yield from self._field("Auto-approval", _choice("set-auto", auto=("Off", "Oldest first")), "auto")
            yield from self._field(
                "Rule domains", Input(placeholder="any domain", id="set-domains", compact=True), "domains"
            )
            yield from self._field(
                "Queue target (h)",
                Input(placeholder="none", type="integer", id="set-target", compact=True),
                "target",
            )
            yield from self._field(
                "License limit", Input(type="integer", id="set-limit", compact=True), "limit"
            )
            with Horizontal(classes="buttons settings-buttons"):
                yield Button("Review the change", variant="primary", id="settings-review", compact=True)
                yield Button("Reset", id="settings-reset", compact=True)
            yield Static("", id="settings-message")
        yield Static(
            "tab moves between fields · enter or ctrl+s shows the plan · esc resets the form",
            id="settings-info",
            classes="status-line",
        )

    @staticmethod
    def _field(label: str, widget: Widget, hint: str) -> ComposeResult:
        with Horizontal(classes="settings-field"):
            yield Label(label, classes="settings-label")
            yield widget
        yield Static(HINTS[hint], classes="hint settings-hint")

    # ------------------------------------------------------------------ the form's values

    def values(self) -> FormValues:
        """What the form holds now."""
        oldest = self.query_one("#auto-1", RadioButton).value
        return FormValues(
            license_limit=self.query_one("#set-limit", Input).value,
            manual_review=self.query_one("#review-1", RadioButton).value,
            auto_approve=AutoApproveMode.OLDEST_FIRST if oldest else AutoApproveMode.OFF,
            domains=self.query_one("#set-domains", Input).value,
            queue_target=self.query_one("#set-target", Input).value,
        )

    def fill(self, account: Account) -> None:
        """Show the account's settings (the admin's edits, if any, are dropped)."""
        self.base = account
        values = FormValues.of(account)
        self.query_one("#set-limit", Input).value = values.license_limit
        self.query_one(f"#review-{int(values.manual_review)}", RadioButton).value = True
        oldest = values.auto_approve is AutoApproveMode.OLDEST_FIRST
        self.query_one(f"#auto-{int(oldest)}", RadioButton).value = True
        self.query_one("#set-domains", Input).value = values.domains
        self.query_one("#set-target", Input).value = values.queue_target
        can_act = self.admin_app.can_act
        for widget in self.query("Input, RadioSet, #settings-review"):
            widget.disabled = not can_act
        if not can_act:
            self.say("Viewers can read the settings but not change them.")

    @property
    def edited(self) -> bool:
        return self.base is not None and self.values() != FormValues.of(self.base)

    def show_account(self, account: Account) -> None:
        """The account as read now: the form follows it unless the admin is editing."""
        if not self.is_mounted:
            return
        if self.base is None or not self.edited or self._matches(account):
            self.fill(account)

    def _matches(self, account: Account) -> bool:
        try:
            return not read_form(self.values(), account)
        except FormError:
            return False

    def shown(self) -> None:
        super().shown()
        account = self.admin_app.account
        if account is not None:
            self.show_account(account)
        focused = self.app.focused
        if focused is None or self not in focused.ancestors:
            self.query_one("#set-review", RadioSet).focus()

    def say(self, text: str, *, error: bool = False) -> None:
        """A line under the form: what happened, or what to correct."""
        shown = safe.styled((text, "b $error")) if error else Content(safe.clean(text, multiline=True))
        self.query_one("#settings-message", Static).update(shown)

    # ------------------------------------------------------------------ review and apply

    @on(Input.Submitted)
    @on(Button.Pressed, "#settings-review")
    def action_review(self) -> None:
        account = self.admin_app.account
        if account is None or not self.admin_app.can_act:
            return
        try:
            change = read_form(self.values(), account)
        except FormError as exc:
            self.say(exc.message, error=True)
            self.query_one(FIELDS[exc.field]).focus()
            return
        if not change:
            self.say("Nothing to change: the form shows the settings as they are.")
            return
        self.say("Asking the server for the plan…")
        self._review(change, account)

    @on(Button.Pressed, "#settings-reset")
    def action_reset(self) -> None:
        account = self.admin_app.account
        if account is not None:
            self.fill(account)
            self.say("")

    @work(exclusive=True, group="settings-form", exit_on_error=False)
    async def _review(self, change: SettingsChange, account: Account) -> None:
        api = self.api
        try:
            first: SeatPlan | None = await api.preview_settings(change)
        except ApiError as exc:
            self.say(exc.message, error=True)
            return
        assert first is not None
        refused = [e for e in first.errors if e.code == ErrorCode.INVALID_INPUT]
        if refused:
            self.say("; ".join(e.message for e in refused), error=True)
            self.query_one(FIELDS.get(refused[0].field or "", "#set-domains")).focus()
            return

        async def preview() -> SeatPlan:
            nonlocal first
            plan, first = first, None  # the plan already read, then a fresh one each time
            return plan if plan is not None else await api.preview_settings(change)

        lines = change.describe(account)
        if change.auto_approve is AutoApproveMode.OLDEST_FIRST:
            lines.append(RULE_APPROVES)
        try:
            updated = await preview_then_apply(
                self.app,
                "Apply these settings?",
                preview,
                lambda version: api.update_settings(change, version),
                confirm="Apply",
                body="\n".join(lines),
            )
        except ApiError as exc:
            self.say(f"Nothing changed: {exc.message}", error=True)
            return
        if updated is None:
            self.say("Nothing changed: the plan was cancelled.")
            return
        self.post_message(AccountChanged(updated))
        self.fill(updated)
        self.say("Saved: " + "; ".join(change.describe(account)))
        self.notify("The account's settings are saved.", title="Settings saved")
