"""``GET /healthz`` (liveness) and ``GET /readyz`` (readiness) for load balancers and supervisors.

Liveness answers whether the process serves requests at all: no database work, so it stays
cheap and says nothing about the database (restarting a server does not fix a database).
Readiness answers whether this process can do its job now (:mod:`server.infra.readiness`).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from server.infra.readiness import Readiness


async def healthz(request: Request) -> JSONResponse:
    """Liveness: the process answers. No database work."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """Readiness: 200 when a write transaction can commit, else 503 with Retry-After."""
    readiness: Readiness = request.app.state.services.readiness
    if await readiness.ready():
        return JSONResponse({"status": "ready"})
    return JSONResponse(
        {"status": "unavailable", "reason": "the database cannot take writes right now"},
        status_code=503,
        headers={"Retry-After": "1"},
    )
