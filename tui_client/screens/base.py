"""What every tab shares: the API client, and failures of its workers shown as notifications."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo
from typing import Protocol, cast

from textual.containers import Vertical
from textual.worker import Worker, WorkerState

from tui_client.api import ApiError, PlmApi
from tui_client.types import Account, QueueAction


class ClientApp(Protocol):
    """What a tab needs of the app that holds it (``AdminApp``), stated here: the app imports
    the tabs, so the tabs do not import the app."""

    api: PlmApi
    tz: tzinfo | None
    #: The account as last read (usage, settings); None until signed in.
    account: Account | None

    @property
    def can_act(self) -> bool: ...

    def report_error(self, error: BaseException, title: str | None = None) -> None: ...

    def offer_undo(self, action: QueueAction, user_ids: Sequence[str], what: str) -> str:
        """Offer ``u`` to undo an action for a few seconds; the hint to end its notification with."""
        ...


class ApiView(Vertical):
    """A tab's content. Its workers' failures reach the admin as notifications, never a traceback."""

    stale = False  # a queue event changed data this view shows; re-query when next shown

    @property
    def admin_app(self) -> ClientApp:
        return cast(ClientApp, self.app)

    @property
    def api(self) -> PlmApi:
        return self.admin_app.api

    def fail(self, title: str, error: ApiError) -> None:
        self.admin_app.report_error(error, title=title)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            self.admin_app.report_error(event.worker.error)

    def refresh_data(self) -> None:
        """Re-query what this view shows (subclasses)."""

    def shown(self) -> None:
        """The view's tab became active."""
        if self.stale:
            self.stale = False
            self.refresh_data()
