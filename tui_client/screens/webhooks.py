"""The Webhooks tab: the account's endpoints, and the deliveries of the one under the cursor.

ADMINs add (``a``), edit (``e``), delete (``x``), rotate the secret (``r``) and send a test
(``s``); a new secret is shown once, in a dialog. VIEWERs see the same lists (URLs without
their secret parts; never a secret). Deliveries are re-read when the tab is shown after
queue events, after each action, and with ``g``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import tzinfo

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable, Label, Static

from tui_client import format as fmt
from tui_client import safe
from tui_client.api import ApiError
from tui_client.screens.base import ApiView
from tui_client.screens.confirm import ConfirmScreen
from tui_client.screens.webhook_dialogs import ACTIONS, SecretScreen, WebhookForm, WebhookInput
from tui_client.webhooks_api import Created, DeliveryStatus, Webhook, WebhookDelivery, WebhooksApi

DELIVERIES_SHOWN = 20
TEST_REFRESH_SECONDS = 2.0


@dataclass
class WebhooksLoaded(Message):
    webhooks: list[Webhook]


def state(hook: Webhook) -> Text:
    if hook.enabled:
        return Text("enabled", style="green")
    reason = f"disabled: {hook.disabled_reason}" if hook.disabled_reason else "disabled"
    return Text(reason, style="red")


def actions_label(hook: Webhook) -> str:
    if set(hook.actions) >= set(ACTIONS):
        return "all"
    return ", ".join(fmt.action(a) for a in hook.actions)


def webhook_row(hook: Webhook, tz: tzinfo | None) -> Sequence[object]:
    failures = hook.failures
    return (
        hook.id,
        hook.url,
        hook.format.lower(),
        actions_label(hook),
        state(hook),
        fmt.short(hook.last_delivered_at, tz),
        Text(str(failures), style="red") if failures else "0",
    )


_STATUS_STYLE = {
    DeliveryStatus.DELIVERED: "green",
    DeliveryStatus.FAILED: "red",
    DeliveryStatus.PENDING: "yellow",
}


def delivery_row(delivery: WebhookDelivery, tz: tzinfo | None) -> Sequence[object]:
    event = "test" if delivery.action is None else fmt.action(delivery.action)
    status = delivery.status.lower()
    if (
        delivery.status is DeliveryStatus.PENDING
        and delivery.next_attempt_at is not None
        and delivery.attempts
    ):
        status = f"retry {fmt.short(delivery.next_attempt_at, tz)}"
    return (
        fmt.short(delivery.created_at, tz),
        event,
        delivery.user_id or "—",
        Text(status, style=_STATUS_STYLE.get(delivery.status, "")),
        str(delivery.attempts),
        "—" if delivery.last_response_code is None else str(delivery.last_response_code),
        delivery.last_error or "",
    )


class WebhooksView(ApiView):
    DEFAULT_CSS = """
    #webhooks-table { height: auto; max-height: 12; }
    #deliveries-table { height: 1fr; }
    """
    BINDINGS = [
        Binding("a", "add", "Add"),
        Binding("e", "edit", "Edit"),
        Binding("x", "delete", "Delete"),
        Binding("r", "rotate", "Rotate secret"),
        Binding("s", "send_test", "Test"),
        Binding("g", "reload", "Reload"),
    ]

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.stale = True
        self.webhooks: list[Webhook] = []

    def compose(self) -> ComposeResult:
        yield DataTable(id="webhooks-table", cursor_type="row", zebra_stripes=True)
        yield Label("Deliveries", id="deliveries-title", classes="status-line")
        yield DataTable(id="deliveries-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="webhooks-info", classes="status-line")

    def on_mount(self) -> None:
        hooks = self.query_one("#webhooks-table", DataTable)
        hooks.add_columns("ID", "URL", "Format", "Actions", "State", "Last delivery", "Failures")
        deliveries = self.query_one("#deliveries-table", DataTable)
        deliveries.add_columns("Created", "Event", "User", "Status", "Attempts", "Code", "Last error")

    @property
    def hooks_api(self) -> WebhooksApi:
        return WebhooksApi(self.api)

    # ------------------------------------------------------------------ reading

    def refresh_data(self) -> None:
        self._fetch()

    @work(exclusive=True, group="webhooks", exit_on_error=False)
    async def _fetch(self) -> None:
        try:
            hooks = await self.hooks_api.webhooks(DELIVERIES_SHOWN)
        except ApiError as exc:
            self.fail("Could not load webhooks", exc)
            return
        self.post_message(WebhooksLoaded(hooks))

    def on_webhooks_loaded(self, message: WebhooksLoaded) -> None:
        table = self.query_one("#webhooks-table", DataTable)
        selected = self.selected
        self.webhooks = message.webhooks
        table.clear()
        tz = self.admin_app.tz
        for hook in self.webhooks:
            table.add_row(*(safe.cell(c) for c in webhook_row(hook, tz)), key=hook.id)
        if selected is not None and any(h.id == selected.id for h in self.webhooks):
            table.move_cursor(row=table.get_row_index(selected.id))
        self._show_deliveries()
        info = f"{fmt.plural(len(self.webhooks), 'webhook')} (at most 10)"
        if self.admin_app.can_act:
            info += " · a add · e edit · x delete · r rotate secret · s send a test · g reload"
        self.query_one("#webhooks-info", Static).update(safe.plain(info))

    @property
    def selected(self) -> Webhook | None:
        table = self.query_one("#webhooks-table", DataTable)
        if not self.webhooks or table.cursor_row < 0 or table.cursor_row >= len(self.webhooks):
            return None
        return self.webhooks[table.cursor_row]

    @on(DataTable.RowHighlighted, "#webhooks-table")
    def _highlighted(self) -> None:
        self._show_deliveries()

    def _show_deliveries(self) -> None:
        table = self.query_one("#deliveries-table", DataTable)
        table.clear()
        hook = self.selected
        title = self.query_one("#deliveries-title", Label)
        if hook is None:
            title.update("Deliveries")
            return
        page = hook.deliveries
        title.update(
            safe.plain(
                f"Deliveries of webhook {hook.id}: newest {len(page.items)} of {page.total_count:,} "
                "(kept 7 days)"
            )
        )
        tz = self.admin_app.tz
        for delivery in page.items:
            table.add_row(*(safe.cell(c) for c in delivery_row(delivery, tz)), key=delivery.id)

    def action_reload(self) -> None:
        self.refresh_data()

    # ------------------------------------------------------------------ acting

    def _may_act(self) -> bool:
        if not self.admin_app.can_act:
            self.app.notify("Your role can read webhooks but not manage them.", severity="warning")
            return False
        return True

    def _target(self) -> Webhook | None:
        hook = self.selected
        if hook is None:
            self.app.notify("No webhook here yet: press a to add one.", severity="warning")
        return hook

    def action_add(self) -> None:
        if not self._may_act():
            return

        def answered(given: WebhookInput | None) -> None:
            if given is not None and given.url:
                self._create(given)

        self.app.push_screen(WebhookForm(), answered)

    @work(group="webhook-action", exit_on_error=False)
    async def _create(self, given: WebhookInput) -> None:
        try:
            made = await self.hooks_api.create(given.url, given.format, given.actions)
        except ApiError as exc:
            self.fail("Webhook not added", exc)
            return
        self.app.notify(f"Webhook {made.webhook_id} added.", title="Webhooks")
        self._show_secret(made, rotated=False)
        self.refresh_data()

    def _show_secret(self, made: Created, *, rotated: bool) -> None:
        if made.secret is not None:
            self.app.push_screen(SecretScreen(made.webhook_id, made.secret, rotated=rotated))

    def action_edit(self) -> None:
        hook = self._target() if self._may_act() else None
        if hook is None:
            return

        def answered(given: WebhookInput | None) -> None:
            if given is not None:
                self._update(hook, given)

        self.app.push_screen(WebhookForm(hook), answered)

    @work(group="webhook-action", exit_on_error=False)
    async def _update(self, hook: Webhook, given: WebhookInput) -> None:
        try:
            await self.hooks_api.update(
                hook.id,
                url=given.url if given.url != hook.url else None,
                actions=given.actions,
                enabled=given.enabled if given.enabled != hook.enabled else None,
            )
        except ApiError as exc:
            self.fail("Webhook unchanged", exc)
            return
        self.app.notify(f"Webhook {hook.id} saved.", title="Webhooks")
        self.refresh_data()

    def action_delete(self) -> None:
        hook = self._target() if self._may_act() else None
        if hook is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._delete(hook)

        body = f"{hook.url}\n\nIts waiting deliveries are dropped and its history is deleted."
        self.app.push_screen(ConfirmScreen(f"Delete webhook {hook.id}?", body, "Delete"), answered)

    @work(group="webhook-action", exit_on_error=False)
    async def _delete(self, hook: Webhook) -> None:
        try:
            await self.hooks_api.delete(hook.id)
        except ApiError as exc:
            self.fail("Webhook not deleted", exc)
            return
        self.app.notify(f"Webhook {hook.id} deleted.", title="Webhooks")
        self.refresh_data()

    def action_rotate(self) -> None:
        hook = self._target() if self._may_act() else None
        if hook is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._rotate(hook)

        body = (
            "A new signing secret is made and shown once. The current one keeps signing beside it "
            "for 24 hours, so receivers can switch over."
        )
        self.app.push_screen(
            ConfirmScreen(f"Rotate the secret of webhook {hook.id}?", body, "Rotate"), answered
        )

    @work(group="webhook-action", exit_on_error=False)
    async def _rotate(self, hook: Webhook) -> None:
        try:
            made = await self.hooks_api.rotate(hook.id)
        except ApiError as exc:
            self.fail("Secret not rotated", exc)
            return
        self._show_secret(made, rotated=True)

    def action_send_test(self) -> None:
        hook = self._target() if self._may_act() else None
        if hook is not None:
            self._send_test(hook)

    @work(group="webhook-action", exit_on_error=False)
    async def _send_test(self, hook: Webhook) -> None:
        try:
            await self.hooks_api.send_test(hook.id)
        except ApiError as exc:
            self.fail("Test not sent", exc)
            return
        self.app.notify(f"Test delivery queued for webhook {hook.id}.", title="Webhooks", timeout=3)
        self.refresh_data()
        # Its outcome follows within a second or two: show it without a key press.
        self.set_timer(TEST_REFRESH_SECONDS, self.refresh_data)
