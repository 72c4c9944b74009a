"""Jobs for the sandbox pool's tests (run in a worker process; module-level so that they pickle by name)."""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

from gis_platform.errors import InputFileError


def add(a: int, b: int) -> int:
    return a + b


def pid() -> int:
    return os.getpid()


def burn_cpu(seconds: float) -> int:
    end, count = time.process_time() + seconds, 0
    while time.process_time() < end:
        count += 1
    return count


def grow_memory(mb: int) -> int:
    blocks = [bytearray(1024 * 1024) for _ in range(mb)]
    for block in blocks:  # touch every page: resident, not only reserved
        block[::4096] = b"x" * len(block[::4096])
    time.sleep(10)
    return len(blocks)


def sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def exit_hard() -> None:
    os._exit(3)


def temp_file_then_sleep(seconds: float) -> str:
    """A temporary file in the job's workspace (where tempfile points in a worker), then too long a sleep."""
    fd, path = tempfile.mkstemp(suffix=".part")
    os.write(fd, b"partial upload")
    os.close(fd)
    time.sleep(seconds)
    return path


def workspace_files() -> list[str]:
    return sorted(os.listdir(tempfile.gettempdir()))


def forbidden_result() -> Any:
    import collections

    return collections.OrderedDict(a=1)  # unpickled by naming collections.OrderedDict: not on the allow-list


def domain_error() -> None:
    where = tempfile.gettempdir()
    raise InputFileError(f"{where}/parcels.gpkg: broken", file=f"{where}/parcels.gpkg")
