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
from typing import Any

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
from tui_client.parsing import parse, parse_page
from tui_client.settings_change import SettingsChange
from tui_client.types import (
    Account,
    Agent,
    AuditEntry,
    Me,
    OwnedAgent,
    Page,
    PendingPage,
    QueueEvent,
    QueueMetrics,
    SeatPlan,
    Suggestion,
    User,
    UserDetail,
    UserError,
)
from tui_client.undo import Restored

MAX_IDS = 500  # the server refuses bulk inputs over this (docs/api.md)


# ---------------------------------------------------------------------------- errors


class ApiError(Exception):
    """A failure to show the admin: a refused action, a GraphQL error, a transport problem."""

    def __init__(self, message: str, code: str | None = None, errors: Sequence[UserError] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.errors = list(errors)


class ConnectionLost(ApiError):
    """The server could not be reached or did not answer."""


class RateLimited(ApiError):
    """The server refused for now (HTTP 429, ``RATE_LIMITED``): retry after ``retry_after`` s."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, "RATE_LIMITED")
        self.retry_after = max(1, retry_after)


# A request refused for rate limiting is sent again after the server's Retry-After, this
# many times at most; then the refusal reaches the caller like any other error.
RATE_LIMIT_RETRIES = 3


@dataclass(frozen=True)
class ActionResult:
    """What a successful mutation changed: the users it touched and the account after it."""

    account: Account
    user_ids: list[str] = field(default_factory=list)
    target: str | None = None


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
    extensions = first.get("extensions") or {}
    code = extensions.get("code")
    message = str(first.get("message") or exc)
    if code == "RATE_LIMITED":
        seconds = extensions.get("retryAfter")
        return RateLimited(message, seconds if isinstance(seconds, int) else 1)
    friendly = _TOP_LEVEL_MESSAGES.get(code or "")
    if code == "BAD_USER_INPUT" and friendly:
        friendly = f"{friendly}: {message}"
    return ApiError(friendly or message, code)


def _server_error(exc: TransportServerError) -> ApiError:
    if exc.code == 401:
        return ApiError(_TOP_LEVEL_MESSAGES["UNAUTHENTICATED"], "UNAUTHENTICATED")
    if exc.code == 429:
        return RateLimited("The server asks the client to slow down.", 1)
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
        # Live connections still open: closed with the client if their worker did not finish.
        self._live: set[WebsocketsTransport] = set()
        # Told the seconds the client waits before retrying a refused request (0: no longer
        # waiting), and that the server refused the token (revoked, rotated, unknown).
        self.on_slowdown: Callable[[int], None] | None = None
        self.on_refused: Callable[[], None] | None = None

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
                self._session = await self._client.connect_async()  # type: ignore[no-untyped-call]  # gql: unannotated
            assert self._session is not None
            return self._session

    async def close(self) -> None:
        async with self._lock:
            self._closed = True
            if self._client is not None:
                client, self._client, self._session = self._client, None, None
                with contextlib.suppress(TransportError, httpx.HTTPError, OSError):
                    await client.close_async()  # type: ignore[no-untyped-call]  # gql: unannotated
        for transport in list(self._live):
            with contextlib.suppress(Exception):
                await transport.close()

    async def _execute(self, document: str, **variables: Any) -> dict[str, Any]:
        """Send a request; wait and send it again when the server says to slow down."""
        for attempt in range(RATE_LIMIT_RETRIES + 1):
            try:
                result = await self._send(document, **variables)
            except RateLimited as exc:
                if attempt == RATE_LIMIT_RETRIES:
                    raise
                self._slowdown(exc.retry_after)
                await asyncio.sleep(exc.retry_after)
                continue
            except ApiError as exc:
                if exc.code == "UNAUTHENTICATED" and self.on_refused is not None:
                    self.on_refused()
                raise
            if attempt:
                self._slowdown(0)
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def _slowdown(self, seconds: int) -> None:
        if self.on_slowdown is not None:
            self.on_slowdown(seconds)

    async def _send(self, document: str, **variables: Any) -> dict[str, Any]:
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
        errors = [parse(UserError, e) for e in payload.get("errors") or []]
        if errors:
            raise ApiError("; ".join(e.message for e in errors), errors[0].code, errors)
        return payload

    # -- queries

    async def bootstrap(self) -> tuple[Me, Account]:
        data = await self._execute(ops.BOOTSTRAP)
        return parse(Me, data["me"]), parse(Account, data["account"])

    async def account(self) -> Account:
        data = await self._execute(ops.ACCOUNT)
        return parse(Account, data["account"])

    async def pending_users(
        self, first: int = 100, after: str | None = None, search: str | None = None, reason: str | None = None
    ) -> PendingPage:
        data = await self._execute(
            ops.PENDING_USERS, first=first, after=after, search=search or None, reason=reason
        )
        page = parse_page(data["pendingUsers"], User)
        return PendingPage(
            account=parse(Account, data["account"]),
            items=page.items,
            total_count=page.total_count,
            has_next_page=page.has_next_page,
            end_cursor=page.end_cursor,
            cursors=page.cursors,
        )

    async def users(
        self, first: int = 100, after: str | None = None, search: str | None = None, status: str | None = None
    ) -> Page[User]:
        data = await self._execute(ops.USERS, first=first, after=after, search=search or None, status=status)
        return parse_page(data["users"], User)

    async def agents(
        self, first: int = 50, after: str | None = None, search: str | None = None
    ) -> Page[Agent]:
        data = await self._execute(ops.AGENTS, first=first, after=after, search=search or None)
        return parse_page(data["agents"], Agent)

    async def audit_log(self, first: int = 100, after: str | None = None) -> Page[AuditEntry]:
        data = await self._execute(ops.AUDIT_LOG, first=first, after=after)
        return parse_page(data["auditLog"], AuditEntry)

    async def suggestions(self, user_id: str) -> list[Suggestion] | None:
        """All of a pending user's suggestions, best first; None if the user is gone."""
        user = (await self._execute(ops.SUGGESTIONS, id=user_id))["user"]
        return None if user is None else [parse(Suggestion, s) for s in user["suggestions"]]

    async def user_detail(self, user_id: str, days: int) -> UserDetail | None:
        """One user as the detail pane shows it, activity over ``days``; None if the user is gone."""
        user = (await self._execute(ops.USER_DETAIL, id=user_id, days=days))["user"]
        return None if user is None else parse(UserDetail, user)

    async def preview_approval(self, user_ids: Sequence[str]) -> SeatPlan:
        """What approving these users would do now; nothing changes."""
        data = await self._execute(ops.PREVIEW_APPROVAL, userIds=list(user_ids))
        return parse(SeatPlan, data["previewApproval"])

    async def preview_settings(self, change: SettingsChange) -> SeatPlan:
        """What a settings change would do now (who the rule would approve, who a lower limit
        would move); nothing changes. A domain the server refuses is in the plan's ``errors``."""
        data = await self._execute(ops.PREVIEW_ACCOUNT_SETTINGS, input=change.as_input())
        return parse(SeatPlan, data["previewAccountSettings"])

    async def inactive_users(self, days: int, first: int = 100, after: str | None = None) -> Page[User]:
        """Licensed users with no activity in the last ``days`` days, idle longest first."""
        data = await self._execute(ops.INACTIVE_USERS, days=days, first=first, after=after)
        return parse_page(data["inactiveUsers"], User)

    async def queue_metrics(self, days: int = 30) -> QueueMetrics:
        metrics = (await self._execute(ops.QUEUE_METRICS, days=days))["queueMetrics"]
        return parse(QueueMetrics, {**metrics, "days": days})

    # -- mutations

    async def approve(self, user_ids: Sequence[str], expected_version: str | None = None) -> ActionResult:
        """Approve, all or nothing; with ``expected_version`` (a plan's) only if the queue has not
        changed since that plan (else :class:`ApiError` with code ``PLAN_CHANGED``)."""
        data = await self._execute(
            ops.APPROVE_PENDING_USERS, userIds=list(user_ids), expectedQueueVersion=expected_version
        )
        p = self._payload(data, "approvePendingUsers")
        return ActionResult(parse(Account, p["account"]), [u["id"] for u in p["approved"]])

    async def assign(self, pending_user_id: str, target_user_id: str) -> ActionResult:
        data = await self._execute(
            ops.ASSIGN_PENDING_USER, pendingUserId=pending_user_id, targetUserId=target_user_id
        )
        p = self._payload(data, "assignPendingUser")
        user = p.get("user") or {}
        return ActionResult(parse(Account, p["account"]), [pending_user_id], user.get("displayName"))

    async def merge(self, pending_user_id: str, target_agent_id: str) -> ActionResult:
        data = await self._execute(
            ops.MERGE_PENDING_USER, pendingUserId=pending_user_id, targetAgentId=target_agent_id
        )
        p = self._payload(data, "mergePendingUser")
        agent = p.get("agent")
        target = parse(OwnedAgent, agent).label if agent else None
        return ActionResult(parse(Account, p["account"]), [pending_user_id], target)

    async def remove(self, user_ids: Sequence[str], do_not_track: bool) -> ActionResult:
        data = await self._execute(ops.REMOVE_USERS, userIds=list(user_ids), doNotTrack=do_not_track)
        p = self._payload(data, "removeUsers")
        return ActionResult(parse(Account, p["account"]), list(p["removedUserIds"]))

    async def undo(self, entry_ids: Sequence[str]) -> tuple[Account, list[Restored]]:
        """Undo audit entries, all or nothing: the account after, and the users as they are now."""
        data = await self._execute(ops.UNDO_ACTIONS, auditEntryIds=list(entry_ids))
        p = self._payload(data, "undoActions")
        return parse(Account, p["account"]), [parse(Restored, u) for u in p["users"]]

    async def update_settings(self, change: SettingsChange, expected_version: str | None = None) -> Account:
        """Change settings; with ``expected_version`` only if the queue has not changed since
        that plan (else :class:`ApiError` with code ``PLAN_CHANGED``)."""
        data = await self._execute(ops.UPDATE_ACCOUNT_SETTINGS, input=change.as_input(expected_version))
        return parse(Account, self._payload(data, "updateAccountSettings")["account"])

    async def release(self, user_ids: Sequence[str]) -> ActionResult:
        """Move licensed users to the queue (reason RELEASED), all or nothing."""
        data = await self._execute(ops.RELEASE_LICENSES, userIds=list(user_ids))
        p = self._payload(data, "releaseLicenses")
        return ActionResult(parse(Account, p["account"]), [u["id"] for u in p["released"]])

    async def swap(self, release_user_id: str, approve_user_id: str) -> ActionResult:
        """Release one licensed user and license one pending user, in one transaction."""
        data = await self._execute(
            ops.SWAP_LICENSE, releaseUserId=release_user_id, approveUserId=approve_user_id
        )
        p = self._payload(data, "swapLicense")
        return ActionResult(parse(Account, p["account"]), [release_user_id, approve_user_id])

    # -- the live queue

    async def queue_events(self, on_connected: Callable[[], None] | None = None) -> AsyncIterator[QueueEvent]:
        """Yield queue events until the stream ends or fails; ``on_connected`` runs once acked.

        The caller owns reconnection: any failure raises (:class:`ConnectionLost` when the
        server is unreachable) and the generator is done.
        """
        if self._closed:
            raise ConnectionLost("The client is closed.", "CLOSED")
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
        self._live.add(transport)
        try:
            try:
                session = await client.connect_async()  # type: ignore[no-untyped-call]  # gql: unannotated
            except BaseException:
                # gql closes nothing when its connect is interrupted after the handshake
                # (cancelled, say, while it waits for the server's ack): the socket would stay
                # open until the garbage collector finds it. Close it here.
                with contextlib.suppress(Exception):
                    await transport.close()
                raise
            try:
                if on_connected is not None:
                    on_connected()
                async for data in session.subscribe(GraphQLRequest(ops.PENDING_QUEUE_CHANGED)):
                    yield parse(QueueEvent, data["pendingQueueChanged"])
            finally:
                await client.close_async()  # type: ignore[no-untyped-call]  # gql: unannotated
        except TransportQueryError as exc:
            raise _query_error(exc) from None
        except TransportServerError as exc:
            raise _server_error(exc) from None
        except (TimeoutError, TransportError, OSError) as exc:
            if (refused := _closed_with(exc)) is not None:
                raise refused from None
            raise ConnectionLost(
                f"Live updates from {self.ws_url} stopped: {exc or type(exc).__name__}"
            ) from exc
        except Exception as exc:
            # websockets raises its own ConnectionClosed/InvalidStatus types here.
            if (refused := _closed_with(exc)) is not None:
                raise refused from None
            if type(exc).__module__.startswith("websockets"):
                raise ConnectionLost(f"Live updates from {self.ws_url} stopped: {exc}") from exc
            raise
        finally:
            self._live.discard(transport)


def _closed_with(exc: BaseException) -> ApiError | None:
    """The server's refusal behind a closed websocket: 4403 (the token no longer works) or
    4429 (too many sockets for the token); ``None`` for any other end."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        close = getattr(current, "rcvd", None)
        code = getattr(close, "code", None)
        if code == 4403:
            return ApiError(_TOP_LEVEL_MESSAGES["UNAUTHENTICATED"], "UNAUTHENTICATED")
        if code == 4429:
            return RateLimited("The server allows no more live connections for this token now.", 5)
        current = current.__cause__ or current.__context__
    return None
