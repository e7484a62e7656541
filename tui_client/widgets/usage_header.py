"""The top bar: account name and license usage, then the connection indicator."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widgets import Static

from tui_client.api import Account
from tui_client.widgets.connection_status import ConnectionStatus


class Usage(Static):
    account: reactive[Account | None] = reactive(None)

    def render(self) -> str:
        a = self.account
        if a is None:
            return "Licenses —/—"
        review = "[b $warning]on[/]" if a.manual_review else "off"
        style = "b $error" if a.licenses_available == 0 else "b"
        free = f"[{style}]{a.licenses_available:,}[/]"
        return (
            f"[b]{a.name}[/]   Licenses [b]{a.licenses_used:,}/{a.license_limit:,}[/] used · "
            f"{free} available · [b]{a.pending_count:,}[/] pending · manual review {review}"
        )


class UsageHeader(Horizontal):
    """License usage (used/limit, available, pending, manual review) and the connection state."""

    def compose(self) -> ComposeResult:
        yield Usage(id="usage")
        yield ConnectionStatus(id="connection")

    def show(self, account: Account) -> None:
        self.query_one(Usage).account = account
