"""A sandbox worker: a warm process that reads untrusted files for its server process (:mod:`gis_platform.sandbox`).

The pool starts it as ``python -m gis_platform.sandbox_worker``. It imports GDAL (pyogrio), ezdxf, shapely,
pyproj and the readers once (~1.5 s, the cost a process per upload would pay every time), says it is ready, then
runs one job at a time: a frame on stdin (``fn``, ``args``, ``kwargs``, the job's workspace and limits), a frame
back on stdout (the result, a domain error, or what went wrong). A frame is an 8-byte big-endian length and a
pickle. The job's temporary files (``tempfile``, GDAL's ``CPL_TMPDIR``, zip extraction) go into its workspace,
which the pool removes after the job, however it ended.

The worker dies with its parent (``PR_SET_PDEATHSIG``: a server process killed with SIGKILL takes its workers
with it, even one stuck in GDAL with the GIL held), and carries kernel backstops per job: ``RLIMIT_CPU`` a little
past the job's CPU limit and ``RLIMIT_AS`` at its address space when the job starts plus twice the memory limit
(not at the memory limit itself: GDAL, OpenBLAS and glibc reserve address space they never touch, ~40 MB per
OpenBLAS thread here, so an address-space limit near the real need refuses good files on a many-core server).
The pool's own watchdog on CPU time, wall time and resident memory is what normally stops a job.
"""

from __future__ import annotations

import ctypes
import importlib
import os
import pickle
import resource
import signal
import struct
import tempfile
import traceback
from typing import Any

FRAME = struct.Struct(">Q")
#: What a warm worker has imported before it says it is ready.
WARM_MODULES = (
    "numpy",
    "pandas",
    "shapely",
    "pyproj",
    "pyogrio",
    "ezdxf",
    "gis_platform.ingest.pipeline",
    "gis_platform.ingest.dxf",
    "gis_platform.ingest.boundary_txt",
    "gis_platform.sandbox_jobs",
)
_PR_SET_PDEATHSIG = 1
_CPU_BACKSTOP_S = 2
#: Workers run at a lower CPU priority than the server and PostgreSQL: on a busy machine the checks and map
#: requests of other users go first, and a hostile file's reading waits (within its wall-time limit).
NICENESS = 10


def write_frame(fd: int, payload: bytes) -> None:
    view = memoryview(FRAME.pack(len(payload)) + payload)
    while view:
        view = view[os.write(fd, view) :]


def read_exact(fd: int, size: int) -> bytes:
    """``size`` bytes from ``fd``; EOFError when it closes first."""
    chunks: list[bytes] = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            raise EOFError("the other end of the sandbox pipe closed")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _die_with_parent(parent: int) -> None:
    """Be killed when the thread that started this process ends (the pool's spawner, alive as long as the pool)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - not Linux: the pool's pipe closing ends the loop
        pass
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(0)


def _address_space() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _set_backstops(cpu_s: float | None, memory_bytes: int | None) -> None:
    unlimited = resource.RLIM_INFINITY
    cpu = unlimited if cpu_s is None else int(_cpu_s() + cpu_s + _CPU_BACKSTOP_S) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, unlimited))
    space = unlimited if memory_bytes is None else _address_space() + 2 * memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (space, unlimited))


def _use_workspace(workspace: str | None) -> None:
    tempfile.tempdir = workspace
    for name in ("TMPDIR", "CPL_TMPDIR"):
        if workspace is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = workspace
    import pyogrio

    pyogrio.set_gdal_config_options({"CPL_TMPDIR": workspace})
    os.chdir(workspace or "/")


def run_job(job: dict[str, Any]) -> tuple[Any, ...]:
    """One job's reply: ``("ok", result)``, ``("error", module, class, message, details)`` for a domain error,
    ``("memory",)`` when an allocation failed, ``("crash", type, traceback)`` for anything else."""
    from gis_platform.errors import PlatformError

    _set_backstops(job.get("cpu_s"), job.get("memory_bytes"))
    _use_workspace(job["workspace"])
    try:
        return ("ok", job["fn"](*job["args"], **job["kwargs"]))
    except PlatformError as exc:
        return ("error", type(exc).__module__, type(exc).__qualname__, exc.message, exc.details)
    except MemoryError:
        return ("memory",)
    except Exception as exc:
        return ("crash", type(exc).__name__, traceback.format_exc())
    finally:
        _use_workspace(None)
        _set_backstops(None, None)


def _encode(reply: tuple[Any, ...]) -> bytes:
    try:
        return pickle.dumps(reply, protocol=5)
    except Exception as exc:  # a result or error detail that does not pickle
        return pickle.dumps(("crash", type(exc).__name__, traceback.format_exc()), protocol=5)


def main() -> None:
    protocol_out = os.dup(1)
    os.dup2(2, 1)  # whatever a library prints goes to the worker's log, never into the protocol
    _die_with_parent(int(os.environ.get("GIS_SANDBOX_PARENT", "0")) or os.getppid())
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a job killed by SIGXCPU leaves no core file
    os.nice(NICENESS)
    for module in WARM_MODULES:
        importlib.import_module(module)
    write_frame(protocol_out, pickle.dumps(("ready", os.getpid()), protocol=5))
    while True:
        try:
            (size,) = FRAME.unpack(read_exact(0, FRAME.size))
            job = pickle.loads(read_exact(0, size))  # from the server process that started this one
        except EOFError:  # the pool closed the pipe
            return
        write_frame(protocol_out, _encode(run_job(job)))


if __name__ == "__main__":
    main()
