"""Safe extraction of zipped uploads (a zipped Shapefile, or a zip holding one GeoJSON/GPKG/TXT/DXF).

Refuses members with absolute paths or ``..`` components, links, too many members, an absurd
total uncompressed size or compression ratio (zip bombs), before writing anything to disk.
"""

from __future__ import annotations

import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import InputFileError, UnsafeArchiveError


@dataclass(frozen=True)
class ArchiveLimits:
    max_members: int = 200
    max_uncompressed_bytes: int = 2 * 1024**3
    max_compression_ratio: float = 200.0


def _check_member(info: zipfile.ZipInfo, archive: str) -> None:
    name = info.filename.replace("\\", "/")
    path = PurePosixPath(name)
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or path.is_absolute():
        raise UnsafeArchiveError(f"{archive}: member '{info.filename}' has an absolute path", member=info.filename)
    if ".." in path.parts:
        raise UnsafeArchiveError(
            f"{archive}: member '{info.filename}' escapes the archive with '..'", member=info.filename
        )
    mode = info.external_attr >> 16
    if mode and stat.S_ISLNK(mode):
        raise UnsafeArchiveError(f"{archive}: member '{info.filename}' is a symbolic link", member=info.filename)


def extract_zip(path: Path, target: Path, limits: ArchiveLimits) -> list[Path]:
    """Check every member of ``path`` against ``limits``, then extract the files into ``target``."""
    archive = path.name
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputFileError(f"{archive}: not a readable zip archive ({exc})") from exc
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        if len(infos) > limits.max_members:
            raise UnsafeArchiveError(
                f"{archive}: {len(infos)} members, more than the limit of {limits.max_members}",
                members=len(infos),
            )
        total = 0
        for info in infos:
            _check_member(info, archive)
            total += info.file_size
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > 1024 * 1024 and ratio > limits.max_compression_ratio:
                raise UnsafeArchiveError(
                    f"{archive}: member '{info.filename}' expands {ratio:.0f}× "
                    f"(limit {limits.max_compression_ratio:.0f}×); refusing a possible zip bomb",
                    member=info.filename,
                )
        if total > limits.max_uncompressed_bytes:
            raise UnsafeArchiveError(
                f"{archive}: uncompressed size {total} bytes exceeds the limit of {limits.max_uncompressed_bytes}",
                uncompressed_bytes=total,
            )
        extracted: list[Path] = []
        for info in infos:
            name = PurePosixPath(info.filename.replace("\\", "/"))
            if name.name.startswith(".") or "__MACOSX" in name.parts:
                continue
            dest = target.joinpath(*name.parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            written = 0
            try:
                with zf.open(info) as src, open(dest, "wb") as out:
                    while chunk := src.read(1024 * 1024):
                        written += len(chunk)
                        if written > info.file_size:  # a lying header: stop before filling the disk
                            raise UnsafeArchiveError(f"{archive}: member '{info.filename}' is larger than declared")
                        out.write(chunk)
            except (zipfile.BadZipFile, EOFError, zlib_error()) as exc:
                raise InputFileError(f"{archive}: member '{info.filename}' is corrupt ({exc})") from exc
            extracted.append(dest)
        return extracted


def zlib_error() -> type[Exception]:
    import zlib

    return zlib.error
