"""All of a pending user's likely matches, with the server's reasons; enter accepts one.

Dismisses with the chosen :class:`Suggestion` (the caller runs the assign or merge) or
``None``. The list is fetched when the screen opens, so it is never older than the queue row.
"""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from tui_client import safe
from tui_client.api import ApiError, PlmApi
from tui_client.types import Suggestion, User


def describe(s: Suggestion) -> Text:
    text = Text()
    text.append(f"{s.kind.title():<7}", style="bold")
    text.append(f"{safe.clean(s.target)}  ")
    text.append(f"{s.score:.0%}", style="bold")
    for reason in s.reasons:
        text.append(f"\n         · {safe.clean(reason)}", style="dim")
    return text


class SuggestionsScreen(ModalScreen[Suggestion | None]):
    BINDINGS = [Binding("escape,w", "cancel", "Close")]

    def __init__(self, api: PlmApi, pending: User, *, can_act: bool) -> None:
        super().__init__()
        self.api = api
        self.pending = pending
        self.can_act = can_act
        self.found: list[Suggestion] = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="picker"):
            yield Label(safe.plain(f"Who is {self.pending.display_name}? Likely matches"), classes="title")
            yield OptionList(id="suggestion-options")
            yield Static("Loading…", id="suggestion-info", classes="hint")
            yield Static(
                "enter accepts (assign or merge) · esc closes" if self.can_act else "esc closes",
                classes="hint",
            )

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()
        self._load()

    @work(exclusive=True, exit_on_error=False)
    async def _load(self) -> None:
        info = self.query_one("#suggestion-info", Static)
        try:
            found = await self.api.suggestions(self.pending.id)
        except ApiError as exc:
            info.update(safe.plain(f"Could not load the suggestions: {exc.message}"))
            return
        if found is None:
            info.update("This user is no longer in the queue.")
            return
        self.found = found
        options = self.query_one(OptionList)
        options.clear_options()
        options.add_options([Option(describe(s), id=str(i)) for i, s in enumerate(found)])
        if found:
            options.highlighted = 0
        info.update(
            f"{len(found)} likely match{'es' if len(found) != 1 else ''}"
            if found
            else "No likely match: this looks like a new person."
        )

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        if self.can_act and event.option.id is not None:
            self.dismiss(self.found[int(event.option.id)])

    def action_cancel(self) -> None:
        self.dismiss(None)
