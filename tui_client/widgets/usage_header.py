"""The top bar: account name and license usage, then the connection indicator."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from tui_client import safe
from tui_client.types import Account
from tui_client.widgets.connection_status import ConnectionStatus


class Usage(Static):
    account: reactive[Account | None] = reactive(None)

    def render(self) -> Content:
        a = self.account
        if a is None:
            return Content("Licenses —/—")
        return safe.styled(
            (a.name, "b"),
            "   Licenses ",
            (f"{a.licenses_used:,}/{a.license_limit:,}", "b"),
            " used · ",
            (f"{a.licenses_available:,}", "b $error" if a.licenses_available == 0 else "b"),
            " available · ",
            (f"{a.pending_count:,}", "b"),
            " pending · manual review ",
            ("on", "b $warning") if a.manual_review else "off",
        )


class UsageHeader(Horizontal):
    """License usage (used/limit, available, pending, manual review) and the connection state."""

    def compose(self) -> ComposeResult:
        yield Usage(id="usage")
        yield ConnectionStatus(id="connection")

    def show(self, account: Account) -> None:
        self.query_one(Usage).account = account
