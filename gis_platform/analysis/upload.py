"""Parcels from an uploaded file (zipped Shapefile, GeoJSON, GeoPackage, boundary TXT, DXF): one per feature."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import shapely

from ..errors import ParcelError
from ..ingest.pipeline import opened_dataset, read_source, resolve_source_crs
from ..settings import Settings
from ..survey_plane import SurveyPlane
from .parcel import Parcel, prepare_parcel


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def parcels_from_file(
    path: Path, settings: Settings, plane: SurveyPlane, *, crs: str | int | None = None
) -> list[Parcel]:
    """Every polygon feature of the file as a validated parcel, in EPSG:4490 and the survey plane."""
    with opened_dataset(path, settings) as dataset:
        source = read_source(dataset, source_name=path.name)
        resolved = resolve_source_crs(source, crs)
        geometries = source.geometries
        present = [i for i, g in enumerate(geometries) if g is not None and not shapely.is_empty(g)]
        if not present:
            raise ParcelError(f"{path.name}: the file holds no parcel geometry")
        if len(present) > settings.max_parcels_per_request:
            raise ParcelError(
                f"{path.name}: {len(present)} parcels, more than the limit of {settings.max_parcels_per_request};"
                " use the batch check"
            )
        records = (
            source.attributes.to_dict(orient="records") if len(source.attributes.columns) else [{}] * len(geometries)
        )
        return [
            prepare_parcel(
                geometries[i],
                resolved.crs,
                plane=plane,
                max_vertices=settings.max_parcel_vertices,
                index=i,
                properties={str(k): _clean(v) for k, v in records[i].items()},
                allow_prefix_inference=True,
            )
            for i in present
        ]
