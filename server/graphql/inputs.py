"""Ids in inputs: opaque strings the API hands out, parsed once for queries and mutations."""

from __future__ import annotations

from collections.abc import Sequence

from server.domain import changes
from server.domain.errors import DomainError, ErrorCode
from server.domain.reads import cursors

from .errors import BadUserInput


def parse_id(raw: str, field: str, what: str = "user") -> int:
    found = cursors.parse_id(raw)
    if found is None:
        # Ids are opaque: a malformed one is simply not found, like another account's.
        raise DomainError(ErrorCode.NOT_FOUND, f"no {what} with id {raw[:40]!r}", field)
    return found


def bulk_ids(raw: Sequence[str], field: str, what: str = "user") -> list[int]:
    """Many ids; more than a bulk input takes is a top-level BAD_USER_INPUT error."""
    if len(raw) > changes.MAX_BULK_IDS:
        raise BadUserInput(
            f"'{field}' takes at most {changes.MAX_BULK_IDS} ids; {len(raw)} were given", field=field
        )
    return [parse_id(r, field, what) for r in raw]
