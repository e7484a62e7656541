"""A per-process cache of whole responses for queue reads, keyed by the queue's version.

A 50-row queue page costs too much to re-execute per request at the target rate (docs/api.md, Caching),
and the queue's data changes only through writes that bump ``account.queue_version`` in
the same transaction (arrivals, actions, pending users' activity and heartbeats, licensed
arrivals, purges). A response is therefore reusable, never stale, while the version it was
computed at is current — provided it only shows data those writes cover. :class:`Cacheable`
proves that from the document: a query whose every field, at every depth, is in
:data:`SAFE_FIELDS`. Anything else (``me``, audit, metrics with their clock, introspection,
mutations) executes every time.

The version and the data come from one read transaction (the request's session), so an
entry can never pair newer data with an older version or the reverse.

Both caches here are keyed by client text (the document, the variables), so both are bounded
by bytes, keys included, and never hold one entry over a sixteenth of their bound.
"""

from __future__ import annotations

import json
from functools import cached_property
from typing import Any

from graphql import GraphQLError, GraphQLSchema, OperationType, parse
from graphql.language import BREAK, FieldNode, OperationDefinitionNode, Visitor, visit
from graphql.utilities import TypeInfo, TypeInfoVisitor

from .extensions import MAX_TOKENS, SizedCache, text_bytes

SAFE_FIELDS: dict[str, frozenset[str]] = {
    "Query": frozenset({"pendingUsers", "account"}),
    "UserConnection": frozenset({"edges", "pageInfo", "totalCount"}),
    "UserEdge": frozenset({"cursor", "node"}),
    "PageInfo": frozenset({"hasNextPage", "endCursor"}),
    # Only pending users (and, through Agent.user, the same pending users) are reachable.
    "User": frozenset(
        {"id", "displayName", "status", "firstSeenAt", "lastSeenAt", "licensedAt", "agents", "pending"}
    ),
    "Agent": frozenset({"id", "deviceName", "domain", "logonName", "firstSeenAt", "lastSeenAt", "user"}),
    "PendingInfo": frozenset(
        {
            "reason",
            "enteredAt",
            "retainedEventCount",
            "retainedActiveSeconds",
            "oldestRetainedAt",
            "dataExpiresAt",
            # Not "overdue": it changes with the clock, not with a write.
            "dueAt",
        }
    ),
    "Account": frozenset(
        {
            "id",
            "name",
            "licenseLimit",
            "licensesUsed",
            "licensesAvailable",
            "pendingCount",
            "manualReview",
            "retentionDays",
            "queueVersion",
            "autoApprove",
            "autoApproveDomains",
            "queueTargetHours",
        }
    ),
}

CacheKey = tuple[int, int, str, str, str, str | None]

CACHEABLE_BYTES = 4 * 1024 * 1024
# What a cache entry costs beyond the text it holds: the tuples, ints and the LRU's links.
ENTRY_BYTES = 512


class _SafeFields(Visitor):
    def __init__(self, type_info: TypeInfo) -> None:
        super().__init__()
        self.type_info = type_info
        self.safe = True

    def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> Any:
        if node.operation is not OperationType.QUERY:
            self.safe = False
            return BREAK
        return None

    def enter_field(self, node: FieldNode, *_: Any) -> Any:
        name = node.name.value
        if name == "__typename":
            return None
        parent = self.type_info.get_parent_type()
        if parent is None or name not in SAFE_FIELDS.get(parent.name, ()):
            self.safe = False
            return BREAK
        return None


class Cacheable:
    """``cacheable(query)``: whether every operation and fragment in ``query`` reads only
    cache-safe fields; remembered by query text in :attr:`known`."""

    def __init__(self, schema: GraphQLSchema, max_bytes: int = CACHEABLE_BYTES) -> None:
        self.schema = schema
        self.known: SizedCache[str, bool] = SizedCache(max_bytes)

    def __call__(self, query: str) -> bool:
        safe = self.known.get(query)
        if safe is None:
            safe = self._reads_only_safe_fields(query)
            self.known.put(query, safe, text_bytes(query) + ENTRY_BYTES)
        return safe

    def _reads_only_safe_fields(self, query: str) -> bool:
        try:
            document = parse(query, max_tokens=MAX_TOKENS)
        except GraphQLError:
            return False
        type_info = TypeInfo(self.schema)
        checker = _SafeFields(type_info)
        visit(document, TypeInfoVisitor(type_info, checker))
        return checker.safe


class ResponseCache:
    """A bounded LRU of encoded responses, by the bytes of their bodies and keys."""

    def __init__(self, schema: GraphQLSchema, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.entries: SizedCache[CacheKey, bytes] = SizedCache(max_bytes)
        self.hits = 0
        self.misses = 0
        self.cacheable = Cacheable(schema)

    def lookup(self, query: str, variables: Any, operation_name: str | None) -> Lookup:
        """One request's look-ups: see :class:`Lookup`."""
        return Lookup(self, query, variables, operation_name)

    def get(self, key: CacheKey) -> bytes | None:
        body = self.entries.get(key)
        if body is None:
            self.misses += 1
            return None
        self.hits += 1
        return body

    def put(self, key: CacheKey, body: bytes) -> None:
        if key in self.entries:
            return
        _, _, role, query, variables, operation_name = key
        size = len(body) + ENTRY_BYTES + sum(map(text_bytes, (role, query, variables, operation_name)))
        self.entries.put(key, body, size)

    def __len__(self) -> int:
        return len(self.entries)


class Lookup:
    """One request's look-ups in a :class:`ResponseCache`, its key's request part worked out once.

    A request is looked up twice on SQLite: with the token's synchronous read, then, on a
    miss, in the request's read session. The request's part of the key (whether the document
    is cacheable, the variables as canonical JSON, the operation's name) is the same for
    both, so it is worked out once, at the first look-up; each look-up adds only who asks and
    the queue version it read. Not before the first: that comes after the token checked out,
    so an unauthenticated request never has its document parsed.
    """

    def __init__(self, cache: ResponseCache, query: str, variables: Any, operation_name: str | None) -> None:
        self.cache = cache
        self.query = query
        self.variables = variables
        self.operation_name = operation_name

    @cached_property
    def _request_part(self) -> tuple[str, str, str | None] | None:
        """The request's part of the key; ``None`` when its document is not provably cacheable."""
        if not self.cache.cacheable(self.query):
            return None
        try:
            canonical = json.dumps(self.variables, sort_keys=True, separators=(",", ":"))
        except (TypeError, ValueError):
            return None
        return (self.query, canonical, self.operation_name)

    @property
    def never_served(self) -> bool:
        """Whether the document is already known not to be cacheable (from an earlier
        request's look-up: this parses nothing), so no look-up can be a hit."""
        return self.cache.cacheable.known.get(self.query) is False

    def key(self, account_id: int, queue_version: int, role: str) -> CacheKey | None:
        """The key for this request as ``role`` of the account sees it at ``queue_version``."""
        part = self._request_part
        return None if part is None else (account_id, queue_version, role, *part)
