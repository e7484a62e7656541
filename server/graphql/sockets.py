"""The websockets this process holds open, by token: the per-token cap and revocation.

* At most ``PLM_MAX_WS_PER_TOKEN`` sockets per token in one process; one more is closed
  with :data:`CLOSE_TOO_MANY` (4429) right after its ``connection_init``.
* A token revoked or rotated anywhere (``plm admin revoke`` in another process, another
  server process, the CLI on SQLite) closes its open sockets with :data:`CLOSE_REVOKED`
  (4403) within :data:`REVOCATION_CHECK_SECONDS` or so: every second, while sockets are
  open, one indexed read asks which of their tokens still authenticate. A read rather than
  a notification: it needs no broadcaster (the CLI on SQLite has none to reach the server
  with), and no lost notification can leave a revoked socket open. Operations on a socket
  re-authenticate anyway (:mod:`server.graphql.live`); this closes the subscriptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict

import sqlalchemy as sa
from sqlmodel import col

from server.domain.auth import hash_secret
from server.domain.models import Admin
from server.infra.db import Database, is_unavailable

from .context import Context

log = logging.getLogger(__name__)

CLOSE_REVOKED = 4403
CLOSE_TOO_MANY = 4429
REVOKED_REASON = "the token was revoked or rotated"
TOO_MANY_REASON = "too many open websockets for this token"
REVOCATION_CHECK_SECONDS = 1.0
_CHUNK = 500


class TooManySockets(Exception):
    """The token already has its share of open websockets in this process."""


class OpenSockets:
    def __init__(self, max_per_token: int, interval: float = REVOCATION_CHECK_SECONDS) -> None:
        self.max_per_token = max_per_token
        self.interval = interval
        self._by_token: defaultdict[str, set[Context]] = defaultdict(set)
        self._token_of: dict[Context, str] = {}
        self._changed = asyncio.Event()

    def open(self, ctx: Context, token: str) -> None:
        """Count an authenticated socket; :class:`TooManySockets` if its token is at the cap."""
        digest = hash_secret(token)
        sockets = self._by_token[digest]
        if len(sockets) >= self.max_per_token:
            if not sockets:
                del self._by_token[digest]
            raise TooManySockets(TOO_MANY_REASON)
        sockets.add(ctx)
        self._token_of[ctx] = digest
        self._notify()

    def close(self, ctx: Context) -> None:
        digest = self._token_of.pop(ctx, None)
        if digest is None:
            return
        sockets = self._by_token.get(digest)
        if sockets is not None:
            sockets.discard(ctx)
            if not sockets:
                del self._by_token[digest]
        self._notify()

    def count(self) -> int:
        return len(self._token_of)

    async def wait_for_count(self, count: int) -> None:
        """Until exactly ``count`` sockets are open (tests act once the server saw a close)."""
        while self.count() != count:
            await self._changed.wait()

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def sweep(self, db: Database) -> int:
        """Close the sockets whose token no longer authenticates; how many were closed."""
        digests = list(self._by_token)
        if not digests:
            return 0
        valid: set[str] = set()
        async with db.read() as session:
            for i in range(0, len(digests), _CHUNK):
                rows = await session.execute(
                    sa.select(col(Admin.token_hash)).where(col(Admin.token_hash).in_(digests[i : i + _CHUNK]))
                )
                valid.update(rows.scalars())
        closed = 0
        for digest in digests:
            if digest in valid:
                continue
            for ctx in list(self._by_token.pop(digest, ())):
                self._token_of.pop(ctx, None)
                closed += 1
                with contextlib.suppress(Exception):  # already closing: nothing to tell
                    await ctx.request.close(code=CLOSE_REVOKED, reason=REVOKED_REASON)
        if closed:
            log.info("closed %d websocket(s) whose token was revoked or rotated", closed)
        return closed

    async def watch(self, db: Database) -> None:
        """Sweep every :attr:`interval` for the app's lifetime."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.sweep(db)
            except Exception as exc:
                # The next sweep tries again; meanwhile every operation re-authenticates.
                if not is_unavailable(exc):
                    log.exception("the revoked-token sweep failed")
                else:
                    log.warning("the revoked-token sweep could not read the database (%s)", exc)
