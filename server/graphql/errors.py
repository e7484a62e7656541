"""Top-level GraphQL errors and their ``extensions.code`` (docs/behaviour.md, Admin actions).

Business-rule failures are data (a payload's ``errors``); what lands here is what a client
cannot fix by choosing other data: no permission, an argument out of range, or a bug. The
codes follow the convention GraphQL tools recognise (Apollo's).
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError

UNAUTHENTICATED = "UNAUTHENTICATED"
FORBIDDEN = "FORBIDDEN"
BAD_USER_INPUT = "BAD_USER_INPUT"
INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
# The database is down, restarting, paused or read-only: retry the same request later
# (HTTP 503 with Retry-After; a websocket is closed with 1013).
SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
UNAVAILABLE_MESSAGE = "The database is unavailable right now; retry shortly."
# Over a rate limit (HTTP 429 with Retry-After): retry the same request after that many
# seconds, also given as ``extensions.retryAfter``. An extensions code, not an ErrorCode of
# the schema: it never appears in a payload's ``errors``.
RATE_LIMITED = "RATE_LIMITED"


def rate_limited(seconds: int) -> dict[str, Any]:
    """The GraphQL error of a refused request, as sent (HTTP body or websocket ``error``)."""
    return {
        "message": f"Too many requests; retry in {seconds} s.",
        "extensions": {"code": RATE_LIMITED, "retryAfter": seconds},
    }


class ApiError(GraphQLError):
    """An error meant for the client, shown as raised (never masked)."""

    code = INTERNAL_SERVER_ERROR

    def __init__(self, message: str, **extensions: Any) -> None:
        super().__init__(message, extensions={"code": self.code, **extensions})


class Forbidden(ApiError):
    code = FORBIDDEN


class BadUserInput(ApiError):
    code = BAD_USER_INPUT


class Unauthenticated(ApiError):
    code = UNAUTHENTICATED


def has_code(errors: list[GraphQLError] | None, code: str) -> bool:
    return any((e.extensions or {}).get("code") == code for e in errors or ())
