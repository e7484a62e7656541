"""Schema extensions: hostile-query limits, parse/validation caches, error policy.

Limits follow the OWASP GraphQL cheat sheet and are enforced while parsing and validating,
before any resolver runs. Strawberry builds extensions per request from factories; the
depth and alias limiters are subclassed only so their validation rule is one class for the
process, which keeps :class:`ValidationCache` hits possible (its key includes the rules).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
    max_aliases,
    query_depth_limiter,
)

from .errors import (
    BAD_USER_INPUT,
    GRAPHQL_PARSE_FAILED,
    GRAPHQL_VALIDATION_FAILED,
    INTERNAL_SERVER_ERROR,
)

log = logging.getLogger("server.graphql")

MAX_DEPTH = 10
MAX_ALIASES = 15
MAX_TOKENS = 2_000
CACHE_SIZE = 256

_DEPTH_RULE = query_depth_limiter.create_validator(MAX_DEPTH, None)
_ALIASES_RULE = max_aliases.create_validator(MAX_ALIASES)


class DepthLimit(QueryDepthLimiter):
    def __init__(self) -> None:
        AddValidationRules.__init__(self, [_DEPTH_RULE])


class AliasLimit(MaxAliasesLimiter):
    def __init__(self) -> None:
        AddValidationRules.__init__(self, [_ALIASES_RULE])


class TokenLimit(MaxTokensLimiter):
    def __init__(self) -> None:
        super().__init__(max_token_count=MAX_TOKENS)


class Parsing(ParserCache):
    def __init__(self) -> None:
        super().__init__(maxsize=CACHE_SIZE)


class Validation(ValidationCache):
    def __init__(self) -> None:
        super().__init__(maxsize=CACHE_SIZE)


def _log_unexpected(error: GraphQLError, request_id: str | None) -> None:
    original = error.original_error
    log.error(
        "unexpected error resolving %s (request %s): %s",
        ".".join(map(str, error.path or [])) or "<operation>",
        request_id,
        error.message,
        exc_info=(type(original), original, original.__traceback__) if original is not None else None,
    )


def masked(error: GraphQLError, request_id: str | None) -> GraphQLError:
    """The client's view of an unexpected error: no message, no traceback; logged here."""
    _log_unexpected(error, request_id)
    return GraphQLError(
        message="Internal server error.",
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={"code": INTERNAL_SERVER_ERROR, "requestId": request_id},
    )


def _has_code(error: GraphQLError) -> bool:
    return "code" in (error.extensions or {})


class ErrorPolicy(MaskErrors):
    """Every top-level error gets an ``extensions.code``; unexpected ones are masked.

    Shown as raised: :class:`~server.graphql.errors.ApiError` (FORBIDDEN, BAD_USER_INPUT, ...)
    and errors about the request itself: syntax (GRAPHQL_PARSE_FAILED), validation and the
    depth/alias limits (GRAPHQL_VALIDATION_FAILED), variables that do not coerce
    (BAD_USER_INPUT). Everything else (a bug, the database gone) becomes "Internal server
    error." with INTERNAL_SERVER_ERROR and the request id, and is logged with its traceback.
    """

    def __init__(self) -> None:
        super().__init__(should_mask_error=self._classify)
        self._validation_errors: list[GraphQLError] = []

    def on_validate(self) -> Iterator[None]:
        yield
        # Strawberry later stores *every* error as "pre-execution"; remember which ones
        # validation produced while that is still unambiguous.
        self._validation_errors = list(self.execution_context.pre_execution_errors or ())

    def _classify(self, error: GraphQLError) -> bool:
        """Tags request errors with their code; ``True`` when the error must be masked."""
        if _has_code(error):
            return False
        code = None
        if self.execution_context.graphql_document is None:
            code = GRAPHQL_PARSE_FAILED
        elif any(error is v for v in self._validation_errors):
            code = GRAPHQL_VALIDATION_FAILED
        elif error.path is None and error.message.startswith("Variable '$"):
            code = BAD_USER_INPUT
        else:
            original = error.original_error
            if isinstance(original, GraphQLError) and _has_code(original):
                error.extensions = {**(error.extensions or {}), **(original.extensions or {})}
                return False
            return True
        error.extensions = {**(error.extensions or {}), "code": code}
        return False

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        return masked(error, getattr(self.execution_context.context, "request_id", None))


def finish_errors(errors: list[GraphQLError] | None, request_id: str | None) -> list[GraphQLError] | None:
    """For errors raised where no extension sees them (an extension hook itself failed,
    e.g. the token limit while parsing): a GraphQL syntax error is the client's; any other
    exception is masked like a resolver's."""
    if not errors:
        return errors
    out: list[GraphQLError] = []
    for error in errors:
        if _has_code(error):
            out.append(error)
        elif error.original_error is None and error.path is None:
            error.extensions = {**(error.extensions or {}), "code": GRAPHQL_PARSE_FAILED}
            out.append(error)
        else:
            out.append(masked(error, request_id))
    return out


# The token limit must set its parse option before the parser cache parses.
EXTENSIONS = [ErrorPolicy, TokenLimit, Parsing, Validation, DepthLimit, AliasLimit]
