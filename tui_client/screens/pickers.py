"""Searchable pickers: a user to assign a pending user to, an agent to merge one into.

Typing re-queries the server (debounced) so the pickers work on any number of users; each
picker dismisses with ``(id, label)`` or ``None``. Names are shown as plain text (:mod:`tui_client.safe`).
"""

from __future__ import annotations

import asyncio

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from tui_client import format as fmt
from tui_client import safe
from tui_client.api import ApiError, PlmApi
from tui_client.types import User

PICKER_SIZE = 50


class SearchPicker(ModalScreen[tuple[str, str] | None]):
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("down", "focus_list", "Choose", show=False),
    ]
    placeholder = "Type to search"

    def __init__(self, api: PlmApi, pending: User, title: str) -> None:
        super().__init__()
        self.api = api
        self.pending = pending
        self.heading = title

    def compose(self) -> ComposeResult:
        with Vertical(classes="picker"):
            yield Label(safe.plain(self.heading), classes="title")
            yield Input(placeholder=self.placeholder, id="picker-search")
            yield OptionList(id="picker-options")
            yield Static("Searching…", id="picker-info", classes="hint")
            yield Static("type to search · ↓ to the list · enter picks · esc cancels", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#picker-search", Input).focus()
        self.search("")

    @on(Input.Changed, "#picker-search")
    def _changed(self, event: Input.Changed) -> None:
        self.search(event.value.strip(), debounce=True)

    @on(Input.Submitted, "#picker-search")
    def _submitted(self) -> None:
        options = self.query_one("#picker-options", OptionList)
        if options.option_count:
            self._pick(options.highlighted if options.highlighted is not None else 0)

    @on(OptionList.OptionSelected, "#picker-options")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self._pick(event.option_index)

    def _pick(self, index: int) -> None:
        option = self.query_one("#picker-options", OptionList).get_option_at_index(index)
        if option.id is not None:
            self.dismiss((option.id, str(option.prompt)))

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_focus_list(self) -> None:
        options = self.query_one("#picker-options", OptionList)
        if options.option_count:
            options.focus()
            if options.highlighted is None:
                options.highlighted = 0

    async def fetch(self, text: str) -> tuple[list[Option], int]:
        raise NotImplementedError

    @work(exclusive=True, group="picker", exit_on_error=False)
    async def search(self, text: str, debounce: bool = False) -> None:
        if debounce:
            await asyncio.sleep(0.2)
        info = self.query_one("#picker-info", Static)
        try:
            options, total = await self.fetch(text)
        except ApiError as exc:
            info.update(safe.styled((exc.message, "b $error")))
            return
        option_list = self.query_one("#picker-options", OptionList)
        option_list.clear_options()
        option_list.add_options(options)
        if options:
            option_list.highlighted = 0
        more = f" (first {len(options)} of {total:,}; type to narrow)" if total > len(options) else ""
        info.update(f"{len(options):,} found{more}" if options else "Nothing matches.")


class UserPicker(SearchPicker):
    """Any existing user other than the pending one, licensed or pending."""

    placeholder = "Search users by name, logon or device"

    def __init__(self, api: PlmApi, pending: User) -> None:
        super().__init__(api, pending, f"Assign {pending.display_name}'s devices to…")

    async def fetch(self, text: str) -> tuple[list[Option], int]:
        page = await self.api.users(first=PICKER_SIZE, search=text)
        options = []
        for u in page.items:
            if u.id == self.pending.id:
                continue
            logon = u.agents[0].logon if u.agents else ""
            label = f"{u.display_name}  ·  {logon}  ·  {fmt.status(u.status)}"
            options.append(Option(safe.plain(label), id=u.id))
        return options, page.total_count - (len(page.items) - len(options))


class AgentPicker(SearchPicker):
    """An existing agent (a login on a device) of another user."""

    placeholder = "Search agents by logon or device"

    def __init__(self, api: PlmApi, pending: User) -> None:
        super().__init__(api, pending, f"Merge {pending.display_name} into the agent…")

    async def fetch(self, text: str) -> tuple[list[Option], int]:
        page = await self.api.agents(first=PICKER_SIZE, search=text)
        options = []
        for a in page.items:
            if a.user.id == self.pending.id:
                continue
            label = f"{a.logon} on {a.device_name}  ·  {a.user.display_name} ({fmt.status(a.user.status)})"
            options.append(Option(safe.plain(label), id=a.id))
        return options, page.total_count - (len(page.items) - len(options))


class PendingPicker(SearchPicker):
    """A pending user, oldest first: who gets the license a swap frees (the Reclaim tab).

    ``users`` keeps what the last search found, so the caller knows whom it picked.
    """

    placeholder = "Search the queue by name, logon or device"

    def __init__(self, api: PlmApi, licensed: User) -> None:
        super().__init__(api, licensed, f"Give {licensed.display_name}'s license to…")
        self.users: dict[str, User] = {}

    async def fetch(self, text: str) -> tuple[list[Option], int]:
        page = await self.api.pending_users(first=PICKER_SIZE, search=text)
        self.users = {u.id: u for u in page.items}
        options = []
        for u in page.items:
            logon = u.agents[0].logon if u.agents else ""
            why = fmt.reason(u.pending.reason) if u.pending else ""
            label = f"{u.display_name}  ·  {logon}  ·  {why}"
            options.append(Option(safe.plain(label), id=u.id))
        return options, page.total_count
