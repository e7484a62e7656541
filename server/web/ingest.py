"""The Starlette endpoint for agents: ``POST /ingest``.

Every answer but 202 tells the agent what to do: 400/413 drop the batch (it will never be
stored), 401 fix the key, 503 with ``Retry-After`` retry the same batch later (the database
is unavailable or the server is shedding load; a replay is never stored twice).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from server.domain.activity.batch import BatchInvalid, BatchTooLarge, parse_batch
from server.domain.auth import authenticate_ingest, hash_secret
from server.infra.db import is_unavailable
from server.infra.group_commit import Overloaded, ShuttingDown
from server.web import runtime
from server.web.http import MAX_BODY_BYTES, bearer_token, read_body

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "1"


def error(status: int, code: str, message: str, details: Any = None, **headers: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, "details": details if details is not None else []}},
        status_code=status,
        headers=headers or None,
    )


def unavailable() -> JSONResponse:
    return error(
        503,
        "UNAVAILABLE",
        "the server cannot store batches right now; retry the same batch",
        **{"Retry-After": RETRY_AFTER_SECONDS},
    )


async def _account_for(svc: runtime.Services, key: str) -> int | None:
    digest = hash_secret(key)
    cached = svc.ingest_keys.get(digest)
    if cached is not None:
        return cached
    async with svc.db.read() as session:
        account_id = await authenticate_ingest(session, key)
    if account_id is not None:
        # Ingest keys never change owner; a per-process LRU spares a query per batch.
        svc.ingest_keys[digest] = account_id
    return account_id


async def ingest(request: Request) -> JSONResponse:
    svc = runtime.of(request.app)
    key = bearer_token(request.headers.get("authorization"))
    try:
        account_id = await _account_for(svc, key) if key else None
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        log.warning("ingest could not check a key: %s", exc)
        return unavailable()
    if account_id is None:
        return error(
            401, "UNAUTHENTICATED", "a valid account ingest key is required (Authorization: Bearer …)"
        )
    body = await read_body(request, MAX_BODY_BYTES)
    if body is None:
        return error(413, "PAYLOAD_TOO_LARGE", f"the body is over {MAX_BODY_BYTES} bytes")
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError) as exc:  # incl. decode errors and over-long integers
        return error(400, "INVALID_JSON", f"the body is not JSON: {exc}")
    try:
        batch = parse_batch(decoded, svc.clock())
    except BatchTooLarge as exc:
        return error(413, "PAYLOAD_TOO_LARGE", str(exc))
    except BatchInvalid as exc:
        return error(400, "INVALID_INPUT", "the batch is not valid; nothing was stored", exc.details)
    try:
        result = await svc.committer.submit(account_id, batch)
    except (ShuttingDown, Overloaded) as exc:
        log.warning("ingest could not store a batch: %s", exc)
        return unavailable()
    except Exception as exc:
        # A lock wait past the busy timeout, no connection, a full disk: the same batch
        # will be stored when retried (and a replay is never stored twice).
        if not is_unavailable(exc):
            raise
        log.warning("ingest could not store a batch: %s", exc)
        return unavailable()
    return JSONResponse(result.to_json(), status_code=202)
