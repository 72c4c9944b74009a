"""Reader for the OGR formats: Shapefile, GeoJSON, GeoPackage (through pyogrio / GDAL)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pyogrio.errors
import shapely
from pyproj import CRS

from ..errors import InputFileError
from .encoding import dbf_encoding
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


def _pick_layer(path: Path, wanted: str | None) -> str | None:
    try:
        layers = pyogrio.list_layers(path)
    except (pyogrio.errors.DataSourceError, OSError) as exc:
        raise InputFileError(f"{path.name}: cannot open the file ({exc})") from exc
    names = [str(row[0]) for row in layers]
    if len(names) <= 1:
        return None
    if wanted:
        for name in names:
            if name.lower() == wanted.lower():
                return name
    raise InputFileError(
        f"{path.name} holds {len(names)} layers ({', '.join(names)}); name the one to import",
        layers=names,
    )


def read_ogr(path: Path, *, source_name: str | None = None, layer_name: str | None = None) -> SourceData:
    """Read every feature of a Shapefile, GeoJSON or GeoPackage into a :class:`SourceData`."""
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
        meta, _fids, wkb, field_data = pyogrio.raw.read(path, layer=layer, encoding=encoding)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, pyogrio.errors.FieldError) as exc:
        raise InputFileError(f"{path.name}: cannot read the file ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise InputFileError(f"{path.name}: attribute text is not valid {encoding} ({exc})") from exc
    except Exception as exc:  # GDAL reports truncated or corrupt data with generic errors
        raise InputFileError(f"{path.name}: the file is unreadable or truncated ({exc})") from exc
    geometries = (
        np.asarray(shapely.from_wkb(wkb, on_invalid="fix"), dtype=object)
        if wkb is not None
        else np.array([], dtype=object)
    )
    columns = {str(name): values for name, values in zip(meta["fields"], field_data, strict=True)}
    attributes = pd.DataFrame(columns, index=pd.RangeIndex(len(geometries)))
    crs = CRS.from_user_input(meta["crs"]) if meta.get("crs") else None
    if fmt == "geojson" and crs is not None and crs.to_epsg() == 4326 and not _geojson_declares_crs(path):
        crs = (
            None  # GDAL reports EPSG:4326 for any GeoJSON without a "crs" member: that is a default, not a declaration
        )
    notes = []
    if meta.get("encoding") and fmt == "shapefile":
        notes.append(f"DBF text decoded as {encoding}")
    return SourceData(
        geometries=geometries,
        attributes=attributes,
        crs=crs,
        source_name=source_name or path.name,
        format=fmt,
        encoding=encoding,
        notes=notes,
    )


def _geojson_declares_crs(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(64 * 1024)
    return b'"crs"' in head
