"""``GET /metrics``: the app's Prometheus metrics (:mod:`server.infra.telemetry`).

Open unless ``PLM_METRICS_TOKEN`` is set; then only ``Authorization: Bearer <that token>``
gets them (compared in constant time). Before rendering, the outbox backlog is read from
the database; when the database cannot answer in time the last values stay and the rest is
served all the same (a scrape must not fail because the thing it watches is down).
"""

from __future__ import annotations

import asyncio
import hmac
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server.infra import outbox
from server.infra.telemetry import CONTENT_TYPE
from server.web import runtime
from server.web.http import bearer_token

log = logging.getLogger(__name__)

BACKLOG_TIMEOUT_SECONDS = 2.0


async def metrics(request: Request) -> Response:
    svc = runtime.of(request.app)
    expected = svc.settings.metrics_token
    if expected is not None:
        given = bearer_token(request.headers.get("authorization")) or ""
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return JSONResponse(
                {
                    "error": {
                        "code": "UNAUTHENTICATED",
                        "message": "PLM_METRICS_TOKEN is required",
                        "details": [],
                    }
                },
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="plm-metrics"'},
            )
    try:
        async with asyncio.timeout(BACKLOG_TIMEOUT_SECONDS):
            svc.telemetry.set_outbox(await outbox.backlog(svc.db, svc.clock()))
    except Exception as exc:
        log.warning("metrics: could not read the outbox backlog (%s); serving the last values", exc)
    return Response(svc.telemetry.render(), media_type=CONTENT_TYPE)
