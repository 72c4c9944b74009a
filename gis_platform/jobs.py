"""Background jobs: a queue in PostgreSQL shared by every API worker, and the thread that runs it.

A job is a row of ``job``: ``queued`` → ``running`` → ``succeeded`` | ``failed``.

* **Claiming.** A worker takes the oldest queued job with ``SELECT … FOR UPDATE SKIP LOCKED``, so any
  number of API processes (on any number of hosts) share one queue without taking the same job twice.
  The claim gets a fresh ``claim_id``; progress, heartbeat and the final status are written only
  ``WHERE claim_id`` still matches, so a worker that lost its job can never overwrite it.
* **Heartbeat and stale jobs.** While a job runs, the runner writes ``heartbeat_at`` every
  ``heartbeat_s`` seconds (30 s) from a side thread, also during one long SQL statement. A job still
  ``running`` whose heartbeat is older than ``stale_after`` (default **10 minutes**) belongs to a dead
  worker (killed process, lost host, restart): every runner re-queues such jobs when it starts and once a
  minute after that. After ``max_attempts`` (3) claims the job is marked failed instead, so a job that
  kills its worker cannot loop forever. A batch check resumes at its first parcel without an outcome.
* **Failure.** A job whose handler raises is marked ``failed`` with the error message; the runner goes on.
* **Waking.** Submitting a job sends ``NOTIFY gis_platform_jobs``; runners ``LISTEN`` and start at once,
  and poll every ``poll_s`` seconds in case a notification was missed.

Use :func:`start_job_runner` / :func:`stop_job_runner` from an application's lifespan, or
:func:`run_pending_jobs` to run the queue synchronously (tests, CLI).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import select
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from .catalog import Catalog
from .db import conditions, fetch_page, is_database_unavailable
from .errors import NotFoundError, PlatformError
from .rules import RuleSet
from .settings import Settings

log = logging.getLogger(__name__)

JOB_KINDS = ("batch_check", "conflicts")
JOB_STATUSES = ("queued", "running", "succeeded", "failed")
NOTIFY_CHANNEL = "gis_platform_jobs"
DEFAULT_STALE_AFTER = dt.timedelta(minutes=10)
DEFAULT_HEARTBEAT_S = 30.0
DEFAULT_POLL_S = 5.0
STALE_CHECK_S = 60.0
MAX_ATTEMPTS = 3
MAX_ERROR_CHARS = 4000

_JOB_COLUMNS = (
    "id, kind, status, created_at, started_at, finished_at, heartbeat_at, created_by, params,"
    " progress_done, progress_total, summary, error, attempts"
)


class JobLost(Exception):
    """The job was re-queued or finished by someone else while this worker ran it (internal)."""


class JobInterrupted(Exception):
    """The runner is stopping; the job goes back to the queue and resumes later (internal)."""


def _never() -> bool:
    return False


@dataclass(frozen=True)
class JobHandle:
    """A job claimed by one worker: what a job handler gets."""

    id: uuid.UUID
    kind: str
    params: dict[str, Any]
    created_by: str
    claim_id: uuid.UUID
    attempt: int
    stop_requested: Callable[[], bool] = field(default=_never, compare=False)

    def progress(self, conn: Connection, done: int, total: int) -> None:
        """Record progress in the caller's transaction (also a heartbeat); :class:`JobLost` if not ours."""
        updated = conn.execute(
            text(
                "UPDATE job SET progress_done = :done, progress_total = :total, heartbeat_at = now()"
                " WHERE id = :id AND claim_id = :claim AND status = 'running'"
            ),
            {"done": done, "total": total, "id": self.id, "claim": self.claim_id},
        ).rowcount
        if not updated:
            raise JobLost(f"job {self.id} is no longer held by this worker")

    def check_stop(self) -> None:
        """Raise :class:`JobInterrupted` when the runner is stopping (call between units of work)."""
        if self.stop_requested():
            raise JobInterrupted(f"job {self.id} interrupted: the worker is stopping")


Handler = Callable[[Engine, Catalog, RuleSet, Settings, JobHandle], dict[str, Any]]


# --------------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------------


def parse_job_id(value: str | uuid.UUID) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError as exc:
        raise NotFoundError(f"no job with id {value!r} (not a valid job id)") from exc


def create_job(
    conn: Connection, *, kind: str, params: dict[str, Any], created_by: str, progress_total: int = 0
) -> uuid.UUID:
    """Queue a job in the caller's transaction; runners are notified when it commits."""
    if kind not in JOB_KINDS:
        raise PlatformError(f"unknown job kind {kind!r} (known: {', '.join(JOB_KINDS)})")
    job_id: uuid.UUID = conn.execute(
        text(
            "INSERT INTO job (kind, status, created_by, params, progress_total)"
            " VALUES (:kind, 'queued', :by, CAST(:params AS jsonb), :total) RETURNING id"
        ),
        {"kind": kind, "by": created_by, "params": json.dumps(params, ensure_ascii=False), "total": progress_total},
    ).scalar_one()
    conn.execute(text("SELECT pg_notify(:channel, :id)"), {"channel": NOTIFY_CHANNEL, "id": str(job_id)})
    return job_id


def job_document(row: Any) -> dict[str, Any]:
    """The JSON form of a ``job`` row."""
    done, total = row.progress_done, row.progress_total
    doc = {k: getattr(row, k) for k in ("kind", "status", "created_by", "attempts", "params", "summary", "error")}
    for k in ("created_at", "started_at", "finished_at", "heartbeat_at"):
        doc[k] = value.isoformat() if (value := getattr(row, k)) else None
    percent = round(100.0 * done / total, 1) if total else None
    return {"id": str(row.id), **doc, "progress": {"done": done, "total": total, "percent": percent}}


def get_job(engine: Engine, job_id: str | uuid.UUID, *, kind: str | None = None) -> dict[str, Any]:
    """The job document; :class:`NotFoundError` when there is no such job (of ``kind``, when given)."""
    key = parse_job_id(job_id)
    with engine.connect() as conn:
        row = conn.execute(text(f"SELECT {_JOB_COLUMNS} FROM job WHERE id = :id"), {"id": key}).one_or_none()
    if row is None or (kind is not None and row.kind != kind):
        noun = f"{kind} job" if kind else "job"
        raise NotFoundError(f"no {noun} with id {job_id}", job_id=str(job_id))
    return job_document(row)


def list_jobs(
    engine: Engine,
    *,
    kind: str | None = None,
    status: str | None = None,
    created_by: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    """A page of jobs, newest first: ``{"total", "limit", "offset", "items"}`` (items as :func:`get_job` gives).

    ``kind``, ``status`` and ``created_by`` (the principal name that submitted the job) narrow the list; each
    is a bound parameter. ``total`` counts every job that matches, not only this page.
    """
    if kind is not None and kind not in JOB_KINDS:
        raise PlatformError(f"unknown job kind {kind!r} (known: {', '.join(JOB_KINDS)})")
    if status is not None and status not in JOB_STATUSES:
        raise PlatformError(f"unknown job status {status!r} (known: {', '.join(JOB_STATUSES)})")
    if limit < 1 or offset < 0:
        raise PlatformError(f"limit must be at least 1 and offset at least 0 (got limit {limit}, offset {offset})")
    where, params = conditions(
        ("kind", kind, "kind = :kind"), ("status", status, "status = :status"), ("by", created_by, "created_by = :by")
    )
    with engine.connect() as conn:
        total, rows = fetch_page(
            conn,
            columns=_JOB_COLUMNS,
            table="job",
            where=where,
            params=params,
            order_by="created_at DESC, id DESC",
            limit=limit,
            offset=offset,
        )
    return {"total": total, "limit": limit, "offset": offset, "items": [job_document(row) for row in rows]}


def require_succeeded(job: dict[str, Any]) -> None:
    """Results exist only for a job that succeeded: say where it stands otherwise."""
    if job["status"] == "succeeded":
        return
    progress = job["progress"]
    state = {
        "queued": "is still queued",
        "running": f"is running ({progress['done']}/{progress['total']})",
        "failed": f"failed: {job['error']}",
    }[job["status"]]
    raise PlatformError(f"job {job['id']} {state}; its results are available once it has succeeded", **progress)


def claim_next(engine: Engine, *, worker: str, stop_requested: Callable[[], bool] = _never) -> JobHandle | None:
    """Claim the oldest queued job for ``worker`` (``FOR UPDATE SKIP LOCKED``), or None."""
    with engine.begin() as conn:
        row = conn.execute(
            text(
                "UPDATE job SET status = 'running', started_at = now(), heartbeat_at = now(), worker = :worker,"
                " claim_id = :claim, attempts = attempts + 1, error = NULL"
                " WHERE id = (SELECT id FROM job WHERE status = 'queued' ORDER BY created_at, id"
                "             LIMIT 1 FOR UPDATE SKIP LOCKED)"
                " RETURNING id, kind, params, created_by, claim_id, attempts"
            ),
            {"worker": worker, "claim": uuid.uuid4()},
        ).one_or_none()
    if row is None:
        return None
    return JobHandle(row.id, row.kind, row.params, row.created_by, row.claim_id, row.attempts, stop_requested)


def _update_claimed(engine: Engine, job: JobHandle, assignments: str, params: dict[str, Any]) -> bool:
    with engine.begin() as conn:
        return bool(
            conn.execute(
                text(f"UPDATE job SET {assignments} WHERE id = :id AND claim_id = :claim AND status = 'running'"),
                {"id": job.id, "claim": job.claim_id, **params},
            ).rowcount
        )


def finish_job(engine: Engine, job: JobHandle, summary: dict[str, Any]) -> bool:
    return _update_claimed(
        engine,
        job,
        "status = 'succeeded', finished_at = now(), progress_done = progress_total, summary = CAST(:s AS jsonb),"
        " claim_id = NULL",
        {"s": json.dumps(summary, ensure_ascii=False)},
    )


def fail_job(engine: Engine, job: JobHandle, message: str) -> bool:
    return _update_claimed(
        engine,
        job,
        "status = 'failed', finished_at = now(), error = :e, claim_id = NULL",
        {"e": message[:MAX_ERROR_CHARS]},
    )


def release_job(engine: Engine, job: JobHandle) -> bool:
    """Put a job this worker holds back in the queue (the runner is stopping)."""
    return _update_claimed(
        engine, job, "status = 'queued', claim_id = NULL, worker = NULL, heartbeat_at = NULL, started_at = NULL", {}
    )


def heartbeat(engine: Engine, job: JobHandle) -> bool:
    return _update_claimed(engine, job, "heartbeat_at = now()", {})


def requeue_stale(
    engine: Engine, *, stale_after: dt.timedelta = DEFAULT_STALE_AFTER, max_attempts: int = MAX_ATTEMPTS
) -> list[uuid.UUID]:
    """Re-queue jobs left ``running`` by a dead worker (no heartbeat for ``stale_after``).

    A job already claimed ``max_attempts`` times is marked failed instead. Returns the re-queued ids.
    """
    params = {"secs": stale_after.total_seconds(), "max": max_attempts}
    stale = "status = 'running' AND heartbeat_at < now() - make_interval(secs => :secs)"
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE job SET status = 'failed', finished_at = now(), claim_id = NULL,"
                " error = 'abandoned: its worker stopped responding during ' || attempts || ' attempts'"
                f" WHERE {stale} AND attempts >= :max"
            ),
            params,
        )
        requeued = list(
            conn.execute(
                text(
                    "UPDATE job SET status = 'queued', claim_id = NULL, worker = NULL, heartbeat_at = NULL,"
                    f" started_at = NULL WHERE {stale} RETURNING id"
                ),
                params,
            ).scalars()
        )
    for job_id in requeued:
        log.warning("job %s re-queued: its worker stopped sending heartbeats", job_id)
    return requeued


# --------------------------------------------------------------------------------------------------
# Running jobs
# --------------------------------------------------------------------------------------------------


def _handler(kind: str) -> Handler:
    if kind == "batch_check":
        from .analysis.batch import run_batch_job

        return run_batch_job
    if kind == "conflicts":
        from .analysis.conflicts import run_conflicts_job

        return run_conflicts_job
    raise PlatformError(f"no handler for job kind {kind!r}")


def _error_message(exc: BaseException) -> str:
    if isinstance(exc, PlatformError):
        return exc.message
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        return f"database error: {str(exc.orig).strip()}"
    return f"{type(exc).__name__}: {exc}"


def execute_job(engine: Engine, catalog: Catalog, rules: RuleSet, settings: Settings, job: JobHandle) -> str:
    """Run one claimed job to its end; returns the status it was left in."""
    started = time.monotonic()
    try:
        summary = _handler(job.kind)(engine, catalog, rules, settings, job)
    except JobInterrupted:
        release_job(engine, job)
        log.info("job %s released back to the queue", job.id)
        return "queued"
    except JobLost:
        log.warning("job %s was taken away from this worker; its outcome is left to the new holder", job.id)
        return "lost"
    except Exception as exc:
        if is_database_unavailable(exc):  # an outage is not the job's fault: it goes back to the queue
            log.warning("job %s interrupted: the database is unavailable (%s)", job.id, _error_message(exc))
            try:
                release_job(engine, job)
            except Exception:
                return "unreleased"  # still ours in the database; the runner releases it once it is back
            return "queued"
        log.exception("job %s (%s) failed", job.id, job.kind)
        fail_job(engine, job, _error_message(exc))
        return "failed"
    summary.setdefault("elapsed_s", round(time.monotonic() - started, 3))
    try:
        finished = finish_job(engine, job, summary)
    except Exception as exc:
        if not is_database_unavailable(exc):
            raise
        log.warning("job %s done but not recorded: the database is unavailable; it runs again", job.id)
        return "unreleased"  # a batch job resumes after its last stored outcome
    if not finished:
        log.warning("job %s finished but was no longer held by this worker", job.id)
        return "lost"
    return "succeeded"


def run_pending_jobs(
    engine: Engine, catalog: Catalog, rules: RuleSet, settings: Settings, *, worker: str = "sync"
) -> list[uuid.UUID]:
    """Run queued jobs in this thread until the queue is empty (tests, CLI); returns the ids run."""
    ran: list[uuid.UUID] = []
    while (job := claim_next(engine, worker=worker)) is not None:
        execute_job(engine, catalog, rules, settings, job)
        ran.append(job.id)
    return ran


@contextlib.contextmanager
def _heartbeats(engine: Engine, job: JobHandle, interval_s: float) -> Iterator[None]:
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval_s):
            try:
                heartbeat(engine, job)
            except Exception:  # the database may be briefly away: the next beat retries
                log.warning("heartbeat for job %s failed", job.id, exc_info=True)

    thread = threading.Thread(target=beat, name=f"job-heartbeat-{job.id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


class JobRunner:
    """Runs queued jobs one at a time in a background thread of this process."""

    def __init__(
        self,
        engine: Engine,
        catalog: Catalog,
        rules: RuleSet,
        settings: Settings,
        *,
        poll_s: float = DEFAULT_POLL_S,
        heartbeat_s: float = DEFAULT_HEARTBEAT_S,
        stale_after: dt.timedelta = DEFAULT_STALE_AFTER,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self.engine, self.catalog, self.rules, self.settings = engine, catalog, rules, settings
        self.poll_s, self.heartbeat_s = poll_s, heartbeat_s
        self.stale_after, self.max_attempts = stale_after, max_attempts
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="gis-job-runner", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop after the current unit of work; a batch job in progress goes back to the queue."""
        self._stop.set()
        self.wake()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
            if self._thread.is_alive():  # the job is re-queued once stale; the pipe stays open for the thread
                log.warning("job runner still busy after %.0f s; its job is re-queued once stale", timeout_s)
                return
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _run(self) -> None:
        listener: Any = None  # the psycopg2 connection LISTENing for new jobs, when there is one
        next_stale_check = next_listen = 0.0
        unreleased: list[JobHandle] = []  # jobs interrupted by a database outage, to put back in the queue
        while not self._stop.is_set():
            try:
                while unreleased:
                    release_job(self.engine, unreleased[0])
                    unreleased.pop(0)
                if listener is None and time.monotonic() >= next_listen:
                    listener, next_listen = self._listen(), time.monotonic() + STALE_CHECK_S
                if time.monotonic() >= next_stale_check:
                    requeue_stale(self.engine, stale_after=self.stale_after, max_attempts=self.max_attempts)
                    next_stale_check = time.monotonic() + STALE_CHECK_S
                job = claim_next(self.engine, worker=self.worker, stop_requested=self._stop.is_set)
                if job is None:
                    self._wait(listener)
                    continue
                with _heartbeats(self.engine, job, self.heartbeat_s):
                    if execute_job(self.engine, self.catalog, self.rules, self.settings, job) == "unreleased":
                        unreleased.append(job)
            except Exception as exc:  # database away, listener broken …: wait and start over
                if is_database_unavailable(exc):
                    log.warning(
                        "job runner: the database is unavailable (%s); retrying in %.0f s",
                        _error_message(exc),
                        self.poll_s,
                    )
                else:
                    log.exception("job runner error; retrying in %.0f s", self.poll_s)
                self._close(listener)
                listener = None
                self._stop.wait(self.poll_s)
        self._close(listener)

    def _listen(self) -> Any:
        """A connection of its own (detached from the pool) that LISTENs; None if that fails (polling only)."""
        try:
            raw = self.engine.raw_connection()
            conn = raw.driver_connection
            raw.detach()
            conn.autocommit = True  # type: ignore[union-attr]
            with conn.cursor() as cur:  # type: ignore[union-attr]
                cur.execute(f"LISTEN {NOTIFY_CHANNEL}")
            return conn
        except Exception as exc:
            outage = is_database_unavailable(exc)  # no traceback for the expected case
            log.warning("cannot LISTEN for new jobs; polling every %.0f s", self.poll_s, exc_info=not outage)
            return None

    def _wait(self, listener: Any) -> None:
        sources: list[Any] = [self._wake_r] if listener is None else [self._wake_r, listener]
        readable, _, _ = select.select(sources, [], [], self.poll_s)
        if self._wake_r in readable:
            with contextlib.suppress(OSError):
                os.read(self._wake_r, 1024)
        if listener is not None and listener in readable:
            listener.poll()
            listener.notifies.clear()

    @staticmethod
    def _close(listener: Any) -> None:
        if listener is not None:
            with contextlib.suppress(Exception):
                listener.close()


def start_job_runner(state: Any, **options: Any) -> JobRunner:
    """Start a :class:`JobRunner` for an app state holding ``engine``, ``catalog``, ``rules``, ``settings``.

    The runner is kept as ``state.job_runner``; ``options`` go to :class:`JobRunner`.
    """
    runner = JobRunner(state.engine, state.catalog, state.rules, state.settings, **options)
    runner.start()
    state.job_runner = runner
    return runner


def stop_job_runner(state: Any, timeout_s: float = 30.0) -> None:
    """Stop the runner started by :func:`start_job_runner`, if any."""
    runner: JobRunner | None = getattr(state, "job_runner", None)
    if runner is not None:
        runner.stop(timeout_s)
        state.job_runner = None
