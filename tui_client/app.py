"""``plm-tui``: the admin client. Owns the API client, the live connection and the tabs."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from datetime import tzinfo

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.logging import TextualHandler
from textual.notifications import SeverityLevel
from textual.widgets import Footer, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from tui_client import safe
from tui_client.actions import AdminAction
from tui_client.api import ApiError, ConnectionLost, PlmApi, RateLimited
from tui_client.messages import (
    AccountChanged,
    CaughtUp,
    ConnectionChanged,
    ConnectionState,
    QueueEventReceived,
)
from tui_client.screens import settings
from tui_client.screens.audit import AuditView
from tui_client.screens.base import ApiView
from tui_client.screens.help import HelpScreen
from tui_client.screens.metrics import MetricsView
from tui_client.screens.pending import PendingView
from tui_client.screens.reclaim import ReclaimView
from tui_client.screens.settings_form import SettingsView
from tui_client.screens.token_refused import TokenRefusedScreen
from tui_client.screens.users import UsersView
from tui_client.screens.webhooks import WebhooksView
from tui_client.types import Account, Me, QueueAction, UserStatus
from tui_client.undo import Offers, UndoOffer, entries_of
from tui_client.widgets.connection_status import ConnectionStatus
from tui_client.widgets.detail_pane import DetailPane
from tui_client.widgets.usage_header import UsageHeader

log = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:8000/graphql"
SHUTDOWN_GRACE = 3.0  # seconds the workers get to close their connections on exit
# The queue's events carry the usage after each queue change, but some changes reach no
# queue event: a newcomer taking a free license, another admin's settings. While live, the
# header re-reads the account this often so it never stays wrong for long.
USAGE_REFRESH_SECONDS = 10.0


class AdminApp(App[None]):
    """Work the Pending Licenses queue live from the terminal."""

    CSS_PATH = "app.tcss"
    TITLE = "Pending License Management"
    BINDINGS = [
        Binding("1", "show_tab('pending')", "Pending", show=False),
        Binding("2", "show_tab('users')", "Users", show=False),
        Binding("3", "show_tab('audit')", "Audit", show=False),
        Binding("4", "show_tab('metrics')", "Metrics", show=False),
        Binding("5", "show_tab('webhooks')", "Webhooks", show=False),
        Binding("6", "show_tab('reclaim')", "Reclaim", show=False),
        Binding("7", "show_tab('settings')", "Settings", show=False),
        Binding("t", AdminAction.TOGGLE_REVIEW, "Manual review"),
        Binding("l", AdminAction.SET_LIMIT, "Limit", show=False),
        Binding("u", AdminAction.UNDO, "Undo", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        url: str,
        token: str,
        *,
        tz: tzinfo | None = None,
        page_size: int = 100,
        retry: tuple[float, float] = (0.5, 10.0),
        usage_refresh: float = USAGE_REFRESH_SECONDS,
    ) -> None:
        super().__init__()
        self.usage_refresh = usage_refresh
        self._events_seen = 0
        self.api = PlmApi(url, token)
        self.tz = tz
        self.page_size = page_size
        self.retry_first, self.retry_max = retry
        self.me: Me | None = None
        self.account: Account | None = None
        self.connection = ConnectionState.CONNECTING
        self.token_refused = False
        self.api.on_slowdown = self._slow_down
        self.api.on_refused = self._refused
        self.undo_offers = Offers()

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield UsageHeader(id="header")
        with TabbedContent(initial="pending", id="tabs"):
            with TabPane("1 Pending licenses", id="pending"):
                yield PendingView(page_size=self.page_size, id="pending-view")
            with TabPane("2 Users", id="users"):
                yield UsersView(page_size=self.page_size, id="users-view")
            with TabPane("3 Audit log", id="audit"):
                yield AuditView(page_size=self.page_size, id="audit-view")
            with TabPane("4 Queue metrics", id="metrics"):
                yield MetricsView(id="metrics-view")
            with TabPane("5 Webhooks", id="webhooks"):
                yield WebhooksView(id="webhooks-view")
            with TabPane("6 Reclaim", id="reclaim"):
                yield ReclaimView(page_size=self.page_size, id="reclaim-view")
            with TabPane("7 Settings", id="settings"):
                yield SettingsView(id="settings-view")
        # Compact, without the palette entry, so every action's key fits in 120 columns.
        yield Footer(compact=True, show_command_palette=False)

    @property
    def pending(self) -> PendingView:
        return self.query_one(PendingView)

    @property
    def can_act(self) -> bool:
        return self.me is None or self.me.can_act

    def on_mount(self) -> None:
        self.pending.table.focus()
        self.bootstrap()
        self.pending.refresh_data()
        self.live_updates()
        self.set_interval(self.usage_refresh, self.refresh_usage)

    async def on_unmount(self) -> None:
        # Let cancelled workers finish closing their connections (the websocket's close
        # handshake, in-flight requests) before the client and the event loop go away.
        workers = list(self.workers)
        for worker in workers:
            worker.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.workers.wait_for_complete(workers), SHUTDOWN_GRACE)
        await self.api.close()

    # ------------------------------------------------------------------ errors

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Notify in plain text, always: messages carry names, server errors and other data.

        ``markup`` is ignored (``Widget.notify`` passes ``True`` whatever its caller wants), and
        controls become U+FFFD (:func:`tui_client.safe.clean`); a message keeps its newlines, so
        a data part that must stay on one line is cleaned by its caller.
        """
        message, title = safe.clean(message, multiline=True), safe.clean(title)
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    def report_error(self, error: BaseException, title: str | None = None) -> None:
        """The one place failures become notifications: expected ones by message, others masked."""
        refused = isinstance(error, ApiError) and error.code == "UNAUTHENTICATED"
        if refused and self.token_refused and self.me is not None:
            return  # the revoked-token screen says it all
        if isinstance(error, ApiError):
            self.notify(error.message, title=title or "Request failed", severity="error", timeout=8)
        else:
            log.exception("unexpected error in the admin client", exc_info=error)
            self.notify(
                f"Unexpected error: {type(error).__name__}: {error}", title=title or "Error", severity="error"
            )

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            self.report_error(event.worker.error)

    # ------------------------------------------------------------------ data

    @work(exclusive=True, group="bootstrap", exit_on_error=False)
    async def bootstrap(self) -> None:
        try:
            me, account = await self.api.bootstrap()
        except ConnectionLost:
            return  # the connection indicator says so; the live loop catches up when back
        except ApiError as exc:
            self.report_error(exc, title="Cannot sign in")
            return
        self.me = me
        self.post_message(AccountChanged(account))
        self.refresh_bindings()
        if not me.can_act:
            self.notify(f"Signed in as {me.name} (viewer): you can look but not act.", timeout=6)

    @work(exclusive=True, group="usage", exit_on_error=False)
    async def refresh_usage(self) -> None:
        """Re-read license usage for the header (changes that no queue event carries)."""
        if self.connection is not ConnectionState.LIVE:
            return  # the live loop catches up, account included, when the server is back
        events_before = self._events_seen
        try:
            account = await self.api.account()
        except (ConnectionLost, ApiError):
            return  # the connection indicator and the live loop deal with it
        if self._events_seen == events_before:
            # Otherwise a queue event came meanwhile; its usage may be newer than this read.
            self.post_message(AccountChanged(account))

    @work(exclusive=True, group="live", exit_on_error=False)
    async def live_updates(self) -> None:
        """Follow ``pendingQueueChanged`` forever: reconnect with backoff, catch up on every connect."""
        delay = self.retry_first
        while True:
            self.post_message(ConnectionChanged(ConnectionState.CONNECTING))

            def connected() -> None:
                nonlocal delay
                delay = self.retry_first
                self.post_message(ConnectionChanged(ConnectionState.LIVE))
                self.post_message(CaughtUp())

            state, detail = ConnectionState.OFFLINE, ""
            try:
                async for event in self.api.queue_events(on_connected=connected):
                    self._events_seen += 1  # counted on arrival: see refresh_usage
                    self.post_message(QueueEventReceived(event))
                detail = "stream ended"
            except ConnectionLost as exc:
                detail = exc.message
            except RateLimited as exc:
                self._slow_down(exc.retry_after)
                await asyncio.sleep(exc.retry_after)
                self._slow_down(0)
                continue
            except ApiError as exc:
                if exc.code == "UNAUTHENTICATED":
                    # Revoked or rotated: reconnecting with the same token cannot help.
                    self._refused()
                    return
                # The server answered but refused the subscription (token, schema): keep working
                # over HTTP, and keep trying in case the server is upgraded or restarted.
                state, detail = ConnectionState.DEGRADED, exc.message
            log.info("live updates stopped: %s; retrying in %.1fs", detail, delay)
            self.post_message(ConnectionChanged(state, f"· retry in {delay:g}s"))
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.retry_max)

    def _slow_down(self, seconds: int) -> None:
        """The header says the server asked for a pause (HTTP 429), and for how long."""
        if self._shown:
            self.query_one(ConnectionStatus).slowdown = seconds

    def _refused(self) -> None:
        """The server refused the token: one screen says so, and nothing is retried."""
        if self.token_refused or not self.is_running:
            return
        self.token_refused = True
        self.workers.cancel_group(self, "live")
        self.workers.cancel_group(self, "usage")
        self.post_message(ConnectionChanged(ConnectionState.OFFLINE, "· token refused"))
        self.push_screen(TokenRefusedScreen(was_signed_in=self.me is not None))

    @property
    def _shown(self) -> bool:
        """False while the app starts or shuts down: messages from workers may still arrive."""
        return self.is_running and bool(self.query(UsageHeader))

    def on_connection_changed(self, message: ConnectionChanged) -> None:
        if not self._shown:
            return
        was, self.connection = self.connection, message.state
        status = self.query_one(ConnectionStatus)
        status.state, status.detail = message.state, message.detail
        live = ConnectionState.LIVE
        if was is live and message.state is not live:
            self.notify("Lost the live connection to the server; retrying.", severity="warning", timeout=4)
        elif was in (ConnectionState.OFFLINE, ConnectionState.DEGRADED) and message.state is live:
            self.notify("Reconnected; the view has caught up.", timeout=3)

    def on_caught_up(self, message: CaughtUp) -> None:
        if not self._shown:
            return
        if self.me is None:
            self.bootstrap()
        self.pending.refresh_data()
        for view in self.query(ApiView):
            if view is not self.pending:
                view.stale = True
        self._active_view().shown()

    def on_account_changed(self, message: AccountChanged) -> None:
        before, self.account = self.account, message.account
        if not self._shown:
            return
        self._account_read(message.account)
        if before is not None and before.licenses_used != message.account.licenses_used:
            # A newcomer took a free license (no queue event): it may be a queued user's match.
            self.pending.reread_in_sight()
        if before is not None and before.queue_target_hours != message.account.queue_target_hours:
            # Every pending user's due time moved, and no queue event says so.
            self.pending.refresh_data()
            for pane in self.query(DetailPane):
                pane.load()

    def _account_read(self, account: Account) -> None:
        """The header and the Settings tab show the account as last read."""
        self.query_one(UsageHeader).show(account)
        self.query_one(SettingsView).show_account(account)

    def on_queue_event_received(self, message: QueueEventReceived) -> None:
        if not self._shown:
            return
        event = message.event
        self.account = event.account
        self._account_read(event.account)
        self.pending.apply_event(event)
        active = self._active_view()
        for view in self.query(ApiView):
            if view is not self.pending:
                view.stale = True
        if active is not self.pending:
            active.shown()

    # ------------------------------------------------------------------ navigation

    def _active_view(self) -> ApiView:
        tabs = self.query_one(TabbedContent)
        return self.query_one(f"#{tabs.active}-view", ApiView)

    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        view = self._active_view()
        view.shown()
        table = view.query("DataTable")
        if table:
            table.first().focus()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    # ------------------------------------------------------------------ undo

    def offer_undo(self, action: QueueAction, user_ids: Sequence[str], what: str) -> str:
        return self.undo_offers.make(action, user_ids, what)

    def action_undo_last(self) -> None:
        offer = self.undo_offers.take()
        if offer is None:
            self.notify("Nothing to undo right now: the Audit log (3) lists what still can be.", timeout=4)
            return
        self._undo_last(offer)

    @work(group="undo", exit_on_error=False)
    async def _undo_last(self, offer: UndoOffer) -> None:
        try:
            log = await self.api.audit_log(max(50, 2 * len(offer.user_ids)))
            ids = entries_of(offer, log.items, self.me.id if self.me else None)
            if not ids:
                self.notify(f"{offer.what} can no longer be undone.", severity="warning")
                return
            account, users = await self.api.undo(ids)
        except ApiError as exc:
            self.report_error(exc, title="Nothing was undone")
            return
        self.post_message(AccountChanged(account))
        waiting = [u.display_name for u in users if u.status is UserStatus.PENDING]
        back = f" In the queue: {', '.join(waiting[:5])}." if waiting else ""
        self.notify(f"Undid: {offer.what}.{back}", title="Undone")
        self.pending.refresh_data()
        for view in self.query(ApiView):
            if view is not self.pending:
                view.stale = True

    # ------------------------------------------------------------------ settings

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if AdminAction.named(action) is not None and not self.can_act:
            return None
        return True

    def action_toggle_review(self) -> None:
        settings.toggle_review(self)

    def action_set_limit(self) -> None:
        settings.change_limit(self)


def log_to_textual() -> None:
    """Route logging to Textual's log (the devtools console), never to the terminal.

    The terminal belongs to the app: a log line written to stderr (httpx logs every request
    at INFO, and ``plm demo`` runs inside the CLI's stderr logging) would draw over the
    screen.
    """
    logging.basicConfig(level=logging.INFO, handlers=[TextualHandler()], force=True)
    # Request-by-request noise even for the devtools console.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="plm-tui", description="The Pending License Management admin client"
    )
    parser.add_argument(
        "--url", default=os.environ.get("PLM_URL") or DEFAULT_URL, help="the GraphQL endpoint"
    )
    parser.add_argument("--token", default=os.environ.get("PLM_TOKEN"), help="an admin API token")
    args = parser.parse_args(argv)
    if not args.token:
        sys.stderr.write("plm-tui: an admin token is needed: --token T or PLM_TOKEN\n")
        return 2
    log_to_textual()
    AdminApp(args.url, args.token).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
