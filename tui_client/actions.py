"""What only an ADMIN may do: each value is the name of the action its key runs.

A VIEWER sees these keys dimmed and cannot run them; screens branch on the enum, never on a
string.
"""

from __future__ import annotations

from enum import StrEnum

from tui_client.types import SuggestionKind


class AdminAction(StrEnum):
    APPROVE = "approve"
    ASSIGN = "assign"
    MERGE = "merge"
    REMOVE = "remove"
    ACCEPT_MATCH = "accept_suggestion"
    TOGGLE_REVIEW = "toggle_review"
    SET_LIMIT = "set_limit"
    RELEASE = "release"
    SWAP = "swap"
    UNDO = "undo_last"
    UNDO_ENTRIES = "undo_entries"

    @classmethod
    def named(cls, action: str) -> AdminAction | None:
        """The admin action a Textual action name runs, or None for one anybody may run."""
        try:
            return cls(action)
        except ValueError:
            return None

    @classmethod
    def resolving(cls, kind: SuggestionKind) -> AdminAction:
        """What accepting a likely match of this kind does: merge into an agent, else assign."""
        return cls.MERGE if kind is SuggestionKind.MERGE else cls.ASSIGN
