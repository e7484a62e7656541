"""The client's only way to the server: a typed wrapper over gql.

Queries and mutations go over HTTP (one pooled httpx client); the live queue arrives over
a ``graphql-transport-ws`` websocket. Expected failures in a mutation payload's ``errors``,
top-level GraphQL errors and transport failures all surface as :class:`ApiError`, with
:class:`ConnectionLost` for "the server did not answer" so callers can tell the two apart.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

import httpx
from gql import Client, GraphQLRequest
from gql.client import AsyncClientSession
from gql.transport.exceptions import (
    TransportClosed,
    TransportConnectionFailed,
    TransportError,
    TransportProtocolError,
    TransportQueryError,
    TransportServerError,
)
from gql.transport.httpx import HTTPXAsyncTransport
from gql.transport.websockets import WebsocketsTransport

from tui_client import operations as ops

T = TypeVar("T")

MAX_IDS = 500  # the server refuses bulk inputs over this (SPEC §7)


# ---------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class UserError:
    code: str
    message: str
    field: str | None = None


class ApiError(Exception):
    """A failure to show the admin: a refused action, a GraphQL error, a transport problem."""

    def __init__(self, message: str, code: str | None = None, errors: Sequence[UserError] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.errors = list(errors)


class ConnectionLost(ApiError):
    """The server could not be reached or did not answer."""


# ---------------------------------------------------------------------------- data


def _dt(raw: str | None) -> datetime | None:
    return None if raw is None else datetime.fromisoformat(raw)


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    license_limit: int
    licenses_used: int
    licenses_available: int
    pending_count: int
    manual_review: bool
    retention_days: int

    @classmethod
    def parse(cls, d: dict[str, Any]) -> Account:
        return cls(
            d["id"],
            d["name"],
            d["licenseLimit"],
            d["licensesUsed"],
            d["licensesAvailable"],
            d["pendingCount"],
            d["manualReview"],
            d["retentionDays"],
        )


@dataclass(frozen=True)
class Me:
    id: str
    name: str
    email: str
    role: str

    @property
    def can_act(self) -> bool:
        return self.role == "ADMIN"


@dataclass(frozen=True)
class AgentRef:
    id: str
    device_name: str
    domain: str
    logon_name: str

    @property
    def logon(self) -> str:
        return f"{self.domain}\\{self.logon_name}"


@dataclass(frozen=True)
class PendingInfo:
    reason: str
    entered_at: datetime
    retained_event_count: int
    retained_active_seconds: int
    oldest_retained_at: datetime | None
    data_expires_at: datetime | None


@dataclass(frozen=True)
class Suggestion:
    """The server's guess at who a pending user is: ASSIGN to a user, or MERGE into an agent."""

    kind: str
    score: float
    reasons: tuple[str, ...]
    # The user (ASSIGN) or agent (MERGE) id the mutation takes.
    target_id: str
    # What the admin reads: "Ann Smith", or "Ann Smith (ACME\asmith on LAPTOP-7)" for a merge.
    target: str
    target_name: str

    @classmethod
    def parse(cls, d: dict[str, Any]) -> Suggestion:
        agent = d.get("agent")
        if agent is not None:
            name = agent["user"]["displayName"]
            target = f"{name} ({agent['domain']}\\{agent['logonName']} on {agent['deviceName']})"
            return cls(d["kind"], d["score"], tuple(d["reasons"]), agent["id"], target, name)
        user = d["user"]
        return cls(
            d["kind"], d["score"], tuple(d["reasons"]), user["id"], user["displayName"], user["displayName"]
        )


@dataclass(frozen=True)
class User:
    id: str
    display_name: str
    status: str
    first_seen_at: datetime
    last_seen_at: datetime
    licensed_at: datetime | None
    agents: tuple[AgentRef, ...]
    pending: PendingInfo | None
    # The best suggestion only (the queue's column); all of them: PlmApi.suggestions.
    suggestions: tuple[Suggestion, ...] = ()

    @classmethod
    def parse(cls, d: dict[str, Any]) -> User:
        p = d.get("pending")
        pending = None
        if p is not None:
            entered = _dt(p["enteredAt"])
            assert entered is not None
            pending = PendingInfo(
                p["reason"],
                entered,
                p["retainedEventCount"],
                p["retainedActiveSeconds"],
                _dt(p["oldestRetainedAt"]),
                _dt(p["dataExpiresAt"]),
            )
        first_seen, last_seen = _dt(d["firstSeenAt"]), _dt(d["lastSeenAt"])
        assert first_seen is not None and last_seen is not None
        return cls(
            d["id"],
            d["displayName"],
            d["status"],
            first_seen,
            last_seen,
            _dt(d.get("licensedAt")),
            tuple(AgentRef(a["id"], a["deviceName"], a["domain"], a["logonName"]) for a in d["agents"]),
            pending,
            tuple(Suggestion.parse(s) for s in d.get("suggestions") or []),
        )

    def matches(self, search: str) -> bool:
        """A client-side approximation of the server's search, for live arrivals."""
        needle = search.casefold()
        hay = [self.display_name] + [f"{a.logon_name}\n{a.device_name}" for a in self.agents]
        return any(needle in h.casefold() for h in hay)


@dataclass(frozen=True)
class Agent:
    id: str
    device_name: str
    domain: str
    logon_name: str
    last_seen_at: datetime
    user_id: str
    user_display_name: str
    user_status: str

    @property
    def logon(self) -> str:
        return f"{self.domain}\\{self.logon_name}"

    @classmethod
    def parse(cls, d: dict[str, Any]) -> Agent:
        seen = _dt(d["lastSeenAt"])
        assert seen is not None
        u = d["user"]
        return cls(
            d["id"],
            d["deviceName"],
            d["domain"],
            d["logonName"],
            seen,
            u["id"],
            u["displayName"],
            u["status"],
        )


@dataclass(frozen=True)
class AuditEntry:
    id: str
    at: datetime
    actor_name: str | None
    action: str
    user_id: str
    user_display_name: str
    detail: str

    @classmethod
    def parse(cls, d: dict[str, Any]) -> AuditEntry:
        at = _dt(d["at"])
        assert at is not None
        actor = d.get("actor")
        return cls(
            d["id"],
            at,
            actor["name"] if actor else None,
            d["action"],
            d["userId"],
            d["userDisplayName"],
            d["detail"],
        )


@dataclass(frozen=True)
class QueueMetrics:
    days: int
    pending_count: int
    oldest_pending_since: datetime | None
    resolved_count: int
    average_resolution_seconds: float | None
    median_resolution_seconds: float | None
    resolved_by_action: dict[str, int]


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    total_count: int
    has_next_page: bool
    end_cursor: str | None


@dataclass(frozen=True)
class PendingPage:
    account: Account
    page: Page[User]


@dataclass(frozen=True)
class QueueEvent:
    action: str
    user_id: str
    user: User | None
    account: Account
    actor_name: str | None
    at: datetime | None
    # ASSIGNED or MERGED: the user the pending one became part of, after the change.
    target: User | None = None

    @classmethod
    def parse(cls, d: dict[str, Any]) -> QueueEvent:
        actor = d.get("actor")
        user = d.get("user")
        target = d.get("target")
        return cls(
            d["action"],
            d["userId"],
            User.parse(user) if user else None,
            Account.parse(d["account"]),
            actor["name"] if actor else None,
            _dt(d.get("at")),
            User.parse(target) if target else None,
        )


@dataclass(frozen=True)
class ActionResult:
    """What a successful mutation changed: the users it touched and the account after it."""

    account: Account
    user_ids: list[str] = field(default_factory=list)
    target: str | None = None


def _page(conn: dict[str, Any], parse: Callable[[dict[str, Any]], T]) -> Page[T]:
    info = conn["pageInfo"]
    return Page(
        [parse(e["node"]) for e in conn["edges"]], conn["totalCount"], info["hasNextPage"], info["endCursor"]
    )


def ws_url_for(http_url: str) -> str:
    if http_url.startswith("https://"):
        return "wss://" + http_url.removeprefix("https://")
    if http_url.startswith("http://"):
        return "ws://" + http_url.removeprefix("http://")
    return http_url


_TOP_LEVEL_MESSAGES = {
    "UNAUTHENTICATED": "The server refused the token; start the client with a valid --token.",
    "FORBIDDEN": "Your role can read but not act; ask an ADMIN to do this.",
    "BAD_USER_INPUT": "The server refused the request",
}


def _query_error(exc: TransportQueryError) -> ApiError:
    errors = exc.errors or []
    first: dict[str, Any] = errors[0] if errors and isinstance(errors[0], dict) else {}
    code = (first.get("extensions") or {}).get("code")
    message = str(first.get("message") or exc)
    friendly = _TOP_LEVEL_MESSAGES.get(code or "")
    if code == "BAD_USER_INPUT" and friendly:
        friendly = f"{friendly}: {message}"
    return ApiError(friendly or message, code)


def _server_error(exc: TransportServerError) -> ApiError:
    if exc.code == 401:
        return ApiError(_TOP_LEVEL_MESSAGES["UNAUTHENTICATED"], "UNAUTHENTICATED")
    if exc.code is not None and exc.code >= 500:
        return ConnectionLost(f"The server failed to answer (HTTP {exc.code}).", "SERVER_ERROR")
    return ApiError(f"The server refused the request (HTTP {exc.code}).", f"HTTP_{exc.code}")


# ---------------------------------------------------------------------------- client


class PlmApi:
    """Typed async methods over the contract; safe to call from several workers at once."""

    def __init__(self, url: str, token: str, *, timeout: float = 15.0) -> None:
        self.url = url
        self.ws_url = ws_url_for(url)
        self.token = token
        self.timeout = timeout
        self._client: Client | None = None
        self._session: AsyncClientSession | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    # -- lifecycle

    async def _http(self) -> AsyncClientSession:
        async with self._lock:
            if self._closed:
                # A worker that started while the app shut down: never open a new connection
                # nobody would close.
                raise ConnectionLost("The client is closed.", "CLOSED")
            if self._session is None:
                transport = HTTPXAsyncTransport(
                    url=self.url,
                    headers={"Authorization": f"Bearer {self.token}"},
                    timeout=self.timeout,
                )
                self._client = Client(transport=transport, fetch_schema_from_transport=False)
                self._session = await self._client.connect_async()  # type: ignore[no-untyped-call]
            assert self._session is not None
            return self._session

    async def close(self) -> None:
        async with self._lock:
            self._closed = True
            if self._client is not None:
                client, self._client, self._session = self._client, None, None
                with contextlib.suppress(TransportError, httpx.HTTPError, OSError):
                    await client.close_async()  # type: ignore[no-untyped-call]

    async def _execute(self, document: str, **variables: Any) -> dict[str, Any]:
        session = await self._http()
        request = GraphQLRequest(document, variable_values=variables)
        try:
            result = await session.execute(request)
        except TransportQueryError as exc:
            raise _query_error(exc) from None
        except TransportServerError as exc:
            raise _server_error(exc) from None
        except (TransportConnectionFailed, TransportClosed, httpx.TransportError, OSError) as exc:
            raise ConnectionLost(f"Cannot reach the server at {self.url}.", "UNREACHABLE") from exc
        except TransportProtocolError as exc:
            raise ApiError(f"The server sent an answer the client does not understand: {exc}") from None
        return result

    @staticmethod
    def _payload(data: dict[str, Any], name: str) -> dict[str, Any]:
        payload: dict[str, Any] = data[name]
        errors = [UserError(e["code"], e["message"], e.get("field")) for e in payload.get("errors") or []]
        if errors:
            raise ApiError("; ".join(e.message for e in errors), errors[0].code, errors)
        return payload

    # -- queries

    async def bootstrap(self) -> tuple[Me, Account]:
        data = await self._execute(ops.BOOTSTRAP)
        me = data["me"]
        return Me(me["id"], me["name"], me["email"], me["role"]), Account.parse(data["account"])

    async def account(self) -> Account:
        data = await self._execute(ops.ACCOUNT)
        return Account.parse(data["account"])

    async def pending_users(
        self, first: int = 100, after: str | None = None, search: str | None = None, reason: str | None = None
    ) -> PendingPage:
        data = await self._execute(
            ops.PENDING_USERS, first=first, after=after, search=search or None, reason=reason
        )
        return PendingPage(Account.parse(data["account"]), _page(data["pendingUsers"], User.parse))

    async def users(
        self, first: int = 100, after: str | None = None, search: str | None = None, status: str | None = None
    ) -> Page[User]:
        data = await self._execute(ops.USERS, first=first, after=after, search=search or None, status=status)
        return _page(data["users"], User.parse)

    async def agents(
        self, first: int = 50, after: str | None = None, search: str | None = None
    ) -> Page[Agent]:
        data = await self._execute(ops.AGENTS, first=first, after=after, search=search or None)
        return _page(data["agents"], Agent.parse)

    async def audit_log(self, first: int = 100, after: str | None = None) -> Page[AuditEntry]:
        data = await self._execute(ops.AUDIT_LOG, first=first, after=after)
        return _page(data["auditLog"], AuditEntry.parse)

    async def suggestions(self, user_id: str) -> list[Suggestion] | None:
        """All of a pending user's suggestions, best first; None if the user is gone."""
        user = (await self._execute(ops.SUGGESTIONS, id=user_id))["user"]
        return None if user is None else [Suggestion.parse(s) for s in user["suggestions"]]

    async def queue_metrics(self, days: int = 30) -> QueueMetrics:
        m = (await self._execute(ops.QUEUE_METRICS, days=days))["queueMetrics"]
        return QueueMetrics(
            days,
            m["pendingCount"],
            _dt(m["oldestPendingSince"]),
            m["resolvedCount"],
            m["averageResolutionSeconds"],
            m["medianResolutionSeconds"],
            {r["action"]: r["count"] for r in m["resolvedByAction"]},
        )

    # -- mutations

    async def approve(self, user_ids: Sequence[str]) -> ActionResult:
        data = await self._execute(ops.APPROVE_PENDING_USERS, userIds=list(user_ids))
        p = self._payload(data, "approvePendingUsers")
        return ActionResult(Account.parse(p["account"]), [u["id"] for u in p["approved"]])

    async def assign(self, pending_user_id: str, target_user_id: str) -> ActionResult:
        data = await self._execute(
            ops.ASSIGN_PENDING_USER, pendingUserId=pending_user_id, targetUserId=target_user_id
        )
        p = self._payload(data, "assignPendingUser")
        user = p.get("user") or {}
        return ActionResult(Account.parse(p["account"]), [pending_user_id], user.get("displayName"))

    async def merge(self, pending_user_id: str, target_agent_id: str) -> ActionResult:
        data = await self._execute(
            ops.MERGE_PENDING_USER, pendingUserId=pending_user_id, targetAgentId=target_agent_id
        )
        p = self._payload(data, "mergePendingUser")
        agent = p.get("agent")
        target = None
        if agent:
            login = f"{agent['domain']}\\{agent['logonName']}"
            target = f"{agent['user']['displayName']} ({login} on {agent['deviceName']})"
        return ActionResult(Account.parse(p["account"]), [pending_user_id], target)

    async def remove(self, user_ids: Sequence[str], do_not_track: bool) -> ActionResult:
        data = await self._execute(ops.REMOVE_USERS, userIds=list(user_ids), doNotTrack=do_not_track)
        p = self._payload(data, "removeUsers")
        return ActionResult(Account.parse(p["account"]), list(p["removedUserIds"]))

    async def update_settings(
        self, *, manual_review: bool | None = None, license_limit: int | None = None
    ) -> Account:
        data = await self._execute(
            ops.UPDATE_ACCOUNT_SETTINGS, manualReview=manual_review, licenseLimit=license_limit
        )
        return Account.parse(self._payload(data, "updateAccountSettings")["account"])

    # -- the live queue

    async def queue_events(self, on_connected: Callable[[], None] | None = None) -> AsyncIterator[QueueEvent]:
        """Yield queue events until the stream ends or fails; ``on_connected`` runs once acked.

        The caller owns reconnection: any failure raises (:class:`ConnectionLost` when the
        server is unreachable) and the generator is done.
        """
        transport = WebsocketsTransport(
            url=self.ws_url,
            init_payload={"Authorization": f"Bearer {self.token}"},
            subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
            connect_timeout=5,
            ack_timeout=5,
            close_timeout=2,
            # graphql-transport-ws pings notice a half-open connection the OS would not report.
            ping_interval=15,
            pong_timeout=10,
        )
        client = Client(transport=transport, fetch_schema_from_transport=False)
        try:
            async with client as session:
                if on_connected is not None:
                    on_connected()
                async for data in session.subscribe(GraphQLRequest(ops.PENDING_QUEUE_CHANGED)):
                    yield QueueEvent.parse(data["pendingQueueChanged"])
        except TransportQueryError as exc:
            raise _query_error(exc) from None
        except TransportServerError as exc:
            raise _server_error(exc) from None
        except (TimeoutError, TransportError, OSError) as exc:
            raise ConnectionLost(
                f"Live updates from {self.ws_url} stopped: {exc or type(exc).__name__}"
            ) from exc
        except Exception as exc:
            # websockets raises its own ConnectionClosed/InvalidStatus types here.
            if type(exc).__module__.startswith("websockets"):
                raise ConnectionLost(f"Live updates from {self.ws_url} stopped: {exc}") from exc
            raise
