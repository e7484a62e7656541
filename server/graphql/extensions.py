"""Schema extensions: hostile-query limits, parse/validation caches, error policy.

Limits follow the OWASP GraphQL cheat sheet and are enforced while parsing and validating,
before any resolver runs: the token limit while parsing, then depth, aliases and size
(:mod:`server.graphql.limits`), then graphql-core's rules — which a document over the limits
never reaches, so no rule walks a fragment fan-out the limits refuse.

Parsed documents and validation results are cached for the process (every client sends the
same few documents) by their text, in LRUs bounded by the bytes their entries keep alive.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Hashable, Iterator
from operator import itemgetter
from typing import Generic, TypeVar

from cachetools import LRUCache
from graphql import DocumentNode, GraphQLError
from strawberry.extensions import MaskErrors, MaxTokensLimiter, SchemaExtension
from strawberry.schema.schema import validate_document
from strawberry.types import ExecutionContext

from server.infra.db import is_unavailable

from . import limits
from .errors import (
    BAD_USER_INPUT,
    GRAPHQL_PARSE_FAILED,
    GRAPHQL_VALIDATION_FAILED,
    INTERNAL_SERVER_ERROR,
    SERVICE_UNAVAILABLE,
    UNAVAILABLE_MESSAGE,
)

log = logging.getLogger("server.graphql")

MAX_TOKENS = 2_000
PARSE_CACHE_BYTES = 16 * 1024 * 1024
VALIDATION_CACHE_BYTES = 8 * 1024 * 1024
# What a parsed document keeps alive per token (tokens, nodes, locations): measured 184 B
# for a comment, 389 B for an aliased field, 606 B for a bare field with graphql-core 3.3.
TOKEN_BYTES = 640

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SizedCache(Generic[K, V]):
    """An LRU bounded by the bytes each entry is charged (the client text in its key included).

    An entry over a sixteenth of the bound is never stored, so one large document cannot
    evict the rest. Not thread-safe: the server runs on one event loop.
    """

    def __init__(self, max_bytes: int) -> None:
        self._entries: LRUCache[K, tuple[V, int]] = LRUCache(max_bytes, getsizeof=itemgetter(1))
        self.max_entry_bytes = max_bytes // 16

    @property
    def maxsize(self) -> int:
        return int(self._entries.maxsize)

    @property
    def currsize(self) -> int:
        """The bytes charged to the entries held now."""
        return int(self._entries.currsize)

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        return None if entry is None else entry[0]

    def put(self, key: K, value: V, size: int) -> None:
        if size <= self.max_entry_bytes:
            self._entries[key] = (value, size)

    def clear(self) -> None:
        self._entries.clear()

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)


def text_bytes(text: str | None) -> int:
    """What a string costs in memory (O(1): ``sys.getsizeof`` reads the object's header)."""
    return 0 if text is None else sys.getsizeof(text)


def document_bytes(query: str, document: DocumentNode) -> int:
    """What a parsed document keeps alive: its text and every token, comments included."""
    tokens = 0
    token = document.loc.start_token if document.loc is not None else None
    while token is not None:  # at most MAX_TOKENS (+ SOF/EOF): the parser counts comments
        tokens += 1
        token = token.next
    return text_bytes(query) + TOKEN_BYTES * tokens


ParseKey = tuple[str, tuple[tuple[str, object], ...]]
ValidationKey = tuple[object, str, tuple[type, ...]]

PARSED: SizedCache[ParseKey, DocumentNode] = SizedCache(PARSE_CACHE_BYTES)
"""The process's parsed documents, by text and parse options."""
VALIDATED: SizedCache[ValidationKey, list[GraphQLError]] = SizedCache(VALIDATION_CACHE_BYTES)
"""The process's validation results, by schema, text and rules."""


def parse_key(query: str, context: ExecutionContext) -> ParseKey:
    """The document's key in :data:`PARSED`: its text and the parse options."""
    return (query, tuple(sorted(context.parse_options.items())))


def validation_key(query: str, context: ExecutionContext) -> ValidationKey:
    """The document's key in :data:`VALIDATED`: the schema, its text and the rules."""
    return (context.schema._schema, query, context.validation_rules)


class TokenLimit(MaxTokensLimiter):
    def __init__(self) -> None:
        super().__init__(max_token_count=MAX_TOKENS)


class Parsing(SchemaExtension):
    """Serves a document parsed before from :data:`PARSED`; stores the ones Strawberry parses."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        query = context.query
        key: ParseKey | None = None
        if query is not None and context.graphql_document is None:
            key = parse_key(query, context)
            context.graphql_document = PARSED.get(key)
        yield
        document = context.graphql_document
        if key is not None and query is not None and document is not None and key not in PARSED:
            PARSED.put(key, document, document_bytes(query, document))


class Validation(SchemaExtension):
    """Checks the limits, then graphql-core's rules unless a limit failed; caches the result."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        assert document is not None
        schema = context.schema._schema
        rules = context.validation_rules
        key = None if context.query is None else validation_key(context.query, context)
        errors = None if key is None else VALIDATED.get(key)
        if errors is None:
            errors = limits.check(document) or validate_document(schema, document, rules)
            if key is not None and context.query is not None:
                # Errors point into the document and keep it alive; an empty list does not.
                size = text_bytes(context.query) + (document_bytes(context.query, document) if errors else 0)
                VALIDATED.put(key, errors, size)
        context.pre_execution_errors = list(errors)
        yield


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
    """The client's view of an unexpected error: no message, no traceback; logged here.

    An unavailable database is not a bug: it is told as SERVICE_UNAVAILABLE (the HTTP
    answer is then a 503 with Retry-After) and logged in a line, without a traceback.
    """
    if is_unavailable(error):
        log.warning("request %s: the database is unavailable (%s)", request_id, error.message)
        code, message = SERVICE_UNAVAILABLE, UNAVAILABLE_MESSAGE
    else:
        _log_unexpected(error, request_id)
        code, message = INTERNAL_SERVER_ERROR, "Internal server error."
    return GraphQLError(
        message=message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={"code": code, "requestId": request_id},
    )


def _has_code(error: GraphQLError) -> bool:
    return "code" in (error.extensions or {})


class ErrorPolicy(MaskErrors):
    """Every top-level error gets an ``extensions.code``; unexpected ones are masked.

    Shown as raised: :class:`~server.graphql.errors.ApiError` (FORBIDDEN, BAD_USER_INPUT, ...)
    and errors about the request itself: syntax (GRAPHQL_PARSE_FAILED), validation and the
    limits (GRAPHQL_VALIDATION_FAILED), variables that do not coerce
    (BAD_USER_INPUT). Everything else (a bug, the database gone) becomes "Internal server
    error." with INTERNAL_SERVER_ERROR and the request id, and is logged with its traceback.
    """

    def __init__(self) -> None:
        super().__init__()
        # MaskErrors keeps the callable it is given as an attribute: a bound method of ours
        # there is a reference cycle holding each execution (its context, loaders and rows)
        # for the cyclic garbage collector. The class's own should_mask_error answers instead.
        del self.should_mask_error
        self._validation_errors: list[GraphQLError] = []

    def on_validate(self) -> Iterator[None]:
        yield
        # Strawberry later stores *every* error as "pre-execution"; remember which ones
        # validation produced while that is still unambiguous.
        self._validation_errors = list(self.execution_context.pre_execution_errors or ())

    def _process_result(self, result: object) -> None:
        # MaskErrors' own first asks isinstance() of a runtime-checkable Protocol, which costs
        # ~8 us on Python 3.11 for every operation; only a result with errors has any to mask.
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]  # has errors

    def should_mask_error(self, error: GraphQLError) -> bool:
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
EXTENSIONS = [ErrorPolicy, TokenLimit, Parsing, Validation]
