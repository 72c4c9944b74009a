"""Parcels submitted for a compliance check: parse, validate, reproject to EPSG:4490 and the survey plane, repair.

A parcel arrives as GeoJSON (a geometry, a Feature or a FeatureCollection) in EPSG:4490 by default
or in a CGCS2000 Gauss-Krüger EPSG code, or as a file through the import readers. Everything wrong
with it is a :class:`~gis_platform.errors.ParcelError` whose message names the problem.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

import numpy as np
import orjson
import pyproj
import shapely
from shapely.geometry.base import BaseGeometry

from ..crs import STORAGE_EPSG, resolve_crs, transformer_to_storage
from ..errors import CRSError, ParcelError
from ..ingest.geometry import to_storage
from ..survey_plane import SurveyPlane

POLYGONAL = ("Polygon", "MultiPolygon")


@dataclass
class Parcel:
    """One parcel ready for checking: in EPSG:4490 (stored, shown) and in the survey plane (overlaid)."""

    geometry: BaseGeometry
    source_crs: str
    plane: BaseGeometry
    """The parcel in the county's survey plane, projected vertex by vertex (unchanged when sent in that zone)."""
    plane_srid: int
    sent: dict[str, str]
    """The parcel exactly as sent: ``{"crs": …, "wkb": hex WKB in that CRS}`` (what a replay starts from)."""
    properties: dict[str, Any] = field(default_factory=dict)
    repairs: list[str] = field(default_factory=list)
    vertex_count: int = 0
    label: str | None = None
    """The parcel's name, from the field :mod:`gis_platform.analysis.parcel_use` settles (地块名称 first)."""
    index: int = 0
    """Its place in the input (0-based, counting features without geometry too): 'parcel 3' in messages."""

    @cached_property
    def storage_ewkb(self) -> str:
        """The parcel in EPSG:4490 as hex EWKB: what a check record keeps, and the overlay measures the parcel by."""
        return str(shapely.to_wkb(shapely.set_srid(self.geometry, STORAGE_EPSG), hex=True, include_srid=True))


def _geometries_from_geojson(data: Any) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(geometry dict, properties) pairs from a geometry, Feature or FeatureCollection."""
    if not isinstance(data, dict) or "type" not in data:
        raise ParcelError("the parcel must be a GeoJSON object with a 'type' (geometry, Feature or FeatureCollection)")
    kind = data["type"]
    if kind == "FeatureCollection":
        features = data.get("features")
        if not isinstance(features, list) or not features:
            raise ParcelError("the FeatureCollection holds no features")
        pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for i, feature in enumerate(features):
            if not isinstance(feature, dict) or feature.get("type") != "Feature":
                raise ParcelError(f"features[{i}] is not a GeoJSON Feature")
            pairs.extend(_geometries_from_geojson(feature))
        return pairs
    if kind == "Feature":
        geometry = data.get("geometry")
        if geometry is None:
            raise ParcelError("the Feature has no geometry")
        properties = data.get("properties") or {}
        return [(geometry, properties if isinstance(properties, dict) else {})]
    return [(data, {})]


def _shape(geometry: dict[str, Any], index: int) -> BaseGeometry:
    kind = geometry.get("type") if isinstance(geometry, dict) else None
    if kind not in POLYGONAL:
        raise ParcelError(
            f"parcel {index + 1}: geometry type {kind!r} cannot be checked; give a Polygon or MultiPolygon",
            geometry_type=kind,
        )
    coords = geometry.get("coordinates")
    if not coords:
        raise ParcelError(f"parcel {index + 1}: empty geometry (no coordinates)")
    try:
        text = orjson.dumps(coords, option=orjson.OPT_SERIALIZE_NUMPY)
    except (TypeError, orjson.JSONEncodeError):  # e.g. an integer past 64 bits
        text = b""
    if not (_NUMBERS_ONLY.fullmatch(text) and not _SHORT_POSITION.search(text)):
        _check_numbers(coords, index)  # something other than positions of two or more finite numbers: name it
    try:
        shape = shapely.from_geojson(b'{"type":"%s","coordinates":%s}' % (kind.encode(), text))
    except (shapely.errors.GEOSException, ValueError, TypeError) as exc:
        _check_numbers(coords, index)
        raise ParcelError(f"parcel {index + 1}: malformed {kind} coordinates ({exc})") from exc
    return shape


#: The coordinates as JSON text hold nothing but numbers and brackets: no string, true, false or null (orjson
#: writes NaN and infinity as null). Testing the text is ~5× faster than walking the lists in Python.
_NUMBERS_ONLY = re.compile(rb"[\[\]0-9eE.+\-,]+")
#: A position with fewer than two numbers (or an empty list).
_SHORT_POSITION = re.compile(rb"\[[^\[\],]*\]")


_PLAIN_NUMBERS = frozenset({int, float})


def _is_position(item: list[Any] | tuple[Any, ...]) -> bool:
    """Whether every value of a non-empty list is a number (``bool`` is not); the set of types is the fast test."""
    return {type(v) for v in item} <= _PLAIN_NUMBERS or all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in item
    )


def _check_numbers(coords: Any, index: int) -> None:
    """Every position of nested coordinate lists: at least two numbers, all finite; anything else is named."""
    stack = [coords]
    while stack:
        item = stack.pop()
        if not isinstance(item, list | tuple):
            raise ParcelError(f"parcel {index + 1}: coordinate value {item!r} is not a number")
        if item and _is_position(item):
            if len(item) < 2:
                raise ParcelError(f"parcel {index + 1}: a position needs at least two numbers, got {item}")
            if not all(map(math.isfinite, item)):
                raise ParcelError(f"parcel {index + 1}: non-finite coordinate {item} (NaN or infinity)")
        else:
            stack.extend(item)


@lru_cache(maxsize=64)
def parse_crs(crs: str | int | None) -> pyproj.CRS:
    """The CRS a request names (EPSG:4490 when none); cached, as building a CRS costs about a millisecond."""
    if crs is None or crs == "":
        return pyproj.CRS.from_epsg(STORAGE_EPSG)
    try:
        return pyproj.CRS.from_user_input(crs)
    except pyproj.exceptions.CRSError as exc:
        raise CRSError(f"unknown CRS {crs!r}; use EPSG:4490 or a CGCS2000 Gauss-Krüger code (EPSG:4513–4554)") from exc


def _repair(geometry: BaseGeometry, where: str) -> tuple[BaseGeometry, str | None]:
    """A valid polygonal form of ``geometry`` and the GEOS reason it was invalid (None when it was valid)."""
    if geometry.is_valid:
        return geometry, None
    reason = shapely.is_valid_reason(geometry)
    parts = shapely.get_parts(shapely.make_valid(geometry))
    polys = [p for p in parts if p.geom_type in POLYGONAL]
    if not polys:
        raise ParcelError(f"{where}: invalid geometry ({reason}) with no area left after repair")
    return shapely.unary_union(polys), reason


def _check_parts(geometry: BaseGeometry, max_parts: int | None, where: str) -> None:
    parts = int(shapely.get_num_geometries(geometry))
    if max_parts is not None and parts > max_parts:
        raise ParcelError(
            f"{where}: 多部件地块有 {parts} 个部分，超过上限 {max_parts} / a multi-part parcel of {parts} parts,"
            f" more than the limit of {max_parts}; check the parts separately (the batch check) or merge them",
            parts=parts,
            limit=max_parts,
        )


def prepare_parcel(
    geometry: BaseGeometry,
    crs: pyproj.CRS | None,
    *,
    plane: SurveyPlane,
    max_vertices: int,
    max_parts: int | None = None,
    index: int = 0,
    properties: dict[str, Any] | None = None,
    allow_prefix_inference: bool = False,
) -> Parcel:
    """Validate one parcel geometry in its CRS and bring it to EPSG:4490 and the survey plane, repairing it if needed.

    Both forms come from the coordinates as sent, vertex by vertex (pyproj); a parcel sent in the plane's own
    zone keeps its coordinates exactly there. ``max_parts`` bounds the polygons of a multi-part parcel, as sent
    and as repaired: the overlay intersects every red-line feature the parcel's parts reach with the whole parcel,
    so its time grows with parts × features (a 4,999-part parcel took 9 s and more, one part 0.05 s).
    """
    where = f"parcel {index + 1}"
    if geometry is None or geometry.is_empty:
        raise ParcelError(f"{where}: empty geometry")
    if geometry.geom_type not in POLYGONAL:
        raise ParcelError(
            f"{where}: geometry type {geometry.geom_type} cannot be checked; give a Polygon or MultiPolygon"
        )
    vertices = int(shapely.get_num_coordinates(geometry))
    if vertices > max_vertices:
        raise ParcelError(f"{where}: {vertices} vertices, more than the limit of {max_vertices}", vertices=vertices)
    _check_parts(geometry, max_parts, where)
    # every coordinate, not the bounds: GEOS bounds skip NaN, and make_valid then fails on it
    if not np.isfinite(shapely.get_coordinates(geometry)).all():
        raise ParcelError(f"{where}: non-finite coordinates (NaN or infinity)")
    bounds = tuple(float(v) for v in geometry.bounds)
    resolved = resolve_crs(crs, bounds, allow_prefix_inference=allow_prefix_inference)  # type: ignore[arg-type]
    transformer = None if resolved.epsg in (STORAGE_EPSG, 4326) else transformer_to_storage(resolved.identity)
    source = np.array([geometry], dtype=object)
    stored, reason = _repair(to_storage(source, transformer)[0], where)
    in_plane, plane_reason = _repair(plane.to_plane(source, resolved)[0], where)
    repairs = [f"几何已修复 repaired invalid geometry: {r}" for r in dict.fromkeys((plane_reason, reason)) if r]
    if stored.area <= 0 or in_plane.area <= 0:
        raise ParcelError(f"{where}: degenerate geometry with zero area")
    if reason or plane_reason:  # a repair may split a polygon into parts
        _check_parts(stored, max_parts, where)
        _check_parts(in_plane, max_parts, where)
    source_crs = f"EPSG:{resolved.epsg}" if resolved.epsg else resolved.crs.name
    return Parcel(
        geometry=stored,
        source_crs=source_crs,
        plane=in_plane,
        plane_srid=plane.epsg,
        sent={"crs": f"EPSG:{resolved.epsg}" if resolved.epsg else resolved.crs.to_wkt(), "wkb": geometry.wkb_hex},
        properties=properties or {},
        repairs=repairs,
        vertex_count=vertices,
        index=index,
    )


def parcels_from_geojson(
    data: Any,
    crs: str | int | None,
    *,
    plane: SurveyPlane,
    max_vertices: int,
    max_parcels: int = 1000,
    max_parts: int | None = None,
) -> list[Parcel]:
    """Every parcel of a GeoJSON geometry, Feature or FeatureCollection, validated, in EPSG:4490 and the plane."""
    pairs = _geometries_from_geojson(data)
    if len(pairs) > max_parcels:
        raise ParcelError(f"{len(pairs)} parcels in one request, more than the limit of {max_parcels}")
    declared = parse_crs(crs)
    return [
        prepare_parcel(
            _shape(geometry, i),
            declared,
            plane=plane,
            max_vertices=max_vertices,
            max_parts=max_parts,
            index=i,
            properties=props,
        )
        for i, (geometry, props) in enumerate(pairs)
    ]
