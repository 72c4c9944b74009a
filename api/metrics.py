"""Prometheus metrics (``GET /metrics``, text exposition format).

* ``gis_http_requests_total{method,route,status}`` and ``gis_http_request_duration_seconds{method,route,status}``
  (histogram): by route **template** (``/api/v1/checks/{check_id}``; ``<unmatched>`` for a 404 outside any
  route), recorded by :class:`api.observability.RequestMiddleware`. ``gis_http_requests_in_progress``.
* ``gis_check_verdicts_total{verdict}``: the overall verdict of each stored check, via
  :func:`record_check_verdict`.
* Read at scrape time: ``gis_db_pool_size``, ``gis_db_pool_checked_out``, ``gis_db_pool_checked_in``,
  ``gis_db_pool_overflow`` (connections beyond the pool size now open), ``gis_db_pool_max_overflow`` of this
  process's SQLAlchemy ``QueuePool``; ``gis_job_queue_depth{status="queued"|"running"}`` and ``gis_database_up``
  from one cheap query (partial indexes), 0 / absent when the database cannot be reached.

**Several workers.** ``gis-platform serve --workers N`` (N > 1) runs prometheus_client's multiprocess mode: it
points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before the workers start, so counters and histograms
are summed over the workers whichever one answers the scrape. The pool gauges are then those of the worker
that answered (labelled ``pid``); the job queue gauges are database-wide. With one worker, or when the
variable is not set, every metric is this process's.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any, ClassVar

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client import generate_latest as _generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, text

from gis_platform.rules import LEVELS

from .security import public

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
disable_created_metrics()  # no *_created series: they double the output and nobody graphs them
VERDICTS = LEVELS
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

REQUESTS = Counter(
    "gis_http_requests_total", "HTTP requests by route template, method and status", ["method", "route", "status"]
)
LATENCY = Histogram(
    "gis_http_request_duration_seconds",
    "HTTP request duration by route template, method and status (seconds)",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)
IN_PROGRESS = Gauge("gis_http_requests_in_progress", "HTTP requests being served", multiprocess_mode="livesum")
CHECK_VERDICTS = Counter("gis_check_verdicts_total", "stored compliance checks by overall verdict", ["verdict"])
for _verdict in VERDICTS:
    CHECK_VERDICTS.labels(_verdict)  # every verdict is exported from the start, at 0


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    labels = (method, route, str(status))
    REQUESTS.labels(*labels).inc()
    LATENCY.labels(*labels).observe(seconds)


def record_check_verdict(verdict: str) -> None:
    """Count one stored check by its overall verdict (禁止 / 需补充用途 / 有条件 / 通过)."""
    CHECK_VERDICTS.labels(verdict).inc()


# --------------------------------------------------------------------------------------------------
# Read at scrape time: the pool of this process's engine(s) and the job queue
# --------------------------------------------------------------------------------------------------

_engines: dict[int, Engine] = {}
_engines_lock = threading.Lock()

JOB_QUEUE_SQL = text(
    "SELECT (SELECT count(*) FROM job WHERE status = 'queued'), (SELECT count(*) FROM job WHERE status = 'running')"
)


def watch_engine(engine: Engine) -> None:
    """Export this engine's pool (an application's lifespan calls it; :func:`unwatch_engine` at the end)."""
    with _engines_lock:
        _engines[id(engine)] = engine


def unwatch_engine(engine: Engine) -> None:
    with _engines_lock:
        _engines.pop(id(engine), None)


def _pool_numbers(engine: Engine) -> dict[str, int] | None:
    pool: Any = engine.pool
    try:
        size = int(pool.size())
        checked_out = int(pool.checkedout())
        checked_in = int(pool.checkedin())
        overflow = int(pool.overflow())
        max_overflow = int(getattr(pool, "_max_overflow", 0))
    except (AttributeError, TypeError):  # not a QueuePool
        return None
    return {
        "size": size,
        "checked_out": checked_out,
        "checked_in": checked_in,
        "overflow": max(0, overflow),
        "max_overflow": max(0, max_overflow),
    }


class PlatformCollector(Collector):
    """Pool gauges and the job queue depth, read when Prometheus scrapes."""

    HELP: ClassVar[dict[str, str]] = {
        "size": "connections the pool keeps (pool_size)",
        "checked_out": "connections in use by requests and jobs",
        "checked_in": "idle connections in the pool",
        "overflow": "connections open beyond pool_size",
        "max_overflow": "connections allowed beyond pool_size",
    }

    def collect(self) -> Iterator[Metric]:
        with _engines_lock:
            engines = list(_engines.values())
        labels = ["pid"] if MULTIPROCESS else []
        label_values = [str(os.getpid())] if MULTIPROCESS else []
        families = {k: GaugeMetricFamily(f"gis_db_pool_{k}", help_, labels=labels) for k, help_ in self.HELP.items()}
        totals: dict[str, int] = {}
        for engine in engines:
            for key, value in (_pool_numbers(engine) or {}).items():
                totals[key] = totals.get(key, 0) + value
        if totals:
            for key, family in families.items():
                family.add_metric(label_values, totals.get(key, 0))
                yield family
        if engines:
            yield from _job_queue(engines[-1])


def _job_queue(engine: Engine) -> Iterator[Metric]:
    up = GaugeMetricFamily("gis_database_up", "1 when the scrape's job-queue query reached the database")
    try:
        with engine.connect() as conn:
            queued, running = conn.execute(JOB_QUEUE_SQL).one()
    except Exception:  # database away or not migrated: the scrape still answers
        up.add_metric([], 0)
        yield up
        return
    up.add_metric([], 1)
    yield up
    depth = GaugeMetricFamily("gis_job_queue_depth", "background jobs by status", labels=["status"])
    depth.add_metric(["queued"], queued)
    depth.add_metric(["running"], running)
    yield depth


_platform_collector = PlatformCollector()
if not MULTIPROCESS:
    REGISTRY.register(_platform_collector)


def _registry() -> CollectorRegistry:
    if not MULTIPROCESS:
        return REGISTRY
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(_platform_collector)
    return registry


def generate_latest() -> bytes:
    """The metrics in Prometheus's text format (summed over the workers in multiprocess mode)."""
    return _generate_latest(_registry())


def mark_process_dead() -> None:
    """In multiprocess mode, drop this worker's live gauges when it stops (its counters stay in the sums)."""
    if MULTIPROCESS:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())


router = APIRouter(
    tags=["health"], dependencies=[public("Prometheus scrapes it: counts and timings, no planning data")]
)


@router.get("/metrics", include_in_schema=False, summary="Prometheus metrics")
def metrics_endpoint() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
