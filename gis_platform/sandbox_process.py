"""The server's side of one sandbox worker process (:mod:`gis_platform.sandbox`): starting it, reading its
replies through an allow-list, its usage from ``/proc``, killing it, and the per-process directories of jobs."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import pickle
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from . import errors
from .sandbox_worker import FRAME, read_exact, write_frame
from .settings import REPO_ROOT

log = logging.getLogger("gis_platform.sandbox")

_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
#: Environment of a worker: threads, arenas and caches sized for one file at a time.
_WORKER_ENV = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MALLOC_ARENA_MAX": "2",
    "GDAL_CACHEMAX": "64",
    "PYTHONDONTWRITEBYTECODE": "1",
}
_KEPT_ENV = re.compile(r"^(PATH|HOME|LANG|LC_\w+|PYTHONPATH|VIRTUAL_ENV|PROJ_\w+|GDAL_DATA|SSL_CERT_\w+)$")


class _ResultUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        from .sandbox_jobs import RESULT_TYPES

        if (module, name) not in RESULT_TYPES:
            raise pickle.UnpicklingError(f"a sandbox reply may not name {module}.{name}")
        return super().find_class(module, name)


def _proc_stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rpartition(")")[2].split()
    except OSError:
        return None


def _start_ticks(pid: int) -> int | None:
    fields = _proc_stat(pid)
    return int(fields[19]) if fields else None  # field 22 of stat, counted after the command name


class WorkerProcess:
    """One worker process, its protocol pipes and its log file."""

    def __init__(self, directory: Path, number: int) -> None:
        self.log_path = directory / f"worker-{number}.log"
        env = {k: v for k, v in os.environ.items() if _KEPT_ENV.match(k)}
        env.update(_WORKER_ENV, GIS_SANDBOX_PARENT=str(os.getpid()))
        with open(self.log_path, "wb") as log_file:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gis_platform.sandbox_worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log_file,
                env=env,
                cwd=REPO_ROOT,  # on sys.path (-m): the platform's packages, and the tests' job functions
                start_new_session=True,  # its own process group: a kill takes anything it started
            )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin, self.stdout = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        self.ready = False
        self.warm_rss = 0
        self.jobs = 0

    def usage(self) -> tuple[float, int] | None:
        """(CPU seconds, resident bytes) so far, or None once the process is gone."""
        fields = _proc_stat(self.proc.pid)
        if fields is None or fields[0] == "Z":
            return None
        return (int(fields[11]) + int(fields[12])) / _CLK_TCK, int(fields[21]) * _PAGE

    def wait_readable(self, timeout: float) -> bool:
        poller = select.poll()  # not select.select: a busy server's descriptors pass FD_SETSIZE
        poller.register(self.stdout, select.POLLIN | select.POLLHUP | select.POLLERR)
        return bool(poller.poll(max(timeout, 0) * 1000))

    def read_reply(self, max_bytes: int | None = None) -> tuple[Any, ...]:
        (size,) = FRAME.unpack(read_exact(self.stdout, FRAME.size))
        if max_bytes is not None and size > max_bytes:
            raise pickle.UnpicklingError(f"a sandbox reply of {size} bytes, more than {max_bytes}")
        reply: tuple[Any, ...] = _ResultUnpickler(io.BytesIO(read_exact(self.stdout, size))).load()
        return reply

    def start(self, deadline: float) -> None:
        while not self.ready:
            if not self.wait_readable(deadline - time.monotonic()):
                raise RuntimeError(f"sandbox worker {self.proc.pid} was not ready in time{self._log_tail()}")
            try:
                reply = self.read_reply()
            except (EOFError, pickle.UnpicklingError) as exc:
                raise RuntimeError(f"sandbox worker {self.proc.pid} failed to start{self._log_tail()}") from exc
            self.ready = reply[0] == "ready"
            usage = self.usage()
            self.warm_rss = usage[1] if usage else 0

    def send(self, payload: bytes) -> None:
        write_frame(self.stdin, payload)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        self.log_path.unlink(missing_ok=True)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def _log_tail(self) -> str:
        try:
            tail = self.log_path.read_bytes()[-2000:].decode("utf-8", "replace").strip()
        except OSError:
            return ""
        return f"; its log ends: {tail}" if tail else ""


def cause_of_death(worker: WorkerProcess) -> str:
    code = worker.proc.wait(timeout=10)
    if code == -signal.SIGXCPU:
        return "cpu_time"
    if code == -signal.SIGKILL:  # the kernel's OOM killer, the only other sender
        return "memory"
    log.error("sandbox worker %s exited with %s%s", worker.proc.pid, code, worker._log_tail())
    return "crash"


def process_directory(root: Path) -> Path:
    """This process's directory under ``root`` (created private), after sweeping those of dead processes."""
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = root.lstat()
    if root.is_symlink() or info.st_uid != os.getuid():
        raise errors.ConfigurationError(f"sandbox directory {root} is not a directory owned by this user")
    for entry in root.iterdir():
        found = re.fullmatch(r"(\d+)-(\d+)", entry.name)
        if found and _start_ticks(int(found.group(1))) != int(found.group(2)):
            shutil.rmtree(entry, ignore_errors=True)
    directory = root / f"{os.getpid()}-{_start_ticks(os.getpid())}"
    directory.mkdir(mode=0o700, exist_ok=True)
    return directory
