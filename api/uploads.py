"""Uploaded files: streamed to disk in chunks, refused past the configured size."""

from __future__ import annotations

from pathlib import Path

from starlette.datastructures import UploadFile  # fastapi.UploadFile subclasses it; forms give this one

from gis_platform.errors import ParcelError


async def save_upload(upload: UploadFile, directory: Path, limit: int) -> Path:
    """Write ``upload`` into ``directory`` under its base name; a ParcelError once it exceeds ``limit`` bytes."""
    path = directory / Path(upload.filename or "upload").name
    size = 0
    with open(path, "wb") as out:
        while chunk := await upload.read(1024 * 1024):
            size += len(chunk)
            if size > limit:
                raise ParcelError(f"{path.name}: larger than the upload limit of {limit} bytes", limit_bytes=limit)
            out.write(chunk)
    return path
