"""Expected failures of the domain: a code the API exposes, a message an admin reads."""

from __future__ import annotations

import enum
from typing import Any


class ErrorCode(str, enum.Enum):
    NOT_FOUND = "NOT_FOUND"
    NOT_PENDING = "NOT_PENDING"
    LICENSE_LIMIT_EXCEEDED = "LICENSE_LIMIT_EXCEEDED"
    INVALID_INPUT = "INVALID_INPUT"
    CONFLICT = "CONFLICT"
    PLAN_CHANGED = "PLAN_CHANGED"
    NOT_UNDOABLE = "NOT_UNDOABLE"


class DomainError(Exception):
    """A business rule refused an action; the transaction is rolled back, nothing changed."""

    def __init__(self, code: ErrorCode, message: str, field: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.details = details

    def __repr__(self) -> str:
        return f"DomainError({self.code.value}, {self.message!r}, field={self.field!r})"


class PermissionDenied(Exception):
    """The actor's role does not allow the action (a VIEWER acting)."""
