"""``create_app()``: the routes and the lifespan (database, broadcaster, background tasks)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route, WebSocketRoute

from server.graphql.http import GraphQLApp
from server.infra.db import Database
from server.infra.pg_broadcast import make_broadcaster
from server.infra.settings import Settings
from server.infra.tasks import finish_or_cancel
from server.web import health, ingest, prometheus
from server.web.http import Deadline, keep_query_strings_out_of_logs, redirect_to
from server.web.observe import Observe
from server.web.runtime import Clock, Services
from server.web.schedule import JobRunner

log = logging.getLogger(__name__)

# A task for the app's lifetime (the demo fleet). It gets an event set when the server
# stops and should return soon after; it is cancelled if still running after the grace.
BackgroundTask = Callable[[Services, asyncio.Event], Coroutine[Any, Any, Any]]
BACKGROUND_GRACE_SECONDS = 5.0


def tune_gc() -> None:
    """Garbage-collector settings for a long-running server; call once, just before serving.

    Everything loaded at start-up (modules, the GraphQL schema) lives as long as the process,
    so it is moved out of the collector's sight; and collections run less often. With
    hundreds of open websockets a default collection paused the event loop for 100-700 ms,
    the tail of live-event latency (bench/fanout.py: p99 275 ms -> 54 ms with both).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def create_app(
    settings: Settings,
    *,
    db: Database | None = None,
    clock: Clock | None = None,
    background: list[BackgroundTask] | None = None,
) -> Starlette:
    """The ASGI app. ``background`` tasks run for the app's lifetime (the demo fleet)."""
    database = db or Database.from_settings(settings, make_broadcaster(settings.broadcast_url))
    svc = Services(settings=settings, db=database) if clock is None else Services(settings, database, clock)
    # Scheduled jobs (digests, outbox, retention); a database lease runs each tick in one process.
    runner = JobRunner(svc, on_result=svc.telemetry.job_run)
    graphql = GraphQLApp(svc)
    telemetry = svc.telemetry
    telemetry.sample(
        subscribers=lambda: svc.db.broadcaster.broker.subscriber_count(), pool_in_use=svc.db.pool_in_use
    )
    telemetry.sample_pool_waits(lambda: svc.db.pool_waits)
    telemetry.sample_turn_waits(lambda: graphql.turns.waits)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await svc.db.broadcaster.start()
        svc.db.commit_listeners.append(telemetry.queue_events)
        runner.start()
        stopping = asyncio.Event()
        tasks = [asyncio.create_task(task(svc, stopping)) for task in background or []]
        # Closes websockets whose token was revoked or rotated, wherever that happened.
        sweeper = asyncio.create_task(graphql.sockets.watch(svc.db), name="revoked-token-sweep")
        try:
            yield
        finally:
            stopping.set()
            sweeper.cancel()
            await finish_or_cancel(tasks, BACKGROUND_GRACE_SECONDS, "a background task")
            await runner.stop()
            with contextlib.suppress(ValueError):
                svc.db.commit_listeners.remove(telemetry.queue_events)
            await svc.committer.stop()
            await svc.db.broadcaster.stop()
            if db is None:
                await svc.db.dispose()

    # Matched in order (a regular expression each): the busiest first.
    routes: list[BaseRoute] = [
        Route("/graphql", graphql),
        Route("/ingest", ingest.ingest, methods=["POST"]),
        Route("/healthz", health.healthz, methods=["GET"]),
        Route("/readyz", health.readyz, methods=["GET"]),
        Route("/metrics", prometheus.metrics, methods=["GET"]),
        # Subscriptions: graphql-transport-ws on the same path.
        WebSocketRoute("/graphql", graphql),
    ]
    # A trailing slash is redirected relatively (Starlette's own redirect trusts Host).
    paths = ("/graphql", "/ingest", "/healthz", "/readyz", "/metrics")
    routes += [Route(f"{path}/", redirect_to(path)) for path in paths]
    keep_query_strings_out_of_logs()
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            # Outermost: the request id and the access line cover the deadline's 503 too.
            Middleware(Observe, telemetry=telemetry, routes=frozenset(paths + tuple(f"{p}/" for p in paths))),
            Middleware(Deadline, seconds=settings.request_timeout_seconds),
        ],
    )
    app.router.redirect_slashes = False
    app.state.services = svc
    app.state.jobs = runner
    return app
