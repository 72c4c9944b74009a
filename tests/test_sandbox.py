"""The sandbox pool (gis_platform/sandbox.py): warm workers, limits, clean-up, bounded waits, dying with the server.

The jobs are in tests/sandbox_probe.py. Each breach kills a worker and the next job waits for its warm replacement
(~1.5 s), so the limits here are small.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gis_platform.errors import InputFileError, ProcessingLimitError, SandboxBusyError
from gis_platform.sandbox import Limits, SandboxPool
from gis_platform.sandbox_process import _proc_stat, _start_ticks

from . import sandbox_probe as probe

LIMITS = Limits(cpu_s=1.0, wall_s=2.5, memory_mb=450)


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxPool]:
    sandbox = SandboxPool(1, tmp_path_factory.mktemp("sandbox-root"), queue_timeout_s=60)
    yield sandbox
    sandbox.close()


def run(pool: SandboxPool, fn: object, *args: object) -> object:
    with pool.workspace() as workspace:
        return pool.run(fn, args, limits=LIMITS, workspace=workspace, name="parcels.dxf")  # type: ignore[arg-type]


def job_dirs(pool: SandboxPool) -> list[str]:
    return sorted(p.name for p in pool.directory.iterdir() if p.name.startswith("job-"))


def test_a_warm_worker_answers_at_once_and_is_reused(pool: SandboxPool) -> None:
    first = run(pool, probe.pid)  # may wait for the worker to warm up
    started = time.perf_counter()
    assert run(pool, probe.add, 2, 3) == 5
    assert time.perf_counter() - started < 0.5  # GDAL already imported: no ~1.5 s start
    assert run(pool, probe.pid) == first != os.getpid()


@pytest.mark.parametrize(
    ("job", "arg", "limit", "words"),
    [
        (probe.burn_cpu, 60, "cpu_time", ["CPU 时间", "CPU time limit of 1 s"]),
        (probe.grow_memory, 900, "memory", ["内存", "memory limit of 450 MB"]),
        (probe.sleep, 60, "wall_time", ["处理时间", "processing time limit of 2.5 s"]),
    ],
)
def test_a_limit_stops_the_worker_and_names_the_limit(
    pool: SandboxPool, job: object, arg: int, limit: str, words: list[str]
) -> None:
    before = run(pool, probe.pid)
    started = time.perf_counter()
    with pytest.raises(ProcessingLimitError) as caught:
        run(pool, job, arg)
    assert time.perf_counter() - started < LIMITS.wall_s + 2
    error = caught.value
    assert error.code == "processing_limit_exceeded" and error.details["limit"] == limit
    assert error.message.startswith("parcels.dxf: 读取文件超过")
    for word in words:
        assert word in error.message
    stat = _proc_stat(int(str(before)))
    assert stat is None or stat[0] == "Z"  # that worker is gone
    assert run(pool, probe.add, 1, 1) == 2  # and a fresh one took its place
    assert job_dirs(pool) == []


def test_a_killed_job_leaves_no_files(pool: SandboxPool) -> None:
    with pool.workspace() as workspace:
        with pytest.raises(ProcessingLimitError):
            pool.run(probe.temp_file_then_sleep, (60,), limits=LIMITS, workspace=workspace)
        assert [p.suffix for p in workspace.iterdir()] == [".part"]  # what the worker left when it was killed …
    assert not workspace.exists()  # … goes with its workspace
    assert job_dirs(pool) == []
    assert run(pool, probe.workspace_files) == []  # the next job starts in an empty workspace


def test_a_crashed_worker_is_an_unreadable_file(pool: SandboxPool) -> None:
    with pytest.raises(InputFileError) as caught:
        run(pool, probe.exit_hard)
    assert caught.value.message == "parcels.dxf: 文件无法读取 / the file could not be read"
    assert run(pool, probe.add, 1, 2) == 3


def test_a_reply_naming_other_classes_is_refused(pool: SandboxPool) -> None:
    with pytest.raises(InputFileError, match="could not be read"):
        run(pool, probe.forbidden_result)
    assert run(pool, probe.add, 1, 2) == 3


def test_domain_errors_come_back_without_the_server_path(pool: SandboxPool) -> None:
    with pool.workspace() as workspace, pytest.raises(InputFileError) as caught:
        pool.run(probe.domain_error, limits=LIMITS, workspace=workspace)
    assert caught.value.message == "parcels.gpkg: broken"
    assert caught.value.details == {"file": "parcels.gpkg"}
    assert str(workspace) not in repr(caught.value.to_dict())


def test_waiting_for_a_worker_is_bounded(tmp_path: Path) -> None:
    pool = SandboxPool(1, tmp_path, queue_timeout_s=0.5)
    try:
        run(pool, probe.add, 1, 1)  # warm
        busy = threading.Thread(target=run, args=(pool, probe.sleep, 2.0))
        busy.start()
        time.sleep(0.3)
        started = time.perf_counter()
        with pytest.raises(SandboxBusyError) as caught:
            run(pool, probe.add, 1, 1)
        assert 0.4 < time.perf_counter() - started < 2.0
        assert caught.value.code == "sandbox_busy" and "retry" in caught.value.message
        busy.join()
        assert run(pool, probe.add, 1, 1) == 2
    finally:
        pool.close()


def test_a_new_pool_sweeps_the_directories_of_dead_processes(tmp_path: Path) -> None:
    dead = tmp_path / "999999999-12345"  # no such process
    reused = tmp_path / f"{os.getpid()}-1"  # this pid, another start: a process that ran before
    alive = tmp_path / f"{os.getppid()}-{_start_ticks(os.getppid())}"  # a running process: not ours to remove
    for directory in (dead, reused, alive):
        (directory / "job-x").mkdir(parents=True)
        (directory / "job-x" / "upload.gpkg").write_bytes(b"left behind")
    pool = SandboxPool(1, tmp_path)
    try:
        assert not dead.exists() and not reused.exists() and alive.exists()
        assert pool.directory.name == f"{os.getpid()}-{_start_ticks(os.getpid())}"
    finally:
        pool.close()
    assert not pool.directory.exists()


def test_workers_die_with_their_server_process(tmp_path: Path) -> None:
    """A server process killed outright (SIGKILL: no atexit, no lifespan) takes its workers with it."""
    script = (
        "import sys, time\n"
        "from gis_platform.sandbox import Limits, SandboxPool\n"
        "from tests import sandbox_probe\n"
        f"pool = SandboxPool(2, __import__('pathlib').Path({str(tmp_path)!r}))\n"
        "with pool.workspace() as ws:\n"
        "    print(pool.run(sandbox_probe.pid, limits=Limits(5, 30, 500), workspace=ws), flush=True)\n"
        "time.sleep(60)\n"
    )
    server = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=Path(__file__).parents[1], start_new_session=True
    )
    try:
        assert server.stdout is not None
        worker = int(server.stdout.readline())
        os.kill(worker, 0)  # running
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        stat = _proc_stat(worker)
        if stat is None or stat[0] == "Z":  # gone, or dead and waiting to be reaped by whoever adopted it
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"sandbox worker {worker} outlived its server process")
