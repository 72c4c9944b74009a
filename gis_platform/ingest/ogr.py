"""Reader for the OGR formats: Shapefile, GeoJSON, GeoPackage (through pyogrio / GDAL).

A GeoPackage's schema is checked before GDAL opens it (:mod:`.gpkg`: real tables only, read-only and
immutable). With :class:`~.limits.ReadLimits` the declared feature count is checked before anything is read, and
the vertices of what is read are counted against the file's limit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pyogrio.errors
import shapely
from pyproj import CRS

from ..errors import InputFileError
from .encoding import dbf_encoding
from .gpkg import OPEN_OPTIONS, geopackage_layers
from .limits import ReadLimits, VertexBudget
from .source import SourceData

FORMATS = {".shp": "shapefile", ".geojson": "geojson", ".json": "geojson", ".gpkg": "gpkg"}


def _shapefile_encoding(shp: Path) -> str:
    cpg = shp.with_suffix(".cpg")
    if not cpg.exists():
        cpg = next((p for p in shp.parent.glob(shp.stem + ".*") if p.suffix.lower() == ".cpg"), cpg)
    cpg_text = cpg.read_text(encoding="ascii", errors="replace") if cpg.exists() else None
    dbf = next((p for p in shp.parent.glob(shp.stem + ".*") if p.suffix.lower() == ".dbf"), None)
    if dbf is None:
        raise InputFileError(f"{shp.name}: the .dbf attribute file of this Shapefile is missing")
    with open(dbf, "rb") as fh:
        sample = fh.read(2 * 1024 * 1024)
    return dbf_encoding(cpg_text, sample)


def _check_shapefile_sizes(shp: Path) -> None:
    """A truncated .shp or .dbf reads as silently missing features in GDAL: compare the headers' sizes."""
    with open(shp, "rb") as fh:
        header = fh.read(100)
    if len(header) < 100 or int.from_bytes(header[0:4], "big") != 9994:
        raise InputFileError(f"{shp.name}: not a Shapefile (bad .shp header)")
    declared = int.from_bytes(header[24:28], "big") * 2
    actual = shp.stat().st_size
    if actual < declared:
        raise InputFileError(f"{shp.name}: truncated: the header declares {declared} bytes, the file has {actual}")
    dbf = next((p for p in shp.parent.glob(shp.stem + ".*") if p.suffix.lower() == ".dbf"), None)
    if dbf is None:
        return
    with open(dbf, "rb") as fh:
        head = fh.read(12)
    if len(head) < 12:
        raise InputFileError(f"{dbf.name}: truncated attribute file")
    records = int.from_bytes(head[4:8], "little")
    header_len = int.from_bytes(head[8:10], "little")
    record_len = int.from_bytes(head[10:12], "little")
    expected = header_len + records * record_len
    if dbf.stat().st_size < expected:
        raise InputFileError(
            f"{dbf.name}: truncated: {records} records need {expected} bytes, the file has {dbf.stat().st_size}"
        )


def _pick_layer(path: Path, wanted: str | None) -> str:
    names = geopackage_layers(path)  # real tables only, checked before GDAL opens the file
    if not names:
        raise InputFileError(f"{path.name}: the GeoPackage registers no feature table")
    if len(names) == 1:
        return names[0]
    if wanted:
        for name in names:
            if name.lower() == wanted.lower():
                return name
    raise InputFileError(
        f"{path.name} holds {len(names)} layers ({', '.join(names)}); name the one to import",
        layers=names,
    )


@dataclass
class OgrDataset:
    """An opened Shapefile/GeoJSON/GeoPackage: what it declares, read in batches on demand."""

    path: Path
    layer: str | None
    format: str
    encoding: str | None
    crs: CRS | None
    bounds: tuple[float, float, float, float] | None
    count: int
    source_name: str
    notes: list[str] = field(default_factory=list)
    resolved_crs: None = None  # OGR formats declare their CRS; the importer resolves it
    limits: ReadLimits | None = None
    budget: VertexBudget | None = None

    @property
    def open_options(self) -> dict[str, str]:
        return OPEN_OPTIONS if self.format == "gpkg" else {}

    def read(self, *, skip: int = 0, limit: int | None = None) -> SourceData:
        """Features ``skip`` … ``skip + limit`` (all when limit is None) as a :class:`SourceData`."""
        name = self.path.name
        try:
            meta, _fids, wkb, field_data = pyogrio.raw.read(
                self.path,
                layer=self.layer,
                encoding=self.encoding,
                skip_features=skip,
                max_features=limit,
                **self.open_options,
            )
        except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, pyogrio.errors.FieldError) as exc:
            raise InputFileError(f"{name}: cannot read the file ({exc})") from exc
        except UnicodeDecodeError as exc:
            raise InputFileError(f"{name}: attribute text is not valid {self.encoding} ({exc})") from exc
        except Exception as exc:  # GDAL reports truncated or corrupt data with generic errors
            raise InputFileError(f"{name}: the file is unreadable or truncated ({exc})") from exc
        geometries = (
            np.asarray(shapely.from_wkb(wkb, on_invalid="fix"), dtype=object)
            if wkb is not None
            else np.array([], dtype=object)
        )
        if self.budget is not None:
            self.budget.add(int(shapely.get_num_coordinates(geometries).sum()) if geometries.size else 0)
        columns = {str(col): values for col, values in zip(meta["fields"], field_data, strict=True)}
        attributes = pd.DataFrame(columns, index=pd.RangeIndex(skip, skip + len(geometries)))
        return SourceData(
            geometries=geometries,
            attributes=attributes,
            crs=self.crs,
            source_name=self.source_name,
            format=self.format,
            encoding=self.encoding,
            notes=list(self.notes),
        )

    def batches(self, size: int) -> Iterator[SourceData]:
        """The whole dataset in batches of ``size`` features (GeoJSON in one: it has no fast random access)."""
        if self.format == "geojson" or self.count <= size:
            yield self.read()
            return
        for skip in range(0, self.count, size):
            yield self.read(skip=skip, limit=size)


def open_ogr(
    path: Path,
    *,
    source_name: str | None = None,
    layer_name: str | None = None,
    limits: ReadLimits | None = None,
) -> OgrDataset:
    """Open a Shapefile, GeoJSON or GeoPackage and read what it declares (CRS, extent, count, encoding).

    With ``limits`` a declared feature count past the limit is refused here, before any feature is read.
    """
    suffix = path.suffix.lower()
    fmt = FORMATS.get(suffix)
    if fmt is None:
        raise InputFileError(f"{path.name}: not a Shapefile, GeoJSON or GeoPackage")
    encoding = _shapefile_encoding(path) if fmt == "shapefile" else None
    if fmt == "shapefile":
        if not any(p.suffix.lower() == ".shx" for p in path.parent.glob(path.stem + ".*")):
            raise InputFileError(f"{path.name}: the .shx index file of this Shapefile is missing")
        _check_shapefile_sizes(path)
    layer = _pick_layer(path, layer_name) if fmt == "gpkg" else None
    try:
        info = pyogrio.read_info(
            path,
            layer=layer,
            encoding=encoding,
            force_feature_count=True,
            force_total_bounds=True,
            **(OPEN_OPTIONS if fmt == "gpkg" else {}),
        )
    except Exception as exc:  # GDAL reports unreadable or truncated data with generic errors
        raise InputFileError(f"{path.name}: cannot read the file ({exc})") from exc
    crs = CRS.from_user_input(info["crs"]) if info.get("crs") else None
    if fmt == "geojson" and crs is not None and crs.to_epsg() == 4326 and not _geojson_declares_crs(path):
        crs = None  # GDAL reports EPSG:4326 for any GeoJSON without a "crs" member: a default, not a declaration
    raw_bounds = info.get("total_bounds")
    bounds = None
    if raw_bounds is not None and all(np.isfinite(raw_bounds)):
        bounds = (float(raw_bounds[0]), float(raw_bounds[1]), float(raw_bounds[2]), float(raw_bounds[3]))
    notes = [f"DBF text decoded as {encoding}"] if fmt == "shapefile" else []
    count = int(info.get("features") or 0)
    if limits is not None:
        limits.check_features(count, source_name or path.name)
    return OgrDataset(
        path=path,
        layer=layer,
        format=fmt,
        encoding=encoding,
        crs=crs,
        bounds=bounds,
        count=count,
        source_name=source_name or path.name,
        notes=notes,
        limits=limits,
        budget=VertexBudget(limits, source_name or path.name) if limits is not None else None,
    )


def read_ogr(path: Path, *, source_name: str | None = None, layer_name: str | None = None) -> SourceData:
    """Read every feature of a Shapefile, GeoJSON or GeoPackage into one :class:`SourceData`."""
    return open_ogr(path, source_name=source_name, layer_name=layer_name).read()


def _geojson_declares_crs(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(64 * 1024)
    return b'"crs"' in head
