"""The sandbox: untrusted files are read in warm worker processes with CPU-time, wall-time and memory limits.

A GeoPackage "layer" that is a recursive SQLite view ran in the server's own process with the GIL held and took
the worker down (issue 13). Every read of an uploaded file (parcel uploads, inspections, batch files, layer imports
over HTTP) now runs in a :class:`SandboxPool` worker (:mod:`gis_platform.sandbox_worker`):

- **Warm.** Each server process keeps ``sandbox_workers`` workers started in advance (importing GDAL costs ~1.5 s
  a process); a replacement is started at once when one is stopped or recycled.
- **Limits.** While a job runs, the pool polls the worker's CPU time and resident memory in ``/proc`` every 20 ms
  and its wall time; past a limit it kills the worker's process group (SIGKILL), removes the job's workspace and
  raises :class:`~gis_platform.errors.ProcessingLimitError` naming the limit. Kernel backstops in the worker
  (RLIMIT_CPU, a wide RLIMIT_AS) cover a server too busy to poll.
- **Files.** Each job has a workspace under this process's directory (``<root>/<pid>-<start time>/job-…``): the
  upload is saved there, the worker's temporary files go there, and it is removed however the job ended. A
  server process killed outright leaves its directory behind; the next pool to start sweeps the directories of
  processes that no longer run.
- **Per server process.** With ``uvicorn --workers N`` each worker process has its own pool (N ×
  ``sandbox_workers`` warm workers), created with its app and ended with it (and with the process: the workers
  die with it). A shared pool would need a broker between the processes and let one process's queue hold another's
  uploads; a pool per process needs none, and a breach costs only the worker that read the file.
- **Bounded waits.** At most ``2 × sandbox_workers`` jobs wait for a worker, each at most
  ``sandbox_queue_timeout_s``; beyond that :class:`~gis_platform.errors.SandboxBusyError` (503) at once, so the
  uploads of an attack never hold more than a few of the server's threads.
- **Results.** Replies are unpickled with an allow-list (:data:`~gis_platform.sandbox_jobs.RESULT_TYPES`): a
  worker that a file subverted still cannot make the server construct anything else.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import pickle
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from queue import Empty, Queue
from typing import TYPE_CHECKING, Any

from . import errors
from .sandbox_process import WorkerProcess, cause_of_death, process_directory

if TYPE_CHECKING:
    from .settings import Settings

__all__ = ["Limits", "SandboxPool", "close_pools", "shared_pool", "without_secrets"]

log = logging.getLogger("gis_platform.sandbox")

POLL_S = 0.02
START_TIMEOUT_S = 120.0
QUEUE_PER_WORKER = 2
#: A worker whose resident memory stays this far above its warm size after a job is replaced (memory a parse
#: took is seldom returned to the system).
RECYCLE_GROWTH_BYTES = 256 * 1024 * 1024
MAX_JOBS_PER_WORKER = 500
LIMIT_TEXT = {  # limit → (中文, English, unit)
    "cpu_time": ("CPU 时间", "CPU time", "s"),
    "wall_time": ("处理时间", "processing time", "s"),
    "memory": ("内存", "memory", "MB"),
}


@dataclass(frozen=True)
class Limits:
    """What one job may use: CPU seconds, wall-clock seconds, resident memory of the worker (MB)."""

    cpu_s: float
    wall_s: float
    memory_mb: int

    @classmethod
    def for_uploads(cls, settings: Settings) -> Limits:
        return cls(settings.sandbox_cpu_s, settings.sandbox_wall_s, settings.sandbox_memory_mb)

    @classmethod
    def for_imports(cls, settings: Settings) -> Limits:
        return cls(settings.sandbox_import_cpu_s, settings.sandbox_import_wall_s, settings.sandbox_import_memory_mb)

    def value(self, limit: str) -> float:
        return {"cpu_time": self.cpu_s, "wall_time": self.wall_s, "memory": self.memory_mb}[limit]


def limit_error(limit: str, limits: Limits, name: str) -> errors.ProcessingLimitError:
    zh, en, unit = LIMIT_TEXT[limit]
    value = limits.value(limit)
    shown = f"{value:g} {unit}"
    return errors.ProcessingLimitError(
        f"{name}: 读取文件超过{zh}上限 {shown}，已终止 / reading the file went past the {en} limit of {shown} and"
        " was stopped; split or simplify the file",
        limit=limit,
        value=value,
        unit=unit,
    )


class SandboxPool:
    """Warm worker processes of this server process, and the workspaces of their jobs."""

    def __init__(self, size: int, root: Path, *, queue_timeout_s: float = 30.0) -> None:
        self.size = size
        self.queue_timeout_s = queue_timeout_s
        self.directory = process_directory(root)
        self.closed = False
        self._idle: Queue[WorkerProcess] = Queue()
        self._workers: set[WorkerProcess] = set()
        self._lock = threading.Lock()
        self._admitted = threading.BoundedSemaphore(size * (1 + QUEUE_PER_WORKER))
        self._spawns: Queue[bool] = Queue()
        self._count = 0
        # Workers are started by one long-lived thread: PR_SET_PDEATHSIG fires when the *thread* that started a
        # process ends, and request threads come and go.
        self._spawner = threading.Thread(target=self._spawn_loop, name="sandbox-spawner", daemon=True)
        self._spawner.start()
        for _ in range(size):
            self._spawns.put(True)

    @contextlib.contextmanager
    def workspace(self) -> Iterator[Path]:
        """A fresh directory for one job (the upload goes there), removed on leaving, however the job ended."""
        path = Path(tempfile.mkdtemp(prefix="job-", dir=self.directory))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def run(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        limits: Limits,
        workspace: Path,
        name: str = "",
    ) -> Any:
        """``fn(*args, **kwargs)`` in a worker within ``limits``; its result, or the domain error it raised."""
        if self.closed:
            raise errors.SandboxBusyError("沙箱已关闭 / the sandbox is shut down")
        job = {"fn": fn, "args": args, "kwargs": kwargs or {}, "workspace": str(workspace)}
        job.update(cpu_s=limits.cpu_s, memory_bytes=limits.memory_mb * 1024 * 1024)
        payload = pickle.dumps(job, protocol=5)
        label = name or getattr(fn, "__name__", "job")
        if not self._admitted.acquire(blocking=False):
            raise _busy()
        try:
            deadline = time.monotonic() + self.queue_timeout_s
            while True:
                try:
                    worker = self._idle.get(timeout=max(deadline - time.monotonic(), 0))
                except Empty:
                    raise _busy() from None
                if worker.alive:
                    break
                self._release(worker, False)  # died while idle: replaced, take the next one
            healthy = False
            try:
                worker.start(time.monotonic() + START_TIMEOUT_S)
                reply = self._supervise(worker, payload, limits, label)
                healthy = True
            finally:
                self._release(worker, healthy)
        finally:
            self._admitted.release()
        return _outcome(reply, workspace, label, limits)

    def close(self) -> None:
        self.closed = True
        self._spawns.put(False)
        with self._lock:
            workers = list(self._workers)
        for worker in workers:
            worker.kill()
        shutil.rmtree(self.directory, ignore_errors=True)

    # -- internals ------------------------------------------------------------------------------------------

    def _supervise(self, worker: WorkerProcess, payload: bytes, limits: Limits, name: str) -> tuple[Any, ...]:
        """Send the job and watch the worker until it replies or passes a limit (then it is killed)."""
        memory = limits.memory_mb * 1024 * 1024
        usage = worker.usage()
        cpu_at_start = usage[0] if usage else 0.0
        deadline = time.monotonic() + limits.wall_s
        worker.jobs += 1
        breach: str | None = None
        try:
            worker.send(payload)
        except OSError:  # died since it was checked
            breach = cause_of_death(worker)
        while breach is None:
            if worker.wait_readable(min(POLL_S, deadline - time.monotonic())):
                try:
                    return worker.read_reply(max_bytes=memory)
                except EOFError:
                    breach = cause_of_death(worker)
                except pickle.UnpicklingError:
                    log.error("sandbox worker %s sent a reply that is refused", worker.proc.pid, exc_info=True)
                    breach = "crash"
                break
            usage = worker.usage()
            if usage is not None and usage[0] - cpu_at_start > limits.cpu_s:
                breach = "cpu_time"
            elif usage is not None and usage[1] > memory:
                breach = "memory"
            elif time.monotonic() >= deadline:
                breach = "wall_time"
        worker.kill()
        log.warning("sandbox job stopped: %s (%s)", breach, name)
        if breach == "crash":
            raise errors.InputFileError(f"{name}: 文件无法读取 / the file could not be read")
        raise limit_error(breach, limits, name)

    def _release(self, worker: WorkerProcess, healthy: bool) -> None:
        usage = worker.usage() if healthy else None
        keep = (
            usage is not None
            and not self.closed
            and usage[1] - worker.warm_rss < RECYCLE_GROWTH_BYTES
            and worker.jobs < MAX_JOBS_PER_WORKER
        )
        if keep:
            self._idle.put(worker)
            return
        worker.kill()
        with self._lock:
            self._workers.discard(worker)
        if not self.closed:
            self._spawns.put(True)

    def _spawn_loop(self) -> None:
        while self._spawns.get():
            if self.closed:
                return
            try:
                with self._lock:
                    self._count += 1
                    worker = WorkerProcess(self.directory, self._count)
                    self._workers.add(worker)
            except OSError:
                log.exception("could not start a sandbox worker")
                time.sleep(1.0)
                self._spawns.put(True)
                continue
            self._idle.put(worker)


def _busy() -> errors.SandboxBusyError:
    return errors.SandboxBusyError(
        "文件处理进程都在忙，请稍后重试 / every file-reading worker of this server is busy; retry shortly",
        retry_after_s=5,
    )


def _outcome(reply: tuple[Any, ...], workspace: Path, name: str, limits: Limits) -> Any:
    kind = reply[0]
    if kind == "ok":
        return reply[1]
    if kind == "error":
        _kind, module, qualname, message, details = reply
        cls = getattr(errors, qualname, None) if module == errors.__name__ else None
        if not (isinstance(cls, type) and issubclass(cls, errors.PlatformError)):
            cls = errors.InputFileError
        error = cls.__new__(cls)
        errors.PlatformError.__init__(error, _scrub(message, workspace), **_scrub(details, workspace))
        raise error
    if kind == "memory":  # an allocation refused by the RLIMIT_AS backstop before the watchdog saw the RSS
        raise limit_error("memory", limits, name)
    log.error("sandbox job %s failed: %s\n%s", name, reply[1], reply[2])
    raise errors.InputFileError(f"{name}: 文件无法读取 / the file could not be read")


def _scrub(value: Any, workspace: Path) -> Any:
    """``value`` without the workspace's path (a server path is nobody's business)."""
    if isinstance(value, str):
        return value.replace(f"{workspace}/", "").replace(str(workspace), "")
    if isinstance(value, dict):
        return {k: _scrub(v, workspace) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v, workspace) for v in value]
    return value


def without_secrets(settings: Settings) -> Settings:
    """``settings`` for a job that reads a file and needs no database: without the database URL (and its password),
    which a worker a file subverted would otherwise hold."""
    return settings.model_copy(update={"database_url": ""})


def default_root(settings: Settings) -> Path:
    root = settings.sandbox_dir
    return Path(root) if root else Path(tempfile.gettempdir()) / f"gis-platform-sandbox-{os.getuid()}"


_pools: dict[tuple[int, Path], SandboxPool] = {}
_pools_lock = threading.Lock()


def shared_pool(settings: Settings) -> SandboxPool:
    """This process's pool for ``settings`` (started on first use, kept until the process ends)."""
    key = (int(settings.sandbox_workers), default_root(settings))
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None or pool.closed:
            pool = _pools[key] = SandboxPool(key[0], key[1], queue_timeout_s=settings.sandbox_queue_timeout_s)
        return pool


@atexit.register
def close_pools() -> None:
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close()
