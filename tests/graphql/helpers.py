"""Drivers for GraphQL tests: run a document through ``schema.execute`` as a given token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from server.domain import auth
from server.graphql.context import Context
from server.graphql.schema import schema
from server.web.runtime import Services


@dataclass
class Result:
    data: Any
    errors: list[dict[str, Any]]

    def ok(self) -> Any:
        assert not self.errors, self.errors
        return self.data

    @property
    def codes(self) -> list[str | None]:
        return [(e.get("extensions") or {}).get("code") for e in self.errors]


class Gql:
    """``await gql(token, query, **variables)``: the schema executed as that token's admin."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def __call__(self, token: str, query: str, **variables: Any) -> Result:
        async with self.services.db.read() as session:
            found = await auth.authenticate(session, token)
            assert found is not None, "test token does not authenticate"
            ctx = Context.create(self.services, session, *found)
            try:
                result = await schema.execute(query, variable_values=variables or None, context_value=ctx)
            finally:
                await ctx.close()
        errors = [e.formatted for e in result.errors or []]
        return Result(result.data, errors)


PENDING_PAGE = """
query Page(
  $first: Int!, $after: String, $search: String, $reason: PendingReason, $orderBy: PendingOrder! = ENTERED_ASC
) {
  pendingUsers(first: $first, after: $after, search: $search, reason: $reason, orderBy: $orderBy) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges {
      cursor
      node {
        id displayName status firstSeenAt lastSeenAt licensedAt
        agents { id deviceName domain logonName firstSeenAt lastSeenAt user { id } }
        pending { reason enteredAt retainedEventCount retainedActiveSeconds oldestRetainedAt dataExpiresAt }
      }
    }
  }
}
"""

ACCOUNT = """
{ account { id name licenseLimit licensesUsed licensesAvailable pendingCount manualReview retentionDays } }
"""


def ids(connection: dict[str, Any]) -> list[str]:
    return [e["node"]["id"] for e in connection["edges"]]
