"""Uploaded files: streamed to disk in chunks, refused past the configured size, read in the sandbox."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile  # fastapi.UploadFile subclasses it; forms give this one

from gis_platform.errors import ParcelError
from gis_platform.sandbox import Limits, SandboxPool


async def save_upload(upload: UploadFile, directory: Path, limit: int) -> Path:
    """Write ``upload`` into ``directory`` under its base name; a ParcelError once it exceeds ``limit`` bytes."""
    path = directory / safe_name(upload.filename)
    size = 0
    with open(path, "wb") as out:
        while chunk := await upload.read(1024 * 1024):
            size += len(chunk)
            if size > limit:
                raise ParcelError(f"{path.name}: larger than the upload limit of {limit} bytes", limit_bytes=limit)
            out.write(chunk)
    return path


def safe_name(filename: str | None) -> str:
    """The upload's base name, or ``upload`` for a name that is none (empty, ``.``, ``..``)."""
    name = Path(filename or "").name
    return name if name not in ("", ".", "..") else "upload"


async def read_in_sandbox(
    pool: SandboxPool,
    fn: Callable[..., Any],
    *args: Any,
    limits: Limits,
    workspace: Path,
    name: str,
    **kwargs: Any,
) -> Any:
    """``fn(*args, **kwargs)`` in a sandbox worker (the request's thread waits for it; the event loop does not)."""
    return await run_in_threadpool(lambda: pool.run(fn, args, kwargs, limits=limits, workspace=workspace, name=name))
