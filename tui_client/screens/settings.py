"""The account's settings from the client: manual review and the license limit, plan first.

Both keys work on every tab. Each asks the server what the change would do
(``previewAccountSettings``), shows it (:class:`~tui_client.screens.plan.PlanScreen`), and
applies exactly that plan; a lowered limit lists who would move to the queue.
"""

from __future__ import annotations

from typing import Any, cast

from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from tui_client.api import ApiError
from tui_client.messages import AccountChanged
from tui_client.screens.base import ClientApp
from tui_client.screens.plan import preview_then_apply
from tui_client.settings_change import MAX_LIMIT, SettingsChange

REVIEW_ON = "Every new user will wait in the queue for an admin, even while licenses are free."
REVIEW_OFF = (
    "New users will take a free license automatically again. Nobody already waiting is approved "
    "by this: the queue stays as it is."
)


class LimitScreen(ModalScreen[int | None]):
    """Asks for a new license limit; dismisses with it, or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, current: int) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Change the license limit", classes="title")
            yield Input(str(self.current), type="integer", id="limit-input")
            yield Static(
                f"Now {self.current:,}. Enter shows what the change would do; nothing changes yet.",
                id="limit-hint",
                classes="hint",
            )

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text.isdecimal() or int(text) > MAX_LIMIT:
            self.query_one("#limit-hint", Static).update(
                f"A limit is a whole number from 0 to {MAX_LIMIT:,}."
            )
            return
        self.dismiss(int(text))

    def action_cancel(self) -> None:
        self.dismiss(None)


def toggle_review(app: App[Any]) -> None:
    """``t``: turn manual review on or off, the plan shown first."""
    account = cast(ClientApp, app).account
    if account is None:
        app.notify("Still loading the account.", severity="warning")
        return
    on = not account.manual_review
    state = "on" if on else "off"
    change = _change(
        app,
        f"Turn manual review {state}?",
        SettingsChange(manual_review=on),
        confirm=f"Turn {state}",
        body=REVIEW_ON if on else REVIEW_OFF,
        done=f"Manual review is {state}.",
    )
    app.run_worker(change, group="settings", exit_on_error=False)


def change_limit(app: App[Any]) -> None:
    """``l``: ask for a new license limit, then show the plan (who a lower one moves to the queue)."""
    account = cast(ClientApp, app).account
    if account is None:
        app.notify("Still loading the account.", severity="warning")
        return

    def entered(limit: int | None) -> None:
        if limit is None or limit == account.license_limit:
            return
        change = _change(
            app,
            f"Change the license limit from {account.license_limit:,} to {limit:,}?",
            SettingsChange(license_limit=limit),
            confirm="Change the limit",
            done=f"The license limit is {limit:,}.",
        )
        app.run_worker(change, group="settings", exit_on_error=False)

    app.push_screen(LimitScreen(account.license_limit), entered)


async def _change(
    app: App[Any],
    title: str,
    change: SettingsChange,
    *,
    confirm: str,
    done: str,
    body: str = "",
) -> None:
    client = cast(ClientApp, app)
    api = client.api
    try:
        account = await preview_then_apply(
            app,
            title,
            lambda: api.preview_settings(change),
            lambda version: api.update_settings(change, version),
            confirm=confirm,
            body=body,
        )
    except ApiError as exc:
        client.report_error(exc, title="Settings unchanged")
        return
    if account is not None:
        app.post_message(AccountChanged(account))
        app.notify(done, title="Settings saved")
