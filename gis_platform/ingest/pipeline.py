"""The import path: file → reader → CRS → geometry repair → field mapping → atomic version write.

``import_file`` is what ``gis-platform import`` and (later) the HTTP upload call.
"""

from __future__ import annotations

import getpass
import hashlib
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from .. import audit
from ..audit import Actor, AuditEntry, cli_actor
from ..catalog import Catalog
from ..crs import STORAGE_EPSG, ResolvedCRS, resolve_crs, transformer_to_storage
from ..errors import InputFileError, UnsupportedFormatError
from ..settings import Settings
from ..survey_plane import SurveyPlane
from ..units import area_figures
from .archive import ArchiveLimits, extract_zip
from .coverage import CoverageWatch
from .geometry import prepare_geometries
from .limits import ReadLimits
from .ogr import OgrDataset, open_ogr
from .source import SourceData
from .store import (
    RowBatch,
    attach_version_table,
    create_version_table,
    load_features,
    properties_json,
    version_stats,
)

SUPPORTED = (".shp", ".zip", ".geojson", ".json", ".gpkg", ".txt", ".dxf")


@dataclass
class ImportReport:
    """What an import did; printed by the CLI and stored with the version."""

    layer: str
    source_name: str
    source_format: str
    source_checksum: str
    source_crs: str
    crs_source: str
    encoding: str | None
    features_read: int
    features_imported: int
    repaired: int
    dropped_null: int
    dropped_empty: int
    dropped_degenerate: int
    dropped_non_finite: int
    area_total_m2: float | None
    area_model: str = "ellipsoidal (CGCS2000)"
    survey_plane: str = ""
    repaired_in_plane: int = 0
    extent: tuple[float, float, float, float] | None = None
    version_id: int | None = None
    version_no: int | None = None
    unchanged: bool = False
    field_mapping: dict[str, str] = field(default_factory=dict)
    extra_fields: list[str] = field(default_factory=list)
    missing_fields: list[str] = field(default_factory=list)
    repaired_source_fids: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["repaired_source_fids"] = self.repaired_source_fids[:1000]
        return data

    def render(self) -> str:
        """A plain-text report for the terminal (Chinese first, the terms a bureau uses)."""
        if self.unchanged:
            return (
                f"图层 {self.layer}: {self.source_name} 与当前版本 v{self.version_no} 相同 (SHA-256 一致), 未重复导入 "
                f"/ unchanged, not imported again"
            )
        lines = [
            f"导入报告 Import report — 图层 {self.layer} 版本 v{self.version_no} (id {self.version_id})",
            f"  源文件 source: {self.source_name} [{self.source_format}] sha256 {self.source_checksum[:16]}…",
            f"  坐标系 CRS: {self.source_crs} ({self.crs_source}) → EPSG:{STORAGE_EPSG}",
            f"  测量平面 survey plane (overlays): {self.survey_plane}",
        ]
        if self.encoding:
            lines.append(f"  编码 encoding: {self.encoding}")
        lines += [
            f"  读取要素 read: {self.features_read}   入库 imported: {self.features_imported}",
            f"  修复 repaired (make_valid): {self.repaired}"
            + (f"；测量平面中修复 in the survey plane: {self.repaired_in_plane}" if self.repaired_in_plane else ""),
            f"  丢弃 dropped: 空几何 null {self.dropped_null}, 空 empty {self.dropped_empty}, "
            f"退化 degenerate {self.dropped_degenerate}, 非有限坐标 non-finite {self.dropped_non_finite}",
        ]
        if self.area_total_m2 is not None:
            fig = area_figures(self.area_total_m2)
            lines.append(
                f"  面积合计 area total ({self.area_model}): {fig['m2']:,.2f} m² = {fig['hectare']:,.4f} 公顷 "
                f"= {fig['mu']:,.2f} 亩"
            )
        if self.missing_fields:
            lines.append(f"  缺少目录字段 catalogue fields not in file: {', '.join(self.missing_fields)}")
        if self.extra_fields:
            lines.append(f"  保留的其他字段 other fields kept: {', '.join(self.extra_fields)}")
        lines += [f"  注 note: {n}" for n in self.notes]
        lines.append(f"  用时 took {self.duration_s:.2f} s")
        return "\n".join(lines)


def file_checksum(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _shapefile_checksum(shp: Path) -> str:
    """A Shapefile is several files: hash its parts in a fixed order."""
    digest = hashlib.sha256()
    for part in sorted(shp.parent.glob(shp.stem + ".*"), key=lambda p: p.suffix.lower()):
        if part.suffix.lower() in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
            digest.update(part.suffix.lower().encode())
            digest.update(file_checksum(part).encode())
    return digest.hexdigest()


def find_dataset(paths: list[Path], archive: str) -> Path:
    candidates = [p for p in paths if p.suffix.lower() in SUPPORTED and p.suffix.lower() != ".zip"]
    shps = [p for p in candidates if p.suffix.lower() == ".shp"]
    chosen = shps or candidates
    if len(chosen) != 1:
        names = ", ".join(p.name for p in chosen) or "none"
        raise InputFileError(f"{archive}: expected one dataset in the archive, found {len(chosen)} ({names})")
    return chosen[0]


@contextmanager
def opened_dataset(path: Path, settings: Settings) -> Iterator[Path]:
    """The dataset file to read: ``path`` itself, or the one dataset inside a zip, safely extracted."""
    with tempfile.TemporaryDirectory(prefix="gis-import-") as tmp:
        if path.suffix.lower() == ".zip":
            limits = ArchiveLimits(
                settings.max_zip_members, settings.max_uncompressed_bytes, settings.max_compression_ratio
            )
            yield find_dataset(extract_zip(path, Path(tmp), limits), path.name)
        else:
            yield path


class WholeSource:
    """A dataset read at once (boundary TXT, DXF), offered like an :class:`OgrDataset`."""

    def __init__(self, data: SourceData) -> None:
        self.data = data
        self.crs = data.crs
        self.resolved_crs = data.resolved_crs
        self.format = data.format
        self.encoding = data.encoding
        self.notes = data.notes
        self.source_name = data.source_name
        self.count = int(data.geometries.size)
        self.bounds = geometry_bounds(data.geometries, data.source_name)

    def read(self) -> SourceData:
        return self.data

    def batches(self, size: int) -> Iterator[SourceData]:
        yield self.data


def open_source(
    path: Path, *, source_name: str | None = None, layer_name: str | None = None, limits: ReadLimits | None = None
) -> OgrDataset | WholeSource:
    """Pick the reader by file type. Zips must be extracted first (see :func:`opened_dataset`).

    ``limits`` (uploads) bound what is read: counted while reading, refused at the first count past a limit.
    """
    suffix = path.suffix.lower()
    if suffix in (".shp", ".geojson", ".json", ".gpkg"):
        return open_ogr(path, source_name=source_name, layer_name=layer_name, limits=limits)
    if suffix == ".txt":
        from .boundary_txt import read_boundary_txt

        data = read_boundary_txt(path, limits=limits)
    elif suffix == ".dxf":
        from .dxf import read_dxf

        data = read_dxf(path, limits=limits)
    else:
        raise UnsupportedFormatError(
            f"{path.name}: unsupported file type '{suffix or '(none)'}'; "
            f"use a zipped or plain Shapefile, GeoJSON, GeoPackage, boundary TXT or DXF",
            suffix=suffix,
        )
    if source_name:
        data.source_name = source_name
    return WholeSource(data)


def read_source(
    path: Path, *, source_name: str | None = None, layer_name: str | None = None, limits: ReadLimits | None = None
) -> SourceData:
    """The whole dataset in memory (parcel uploads); large layer imports stream with :func:`open_source`."""
    return open_source(path, source_name=source_name, layer_name=layer_name, limits=limits).read()


def geometry_bounds(geometries: np.ndarray, name: str) -> tuple[float, float, float, float]:
    """Extent of the finite geometries, x = easting/longitude."""
    present = geometries[~shapely.is_missing(geometries)]
    bounds = shapely.bounds(present) if present.size else np.empty((0, 4))
    bounds = bounds[np.isfinite(bounds).all(axis=1)]
    if bounds.size == 0:
        raise InputFileError(f"{name}: no geometry has finite coordinates")
    return (float(bounds[:, 0].min()), float(bounds[:, 1].min()), float(bounds[:, 2].max()), float(bounds[:, 3].max()))


def resolve_source_crs(source: SourceData | OgrDataset | WholeSource, crs_override: str | int | None) -> ResolvedCRS:
    """The CRS to read the source in, from what it declares (or the override) and its coordinates."""
    if source.resolved_crs is not None and crs_override is None:
        return source.resolved_crs
    if isinstance(source, SourceData):
        bounds = geometry_bounds(source.geometries, source.source_name)
    elif source.bounds is not None:
        bounds = source.bounds
    else:
        raise InputFileError(f"{source.source_name}: the file holds no geometry with finite coordinates")
    return resolve_crs(source.crs, bounds, override=crs_override)


def import_file(
    engine: Engine,
    catalog: Catalog,
    settings: Settings,
    path: Path,
    layer_code: str,
    *,
    crs: str | int | None = None,
    source_layer: str | None = None,
    imported_by: str | None = None,
    if_changed: bool = False,
    on_progress: Callable[[int, int], Any] | None = None,
    actor: Actor | None = None,
) -> ImportReport:
    """Import ``path`` as a new version of ``layer_code`` and make it current, all or nothing.

    The audit entry (``layer.import``, by ``actor``, default the CLI user) is part of the same transaction.
    """
    started = time.perf_counter()
    layer = catalog.layer(layer_code)
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path}: no such file")
    if not path.is_file():
        raise InputFileError(f"{path}: not a file")
    checksum = _shapefile_checksum(path) if path.suffix.lower() == ".shp" else file_checksum(path)
    if if_changed:
        current = _current_version(engine, layer.code)
        if current is not None and current["source_checksum"] == checksum:
            return _unchanged_report(layer.code, path.name, current)

    with opened_dataset(path, settings) as dataset:
        source = open_source(dataset, source_name=path.name, layer_name=source_layer or layer.code)
        resolved = resolve_source_crs(source, crs)
        transformer = None if resolved.epsg in (STORAGE_EPSG, 4326) else transformer_to_storage(resolved.identity)
        report = ImportReport(
            layer=layer.code,
            source_name=source.source_name,
            source_format=source.format,
            source_checksum=checksum,
            source_crs=f"EPSG:{resolved.epsg}" if resolved.epsg else resolved.crs.name,
            crs_source=resolved.source,
            encoding=source.encoding,
            features_read=0,
            features_imported=0,
            repaired=0,
            dropped_null=0,
            dropped_empty=0,
            dropped_degenerate=0,
            dropped_non_finite=0,
            area_total_m2=None,
            survey_plane=catalog.survey_plane.label,
            notes=[*source.notes, *resolved.notes],
        )
        plane = catalog.survey_plane
        batches = _prepared_batches(source, layer, transformer, plane, resolved, report, settings.import_batch_size)
        by = imported_by or getpass.getuser()
        actor = actor or Actor(name=by if imported_by else cli_actor().name, kind="cli", role="admin")
        coverage = CoverageWatch(layer.geometry_type)
        _write_version(
            engine, layer, coverage.watched(batches), source.count, report, by, on_progress, actor, plane.epsg, coverage
        )
    report.duration_s = time.perf_counter() - started
    return report


def _prepared_batches(
    source: OgrDataset | WholeSource,
    layer: Any,
    transformer: Any,
    plane: SurveyPlane,
    resolved: ResolvedCRS,
    report: ImportReport,
    batch_size: int,
) -> Iterator[RowBatch]:
    """Read, check, reproject (to EPSG:4490 and the survey plane), repair and map each batch; tally the report."""
    catalogue_fields = [f.name for f in layer.fields]
    for batch in source.batches(batch_size):
        prepared = prepare_geometries(
            batch.geometries,
            layer.geometry_type,
            transformer,
            source=source.source_name,
            layer=layer.code,
            to_plane=lambda geometries: plane.to_plane(geometries, resolved),
        )
        mapping = layer.map_fields([str(c) for c in batch.attributes.columns])
        if not report.field_mapping and not report.extra_fields and not report.missing_fields:
            report.field_mapping = {k: v for k, v in mapping.items() if k != v}
            report.extra_fields = [v for v in mapping.values() if v not in catalogue_fields]
            report.missing_fields = [f for f in catalogue_fields if f not in mapping.values()]
        source_fids = batch.attributes.index.to_numpy(dtype=np.int64)
        report.features_read += prepared.read
        report.features_imported += int(prepared.geometries.size)
        report.repaired += prepared.repaired
        report.repaired_in_plane += prepared.repaired_in_plane
        report.dropped_null += prepared.dropped_null
        report.dropped_empty += prepared.dropped_empty
        report.dropped_degenerate += prepared.dropped_degenerate
        report.dropped_non_finite += prepared.dropped_non_finite
        report.repaired_source_fids += [int(source_fids[i]) for i in prepared.repaired_fids]
        attributes = batch.attributes.rename(columns=mapping).iloc[prepared.source_index]
        assert prepared.plane is not None
        properties = properties_json(attributes)
        yield RowBatch(prepared.geometries, source_fids[prepared.source_index], properties, prepared.plane, plane.epsg)


def _write_version(
    engine: Engine,
    layer: Any,
    batches: Iterator[RowBatch],
    expected: int,
    report: ImportReport,
    imported_by: str,
    on_progress: Callable[[int, int], Any] | None,
    actor: Actor,
    plane_srid: int,
    coverage: CoverageWatch,
) -> None:
    with engine.begin() as conn:
        layer_id = _lock_layer_row(conn, layer)
        version_no = conn.execute(
            text("SELECT coalesce(max(version_no), 0) + 1 FROM layer_version WHERE layer_id = :l"), {"l": layer_id}
        ).scalar_one()
        version_id = conn.execute(
            text(
                "INSERT INTO layer_version (layer_id, version_no, status, source_name, source_format, source_checksum,"
                " source_crs, imported_by, feature_count, report, plane_srid)"
                " VALUES (:l, :n, 'superseded', :name, :fmt, :sum, :crs, :by, 0, '{}', :plane) RETURNING id"
            ),
            {
                "l": layer_id,
                "n": version_no,
                "name": report.source_name,
                "fmt": report.source_format,
                "sum": report.source_checksum,
                "crs": report.source_crs,
                "by": imported_by,
                "plane": plane_srid,
            },
        ).scalar_one()
        table = create_version_table(conn, version_id)
        done = 0

        def progress(count: int) -> None:
            nonlocal done
            done += count
            if on_progress:
                on_progress(done, max(expected, done))

        load_features(conn, table, version_id, batches, on_progress=progress)
        if report.features_imported == 0:
            raise InputFileError(
                f"{report.source_name}: no usable geometry (read {report.features_read}; dropped null "
                f"{report.dropped_null}, empty {report.dropped_empty}, degenerate {report.dropped_degenerate}, "
                f"non-finite {report.dropped_non_finite})"
            )
        attach_version_table(conn, table, version_id)
        stats = version_stats(conn, table)
        report.version_id, report.version_no = int(version_id), int(version_no)
        report.area_total_m2 = stats.area_total_m2
        report.extent = stats.extent
        conn.execute(
            text("UPDATE layer_version SET status = 'superseded' WHERE layer_id = :l AND status = 'current'"),
            {"l": layer_id},
        )
        conn.execute(
            text(
                "UPDATE layer_version SET status = 'current', feature_count = :c, area_total_m2 = :a, report = :r,"
                " overlap_fids = :ov,"
                " extent = CASE WHEN :x0 IS NULL THEN NULL"
                "   ELSE ST_SetSRID(ST_MakeEnvelope(:x0, :y0, :x1, :y1), 4490) END"
                " WHERE id = :v"
            ),
            {
                "c": stats.feature_count,
                "ov": coverage.named(),
                "a": stats.area_total_m2,
                "v": version_id,
                "r": _json(report.to_dict()),
                "x0": stats.extent[0] if stats.extent else None,
                "y0": stats.extent[1] if stats.extent else None,
                "x1": stats.extent[2] if stats.extent else None,
                "y1": stats.extent[3] if stats.extent else None,
            },
        )
        conn.execute(text("UPDATE layer SET current_version_id = :v WHERE id = :l"), {"v": version_id, "l": layer_id})
        details = {
            "version_no": int(version_no),
            "version_id": int(version_id),
            "source": report.source_name,
            "checksum": report.source_checksum,
            "features": stats.feature_count,
        }
        audit.record(conn, AuditEntry(actor, "layer.import", f"layer:{layer.code}", details=details))


def _json(data: dict[str, Any]) -> str:
    import json

    return json.dumps(data, ensure_ascii=False, default=str)


def _lock_layer_row(conn: Connection, layer: Any) -> int:
    """Upsert the catalogue row and lock it: concurrent imports of one layer run one after another."""
    conn.execute(
        text(
            "INSERT INTO layer (code, name_zh, layer_group, geometry_type) VALUES (:c, :n, :g, :t)"
            " ON CONFLICT (code) DO UPDATE SET name_zh = excluded.name_zh, layer_group = excluded.layer_group,"
            " geometry_type = excluded.geometry_type"
        ),
        {"c": layer.code, "n": layer.name_zh, "g": layer.group, "t": layer.geometry_type},
    )
    return int(conn.execute(text("SELECT id FROM layer WHERE code = :c FOR UPDATE"), {"c": layer.code}).scalar_one())


def _current_version(engine: Engine, code: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = (
            conn.execute(
                text(
                    "SELECT v.id, v.version_no, v.source_checksum, v.feature_count, v.area_total_m2 FROM layer l"
                    " JOIN layer_version v ON v.id = l.current_version_id WHERE l.code = :c"
                ),
                {"c": code},
            )
            .mappings()
            .one_or_none()
        )
    return dict(row) if row else None


def _unchanged_report(code: str, name: str, current: dict[str, Any]) -> ImportReport:
    return ImportReport(
        layer=code,
        source_name=name,
        source_format="",
        source_checksum=current["source_checksum"],
        source_crs="",
        crs_source="",
        encoding=None,
        features_read=0,
        features_imported=current["feature_count"],
        repaired=0,
        dropped_null=0,
        dropped_empty=0,
        dropped_degenerate=0,
        dropped_non_finite=0,
        area_total_m2=current["area_total_m2"],
        version_id=current["id"],
        version_no=current["version_no"],
        unchanged=True,
    )
