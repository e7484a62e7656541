"""The Starlette endpoint for agents: ``POST /ingest``.

Every answer but 202 tells the agent what to do: 400/413 drop the batch (it will never be
stored), 401 fix the key, 429 or 503 with ``Retry-After`` retry the same batch after that
long (over the key's rate limit; the database is unavailable or the server is shedding
load; a replay is never stored twice).

The key is checked against a per-process cache that re-reads it every second (a rotation
made elsewhere reaches this process that fast) and checks a rotated-out key's grace period
on every batch against the app's clock.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse

from server.domain.activity.batch import BatchInvalid, BatchTooLarge, parse_body
from server.domain.auth import IngestKeyOwner, authenticate_ingest, hash_secret
from server.infra.db import is_unavailable
from server.infra.group_commit import Overloaded, ShuttingDown
from server.infra.rate_limits import Surface
from server.web import runtime
from server.web.http import MAX_BODY_BYTES, bearer_token, read_body
from server.web.observe import request_info

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
    now = svc.clock()
    owner: IngestKeyOwner | None = svc.ingest_keys.get(digest)
    if owner is None:
        async with svc.db.read() as session:
            owner = await authenticate_ingest(session, key, now)
        if owner is None:
            return None
        svc.ingest_keys[digest] = owner
    return owner.account_id if owner.valid_at(now) else None


async def ingest(request: Request) -> JSONResponse:
    svc = runtime.of(request.app)
    telemetry = svc.telemetry
    key = bearer_token(request.headers.get("authorization"))
    try:
        account_id = await _account_for(svc, key) if key else None
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        log.warning("ingest could not check a key: %s", exc)
        telemetry.count(telemetry.ingest_batches, "unavailable")
        return unavailable()
    if account_id is None:
        telemetry.count(telemetry.ingest_batches, "unauthenticated")
        client = request.client.host if request.client else "unknown"
        wait = await svc.limits.hit(Surface.UNAUTHENTICATED, client)
        if wait is not None:
            return rate_limited(wait)
        return error(
            401, "UNAUTHENTICATED", "a valid account ingest key is required (Authorization: Bearer …)"
        )
    if (info := request_info(request.scope)) is not None:
        info.account_id = account_id
    wait = await svc.limits.hit(Surface.INGEST, str(account_id))
    if wait is not None:
        telemetry.count(telemetry.ingest_batches, "rate_limited")
        return rate_limited(wait)
    response = await _store(svc, request, account_id)
    return response


def rate_limited(seconds: int) -> JSONResponse:
    return error(
        429,
        "RATE_LIMITED",
        f"too many batches for this key; retry the same batch in {seconds} s",
        **{"Retry-After": str(seconds)},
    )


def _loads(body: bytes) -> Any:
    """orjson for speed (a quarter of json's time per event); what it refuses (a lone
    surrogate escape, NaN, an integer beyond 64 bits, deep nesting, UTF-16) goes to the
    standard library, so answers stay exactly as before: the batch checks name the field."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


async def _store(svc: runtime.Services, request: Request, account_id: int) -> JSONResponse:
    telemetry = svc.telemetry
    body = await read_body(request, MAX_BODY_BYTES)
    if body is None:
        telemetry.count(telemetry.ingest_batches, "too_large")
        return error(413, "PAYLOAD_TOO_LARGE", f"the body is over {MAX_BODY_BYTES} bytes")
    try:
        batch = parse_body(body, svc.clock(), _loads)
    except BatchTooLarge as exc:
        telemetry.count(telemetry.ingest_batches, "too_large")
        return error(413, "PAYLOAD_TOO_LARGE", str(exc))
    except BatchInvalid as exc:
        telemetry.count(telemetry.ingest_batches, "invalid")
        return error(400, "INVALID_INPUT", "the batch is not valid; nothing was stored", exc.details)
    except (ValueError, RecursionError) as exc:  # _loads': decode errors, over-long integers
        telemetry.count(telemetry.ingest_batches, "invalid")
        return error(400, "INVALID_JSON", f"the body is not JSON: {exc}")
    try:
        result = await svc.committer.submit(account_id, batch)
    except (ShuttingDown, Overloaded) as exc:
        log.warning("ingest could not store a batch: %s", exc)
        telemetry.count(telemetry.ingest_batches, "unavailable")
        return unavailable()
    except Exception as exc:
        # A lock wait past the busy timeout, no connection, a full disk: the same batch
        # will be stored when retried (and a replay is never stored twice).
        if not is_unavailable(exc):
            raise
        log.warning("ingest could not store a batch: %s", exc)
        telemetry.count(telemetry.ingest_batches, "unavailable")
        return unavailable()
    status = result.status.lower()
    if result.duplicate:
        telemetry.count(telemetry.ingest_batches, "duplicate")
    else:
        telemetry.count(telemetry.ingest_batches, status)
        telemetry.ingest_events.inc(result.accepted)
        if result.admitted:
            telemetry.count(telemetry.admissions, status)
    return JSONResponse(result.to_json(), status_code=202)
