"""Plans before commitments: what a change would do, shown before it is made.

A bulk approval and a limit or manual-review change first ask the server for the plan
(``previewApproval``, ``previewAccountSettings``): who becomes licensed and in which order,
who a lowered limit moves to the queue, the usage before and after, and what applying would
be refused with. :class:`PlanScreen` shows it; :func:`preview_then_apply` applies exactly that
plan (its ``queueVersion`` as ``expectedQueueVersion``) and, when the queue changed in
between (``PLAN_CHANGED``: nothing was applied), shows the fresh plan with a notice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from tui_client import format as fmt
from tui_client import safe
from tui_client.api import ApiError
from tui_client.types import ErrorCode, SeatPlan, UserRef

T = TypeVar("T")

CHANGED = "The queue changed since you looked: here is the plan now. Nothing was applied."
SHOWN = 12  # names listed per part of a plan; the rest are counted
ADVICE = {
    ErrorCode.LICENSE_LIMIT_EXCEEDED: "Approve fewer users, raise the limit, or remove licensed users.",
}


def describe(plan: SeatPlan) -> Content:
    """The plan in words: usage before and after, who moves which way, what would be refused."""
    lines = [
        safe.styled(
            "Licenses used: ",
            (f"{plan.licenses_used_before:,}", "b"),
            " → ",
            (f"{plan.licenses_used_after:,}", "b"),
            f" of {plan.license_limit:,}",
        )
    ]
    if plan.errors:
        for error in plan.errors:
            lines += [Content(""), safe.styled(("Cannot apply: ", "b $error"), error.message)]
            if error.code in ADVICE:
                lines.append(Content(ADVICE[error.code]))
        return Content("\n").join(lines)
    lines += listed("Approved, in this order", plan.approve)
    lines += listed("Moved to the queue, most recently licensed first", plan.move_to_pending)
    if not plan.approve and not plan.move_to_pending:
        lines += [Content(""), Content("Nobody's license changes.")]
    return Content("\n").join(lines)


def listed(heading: str, users: tuple[UserRef, ...]) -> list[Content]:
    """A heading with the count, then the first names, numbered (none: nothing)."""
    if not users:
        return []
    lines = [Content(""), safe.styled((f"{heading} ({len(users):,}):", "b"))]
    lines += [safe.plain(f" {i:>3}. {user.display_name}") for i, user in enumerate(users[:SHOWN], start=1)]
    if len(users) > SHOWN:
        lines.append(Content(f"      and {fmt.plural(len(users) - SHOWN, 'more user')}"))
    return lines


class PlanScreen(ModalScreen[bool]):
    """A plan and a question; dismisses with True (apply) or False (cancel). A plan the server
    would refuse cannot be applied: it only closes."""

    BINDINGS = [
        Binding("escape,n", "answer(False)", "Cancel"),
        Binding("y", "answer(True)", "Apply"),
    ]

    def __init__(self, title: str, plan: SeatPlan, *, apply: str, body: str = "", notice: str = "") -> None:
        super().__init__()
        self.heading, self.plan, self.apply, self.body, self.notice = title, plan, apply, body, notice

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog plan"):
            yield Label(safe.plain(self.heading), classes="title")
            if self.notice:
                yield Static(safe.plain(self.notice), id="plan-notice")
            if self.body:
                yield Static(Content(safe.clean(self.body, multiline=True)), classes="body")
            with VerticalScroll(id="plan-scroll"):
                yield Static(describe(self.plan), id="plan-body")
            with Horizontal(classes="buttons"):
                yield Button(self.apply, variant="primary", id="apply", disabled=bool(self.plan.errors))
                yield Button("Close" if self.plan.errors else "Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#cancel" if self.plan.errors else "#apply", Button).focus()

    def action_answer(self, value: bool) -> None:
        self.dismiss(value and not self.plan.errors)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "apply")


async def preview_then_apply(
    app: App[Any],
    title: str,
    preview: Callable[[], Awaitable[SeatPlan]],
    apply: Callable[[str], Awaitable[T | None]],
    *,
    confirm: str,
    body: str = "",
) -> T | None:
    """Show the plan, then apply exactly it: the answer of ``apply``, or None when the admin
    cancelled. A ``PLAN_CHANGED`` answer shows the fresh plan again with a notice; any other
    failure raises :class:`ApiError`. Runs in a worker (it waits for the admin)."""
    notice = ""
    while True:
        plan = await preview()
        screen = PlanScreen(title, plan, apply=confirm, body=body, notice=notice)
        if not await app.push_screen_wait(screen):
            return None
        try:
            return await apply(plan.queue_version)
        except ApiError as exc:
            if exc.code != ErrorCode.PLAN_CHANGED:
                raise
            notice = CHANGED
