"""Prometheus metrics of one app (``GET /metrics``), on a registry of its own.

A registry per app, not prometheus-client's global one: tests start many apps in one
process, and each must count only its own requests. Names are SPEC §14's; every label value
comes from a fixed set (a route template, a status code, an operation type, an action or a
job name), never from a user, a path or a credential, so cardinality is bounded by
construction.

Hot paths (every request, every ingest batch) touch only pre-resolved children: a dict
lookup and an increment, no registry lookup. Gauges whose value lives elsewhere (open
subscribers, pooled connections) are read when scraped; the outbox backlog is a database
read that ``/metrics`` makes before rendering (:meth:`Telemetry.set_outbox`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import Metric, SummaryMetricFamily
from prometheus_client.registry import Collector

from server.domain.events import QueueEvent
from server.infra.pools import PoolWaits
from server.infra.turns import TurnWaits

# What the outbox carries, as plm_outbox_*{kind} shows it; webhooks report 0 until they land.
OUTBOX_KINDS = ("mail", "webhook")
GRAPHQL_TYPES = ("query", "mutation", "subscription")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Sampled(Collector):
    """Values read when scraped, from callables the app registers."""

    def __init__(self) -> None:
        self.pool_waits: list[Callable[[], PoolWaits]] = []
        self.turn_waits: list[Callable[[], TurnWaits]] = []

    def collect(self) -> Iterable[Metric]:
        waits = SummaryMetricFamily(
            "plm_db_pool_wait_seconds",
            "Time spent waiting for a pooled database connection (count: checkouts)",
        )
        total = PoolWaits()
        for read in self.pool_waits:
            sample = read()
            total.checkouts += sample.checkouts
            total.seconds += sample.seconds
        waits.add_metric([], total.checkouts, total.seconds)
        yield waits
        turns = SummaryMetricFamily(
            "plm_graphql_turn_wait_seconds",
            "Time uncached GraphQL executions waited for a turn of the event loop"
            " (count: executions that waited)",
        )
        count, seconds = 0, 0.0
        for read_turns in self.turn_waits:
            turn_sample = read_turns()
            count += turn_sample.count
            seconds += turn_sample.seconds
        turns.add_metric([], count, seconds)
        yield turns


class Telemetry:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "plm_http_requests",
            "HTTP requests answered, by route template and status",
            ["route", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "plm_http_request_duration_seconds",
            "HTTP request latency, by route template",
            ["route"],
            registry=r,
        )
        graphql = Counter(
            "plm_graphql_operations", "GraphQL operations executed, by type", ["type"], registry=r
        )
        self.graphql_operations = {t: graphql.labels(t) for t in GRAPHQL_TYPES}
        self.ingest_batches = Counter(
            "plm_ingest_batches",
            "Ingest batches, by outcome (licensed, pending, ignored, duplicate, or why refused)",
            ["status"],
            registry=r,
        )
        self.ingest_events = Counter(
            "plm_ingest_events", "Activity events stored from ingest batches", registry=r
        )
        self.admissions = Counter(
            "plm_admissions",
            "New agents admitted, by decision (licensed, pending, ignored)",
            ["status"],
            registry=r,
        )
        self.queue_actions = Counter(
            "plm_queue_actions", "Committed queue events of this process, by action", ["action"], registry=r
        )
        self.live_subscribers = Gauge("plm_live_subscribers", "Open live-queue subscriptions", registry=r)
        self.outbox_pending = Gauge(
            "plm_outbox_pending", "Outbox messages not yet delivered, by kind", ["kind"], registry=r
        )
        self.outbox_oldest_age = Gauge(
            "plm_outbox_oldest_age_seconds",
            "Age of the oldest undelivered outbox message, by kind",
            ["kind"],
            registry=r,
        )
        self.job_runs = Counter(
            "plm_job_runs",
            "Scheduled job ticks, by job and result (ran, skipped, failed)",
            ["job", "result"],
            registry=r,
        )
        self.db_pool_in_use = Gauge(
            "plm_db_pool_in_use", "Database connections checked out of the pools", registry=r
        )
        self.group_commit_batch_size = Histogram(
            "plm_group_commit_batch_size",
            "Ingest batches committed together in one transaction",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=r,
        )
        self._sampled = _Sampled()
        r.register(self._sampled)
        for kind in OUTBOX_KINDS:
            self.outbox_pending.labels(kind).set(0)
            self.outbox_oldest_age.labels(kind).set(0)
        self._http: dict[tuple[str, int], tuple[Callable[[], None], Callable[[float], None]]] = {}
        self._by_label: dict[tuple[Counter, str], Callable[[float], None]] = {}

    # -- hot paths

    def observe_http(self, route: str, status: int, seconds: float) -> None:
        children = self._http.get((route, status))
        if children is None:
            children = (
                self.http_requests.labels(route, str(status)).inc,
                self.http_duration.labels(route).observe,
            )
            self._http[(route, status)] = children
        children[0]()
        children[1](seconds)

    def count(self, counter: Counter, label: str, amount: float = 1) -> None:
        """Increment ``counter{label}`` (one-label counters of this object)."""
        inc = self._by_label.get((counter, label))
        if inc is None:
            inc = self._by_label[(counter, label)] = counter.labels(label).inc
        inc(amount)

    def graphql_operation(self, kind: str) -> None:
        child = self.graphql_operations.get(kind)
        if child is not None:
            child.inc()

    def queue_events(self, events: Sequence[QueueEvent]) -> None:
        for event in events:
            self.count(self.queue_actions, event.action.value.lower())

    def job_run(self, job: str, result: str) -> None:
        self.job_runs.labels(job, result).inc()

    def group_committed(self, batches: int) -> None:
        self.group_commit_batch_size.observe(batches)

    # -- sampled when scraped

    def sample(self, *, subscribers: Callable[[], int], pool_in_use: Callable[[], int]) -> None:
        self.live_subscribers.set_function(lambda: float(subscribers()))
        self.db_pool_in_use.set_function(lambda: float(pool_in_use()))

    def sample_pool_waits(self, read: Callable[[], PoolWaits]) -> None:
        self._sampled.pool_waits.append(read)

    def sample_turn_waits(self, read: Callable[[], TurnWaits]) -> None:
        self._sampled.turn_waits.append(read)

    def set_outbox(self, backlog: Mapping[str, tuple[int, float]]) -> None:
        """The outbox backlog by kind: (messages pending, age of the oldest in seconds)."""
        for kind in OUTBOX_KINDS:
            pending, oldest = backlog.get(kind, (0, 0.0))
            self.outbox_pending.labels(kind).set(pending)
            self.outbox_oldest_age.labels(kind).set(oldest)

    def render(self) -> bytes:
        return generate_latest(self.registry)
