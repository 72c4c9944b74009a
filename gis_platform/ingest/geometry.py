"""Geometry preparation for storage: type check, reprojection to EPSG:4490 and the survey plane, repair, drop counts.

Each feature is stored twice, both derived from the file's own coordinates: in EPSG:4490 for the map, the
services and the stored areas (exactly as before the survey plane existed, so re-importing an unchanged file
gives identical geometry), and in the county's survey plane for every overlay (unchanged when the file is in
that zone). Each form is repaired with ``make_valid`` where it is invalid; which features are kept is decided
on the EPSG:4490 form, as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import shapely
from pyproj import Transformer

from ..errors import GeometryError

# shapely type ids
POINT, LINESTRING, LINEARRING, POLYGON, MULTIPOINT, MULTILINESTRING, MULTIPOLYGON, COLLECTION = range(8)

ACCEPTED_TYPES = {
    "polygon": {POLYGON, MULTIPOLYGON},
    "line": {LINESTRING, MULTILINESTRING},
    "point": {POINT, MULTIPOINT},
}
TYPE_NAMES = {
    POINT: "Point",
    LINESTRING: "LineString",
    LINEARRING: "LinearRing",
    POLYGON: "Polygon",
    MULTIPOINT: "MultiPoint",
    MULTILINESTRING: "MultiLineString",
    MULTIPOLYGON: "MultiPolygon",
    COLLECTION: "GeometryCollection",
}


@dataclass
class PreparedGeometries:
    """Geometries ready for storage and the positions (into the source) they came from."""

    geometries: np.ndarray
    source_index: np.ndarray
    read: int
    plane: np.ndarray | None = None
    """The same features in the survey plane (None when no plane was asked for)."""
    repaired: int = 0
    repaired_in_plane: int = 0
    dropped_null: int = 0
    dropped_empty: int = 0
    dropped_degenerate: int = 0
    dropped_non_finite: int = 0
    repaired_fids: list[int] = field(default_factory=list)

    @property
    def dropped(self) -> int:
        return self.dropped_null + self.dropped_empty + self.dropped_degenerate + self.dropped_non_finite


def check_geometry_types(geometries: np.ndarray, geometry_type: str, *, source: str, layer: str) -> None:
    """Refuse a file whose geometries do not fit the layer, naming what was found."""
    present = geometries[~shapely.is_missing(geometries)]
    if present.size == 0:
        return  # nothing to judge; an import with no usable geometry at all fails later, naming the counts
    ids, counts = np.unique(shapely.get_type_id(present), return_counts=True)
    found = {int(i): int(c) for i, c in zip(ids, counts, strict=True)}
    accepted = ACCEPTED_TYPES[geometry_type]
    wrong = {TYPE_NAMES[i]: c for i, c in found.items() if i not in accepted}
    if not wrong:
        return
    summary = ", ".join(f"{c} {TYPE_NAMES[i]}" for i, c in sorted(found.items()))
    if len(found) > 1:
        raise GeometryError(
            f"{source}: mixed geometry types ({summary}); layer {layer} takes {geometry_type} geometries only",
            found=summary,
        )
    raise GeometryError(
        f"{source}: {summary} geometries, but layer {layer} takes {geometry_type} geometries", found=summary
    )


def to_storage(geometries: np.ndarray, transformer: Transformer | None) -> np.ndarray:
    """Reproject all coordinates in one vectorised call (x = easting/lon, y = northing/lat)."""
    if transformer is None:
        return geometries

    def _transform(coords: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return np.asarray(shapely.transform(geometries, _transform), dtype=object)


def _keep_dimension(geometry: shapely.Geometry, accepted: set[int]) -> shapely.Geometry:
    """The parts of a repaired geometry that have the layer's dimension (make_valid may add lines/points)."""
    type_id = shapely.get_type_id(geometry)
    if type_id in accepted:
        return geometry
    parts = shapely.get_parts(geometry)
    keep = parts[np.isin(shapely.get_type_id(parts), list(accepted))]
    if keep.size == 0:
        return shapely.Polygon() if POLYGON in accepted else shapely.GeometryCollection()
    flat = shapely.get_parts(keep)
    if POLYGON in accepted:
        return shapely.multipolygons(flat) if flat.size > 1 else flat[0]
    if LINESTRING in accepted:
        return shapely.multilinestrings(flat) if flat.size > 1 else flat[0]
    return shapely.multipoints(flat) if flat.size > 1 else flat[0]


def _repaired(geoms: np.ndarray, accepted: set[int]) -> tuple[np.ndarray, np.ndarray]:
    """``geoms`` with the invalid ones made valid (keeping the layer's dimension), and the mask of those."""
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        repaired = shapely.make_valid(geoms[invalid])
        geoms = geoms.copy()
        geoms[invalid] = [_keep_dimension(g, accepted) for g in repaired]
    return geoms, invalid


def prepare_geometries(
    geometries: np.ndarray,
    geometry_type: str,
    transformer: Transformer | None,
    *,
    source: str,
    layer: str,
    to_plane: Callable[[np.ndarray], np.ndarray] | None = None,
) -> PreparedGeometries:
    """Check types, reproject, repair invalid geometries with make_valid, drop null/empty/degenerate ones.

    ``to_plane`` brings the file's geometries into the survey plane; the result then carries them in
    :attr:`PreparedGeometries.plane`, aligned with :attr:`PreparedGeometries.geometries`.
    """
    read = int(geometries.size)
    check_geometry_types(geometries, geometry_type, source=source, layer=layer)
    index = np.arange(read)
    result = PreparedGeometries(geometries=geometries, source_index=index, read=read)

    missing = shapely.is_missing(geometries)
    result.dropped_null = int(missing.sum())
    empty = ~missing & shapely.is_empty(geometries)
    result.dropped_empty = int(empty.sum())
    keep = ~missing & ~empty
    geoms, index = geometries[keep], index[keep]

    bounds = shapely.bounds(geoms)
    finite = np.isfinite(bounds).all(axis=1)
    result.dropped_non_finite = int((~finite).sum())
    geoms, index = geoms[finite], index[finite]

    accepted = ACCEPTED_TYPES[geometry_type]
    plane = to_plane(geoms) if to_plane is not None else None
    geoms, invalid = _repaired(to_storage(geoms, transformer), accepted)

    if geometry_type == "polygon":
        degenerate = shapely.is_empty(geoms) | (shapely.area(geoms) <= 0)
    elif geometry_type == "line":
        degenerate = shapely.is_empty(geoms) | (shapely.length(geoms) <= 0)
    else:
        degenerate = shapely.is_empty(geoms)
    repaired_and_kept = invalid & ~degenerate
    result.repaired = int(repaired_and_kept.sum())
    result.repaired_fids = [int(i) for i in index[repaired_and_kept]]
    result.dropped_degenerate = int(degenerate.sum())
    result.geometries = geoms[~degenerate]
    result.source_index = index[~degenerate]
    if plane is not None:
        plane, plane_invalid = _repaired(plane[~degenerate], accepted)
        result.plane = plane
        result.repaired_in_plane = int(plane_invalid.sum())
    return result
