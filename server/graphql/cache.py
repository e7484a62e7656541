"""A per-process cache of whole responses for queue reads, keyed by the queue's version.

SPEC §9: a 50-row queue page costs too much to re-execute per request at the target rate,
and the queue's data changes only through writes that bump ``account.queue_version`` in
the same transaction (arrivals, actions, pending users' activity and heartbeats, licensed
arrivals, purges). A response is therefore reusable, never stale, while the version it was
computed at is current — provided it only shows data those writes cover. :func:`cacheable`
proves that from the document: a query whose every field, at every depth, is in
:data:`SAFE_FIELDS`. Anything else (``me``, audit, metrics with their clock, introspection,
mutations) executes every time.

The version and the data come from one read transaction (the request's session), so an
entry can never pair newer data with an older version or the reverse.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from functools import lru_cache
from typing import Any

from graphql import GraphQLError, GraphQLSchema, OperationType, parse
from graphql.language import BREAK, FieldNode, OperationDefinitionNode, Visitor, visit
from graphql.utilities import TypeInfo, TypeInfoVisitor

from .extensions import MAX_TOKENS

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
        }
    ),
}

CacheKey = tuple[int, int, str, str, str, str | None]


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


def make_cacheable(schema: GraphQLSchema) -> Any:
    @lru_cache(maxsize=512)
    def cacheable(query: str) -> bool:
        """Whether every operation and fragment in ``query`` reads only cache-safe fields."""
        try:
            document = parse(query, max_tokens=MAX_TOKENS)
        except GraphQLError:
            return False
        type_info = TypeInfo(schema)
        checker = _SafeFields(type_info)
        visit(document, TypeInfoVisitor(type_info, checker))
        return checker.safe

    return cacheable


class ResponseCache:
    """A bounded LRU of encoded responses (by entries and by bytes)."""

    def __init__(
        self, schema: GraphQLSchema, max_entries: int = 1024, max_bytes: int = 64 * 1024 * 1024
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_entry_bytes = max_bytes // 16
        self._entries: OrderedDict[CacheKey, bytes] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0
        self.cacheable = make_cacheable(schema)

    def key(
        self,
        account_id: int,
        queue_version: int,
        role: str,
        query: str,
        variables: Any,
        operation_name: str | None,
    ) -> CacheKey | None:
        """The key for this request, or ``None`` when its document is not provably cacheable."""
        if not self.cacheable(query):
            return None
        try:
            canonical = json.dumps(variables, sort_keys=True, separators=(",", ":"))
        except (TypeError, ValueError):
            return None
        return (account_id, queue_version, role, query, canonical, operation_name)

    def get(self, key: CacheKey) -> bytes | None:
        body = self._entries.get(key)
        if body is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return body

    def put(self, key: CacheKey, body: bytes) -> None:
        if len(body) > self.max_entry_bytes or key in self._entries:
            return
        self._entries[key] = body
        self._bytes += len(body)
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            _, dropped = self._entries.popitem(last=False)
            self._bytes -= len(dropped)

    def __len__(self) -> int:
        return len(self._entries)
