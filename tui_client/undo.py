"""Undo, as the admin client offers it: plain Python, testable without Textual.

After each action the app keeps an :class:`UndoOffer` for a few seconds (the notification
that reports the action says ``u`` undoes it). The server knows actions by their audit
entries, not by the mutation that made them, so pressing ``u`` reads the newest audit
entries and :func:`entries_of` picks the ones that action wrote: the same action, on the
same users, by this admin, still undoable. The Audit tab undoes entries directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tui_client.types import AuditEntry, QueueAction, UserRef, UserStatus

OFFER_SECONDS = 8.0


@dataclass(frozen=True, kw_only=True)
class Restored(UserRef):
    """A user an undo restored or changed, as the payload shows it."""

    status: UserStatus


@dataclass(frozen=True)
class UndoOffer:
    """The last action, undoable with ``u`` until ``expires`` (a monotonic time)."""

    action: QueueAction
    user_ids: tuple[str, ...]
    what: str
    expires: float


class Offers:
    """The one offer standing: a new action replaces it; it lapses after ``seconds``."""

    def __init__(self, seconds: float = OFFER_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self._offer: UndoOffer | None = None

    def make(self, action: QueueAction, user_ids: Sequence[str], what: str) -> str:
        """Offer to undo an action; the hint its notification ends with."""
        self._offer = UndoOffer(action, tuple(user_ids), what, self.clock() + self.seconds)
        return "Press u to undo."

    def take(self) -> UndoOffer | None:
        """The standing offer, once (None when there is none or it lapsed)."""
        offer, self._offer = self._offer, None
        if offer is None or offer.expires < self.clock():
            return None
        return offer


def entries_of(offer: UndoOffer, entries: Sequence[AuditEntry], me: str | None) -> list[str]:
    """The audit entries ``offer``'s action wrote, among ``entries`` (newest first): one per
    user, the newest, by ``me`` (None: anyone), still undoable."""
    wanted = set(offer.user_ids)
    seen: set[str] = set()
    found: list[str] = []
    for entry in entries:
        if entry.action != offer.action or entry.user_id not in wanted or entry.user_id in seen:
            continue
        if me is not None and (entry.actor is None or entry.actor.id != me):
            continue
        seen.add(entry.user_id)
        if entry.undoable_until is not None:
            found.append(entry.id)
    return found
