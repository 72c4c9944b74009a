"""Reader for DXF drawings (red-line plans drawn in CAD).

Polygons come from the model space:

* closed LWPOLYLINE and POLYLINE (2D, and 3D with Z dropped) entities — "closed" by flag or by a last
  vertex equal to the first; arcs (bulges) are flattened;
* HATCH boundary paths.

Closed polylines nested inside each other on the same layer become holes by containment (even–odd:
an outline inside a hole is an island, a new polygon); a HATCH's own boundary paths are nested the
same way.  Open polylines and other entity types are ignored and counted in the notes.  A HATCH that
merely repeats a polyline's polygon is dropped (noted) so the area is not imported twice.

A DXF carries no coordinate reference system: ``crs`` is ``None`` and the importer needs ``--crs``
for metre coordinates.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from ezdxf.entities import DXFEntity, Hatch, LWPolyline, Polyline
from ezdxf.entities.boundary_paths import ArcEdge, EllipseEdge, LineEdge, PolylinePath, SplineEdge
from ezdxf.lldxf.const import DXFError
from ezdxf.math import OCS, Vec3
from shapely.geometry import Polygon

from gis_platform.errors import EncodingDetectionError, GeometryError, InputFileError

from .dxf_document import check_entity_count, read_with_detected_encoding
from .limits import ReadLimits, VertexBudget
from .source import SourceData

__all__ = ["ATTRIBUTE_COLUMNS", "read_dxf"]

FORMAT = "dxf"
ATTRIBUTE_COLUMNS = ["DXF_LAYER", "DXF_HANDLE", "DXF_ENTITY", "DXF_HOLE_HANDLES"]

# $INSUNITS codes: 0 unitless, 6 metres.
_INSUNITS_OK = {0, 6}


Coord = tuple[float, float]
Vertex = tuple[float, float, float]  # x, y, bulge


@dataclass
class _Ring:
    coords: list[Coord]
    layer: str
    handle: str
    entity: str
    polygon: Polygon = field(init=False)

    def __post_init__(self) -> None:
        self.polygon = Polygon(self.coords)


@dataclass
class _Feature:
    polygon: Polygon
    layer: str
    handle: str
    entity: str
    hole_handles: list[str]


# Arcs are flattened with a maximum sagitta (chord-to-arc distance) of radius × this factor: about
# 2,200 points per full circle, an area error below 1e-6 relative.
_ARC_SAGITTA_RELATIVE = 1e-6

# DXF vertex flag of a spline frame control point (not on the curve).
_SPLINE_CONTROL_POINT = 16


def _arc_points(start: Coord, end: Coord, bulge: float) -> list[Coord]:
    """Points strictly after *start* up to and including *end* along a bulge arc (positive = counter-clockwise)."""
    (x0, y0), (x1, y1) = start, end
    chord = math.hypot(x1 - x0, y1 - y0)
    if bulge == 0 or chord == 0:
        return [end]
    sweep = 4 * math.atan(bulge)
    radius = chord / (2 * abs(math.sin(sweep / 2)))
    ux, uy = (x1 - x0) / chord, (y1 - y0) / chord
    offset = chord * (1 - bulge * bulge) / (4 * bulge)  # from the chord midpoint towards the left normal
    cx, cy = (x0 + x1) / 2 - uy * offset, (y0 + y1) / 2 + ux * offset
    step = 2 * math.acos(1 - _ARC_SAGITTA_RELATIVE)
    count = max(1, math.ceil(abs(sweep) / step))
    alpha = math.atan2(y0 - cy, x0 - cx)
    points = [
        (cx + radius * math.cos(alpha + sweep * k / count), cy + radius * math.sin(alpha + sweep * k / count))
        for k in range(1, count)
    ]
    points.append(end)
    return points


def _bulge_ring(vertices: list[Vertex], budget: VertexBudget, label: str) -> list[Coord]:
    """Closed ring (without repeat) through (x, y, bulge) vertices, arcs flattened (at most ~2,200 points each),
    stopped once it has more points than a feature may have."""
    ring: list[Coord] = []
    count = len(vertices)
    limit = budget.per_feature
    for i, (x, y, bulge) in enumerate(vertices):
        nx, ny, _ = vertices[(i + 1) % count]
        ring.append((x, y))
        if bulge:
            ring.extend(_arc_points((x, y), (nx, ny), bulge)[:-1])
            if limit is not None and len(ring) > limit:
                budget.feature(len(ring), label)
    return ring


def _to_wcs(ring: list[Coord], ocs: OCS, elevation: float) -> list[Coord]:
    if not ocs.transform:
        return ring
    return [(float(v.x), float(v.y)) for v in ocs.points_to_wcs(Vec3(x, y, elevation) for x, y in ring)]


def _clean_ring(coords: list[Coord]) -> list[Coord] | None:
    """Drop a closing repeat and consecutive duplicates; ``None`` if fewer than 3 distinct points remain."""
    coords = [(float(x), float(y)) for x, y in coords]
    if len(coords) > 1 and coords[0] == coords[-1]:
        coords.pop()
    deduped = [c for i, c in enumerate(coords) if i == 0 or c != coords[i - 1]]
    if len(set(deduped)) < 3:
        return None
    return deduped


def _closed_vertices(vertices: list[Vertex], closed: bool) -> list[Vertex] | None:
    """The vertices of a closed polyline (closing repeat removed), ``None`` for an open one."""
    if not closed and len(vertices) > 2 and vertices[0][:2] == vertices[-1][:2]:
        return vertices[:-1]
    return vertices if closed else None


def _polyline_ring(entity: LWPolyline | Polyline, budget: VertexBudget) -> tuple[list[Coord] | None, bool]:
    """(ring, is_closed) of a polyline; the ring is ``None`` for open or degenerate polylines."""
    label = f"{entity.dxftype()} {entity.dxf.get('handle', '')}"
    if budget.per_feature is not None:
        budget.feature(len(entity) if isinstance(entity, LWPolyline) else len(entity.vertices), label)
    if isinstance(entity, LWPolyline):
        raw = [(float(x), float(y), float(b)) for x, y, b in entity.get_points("xyb")]
        vertices = _closed_vertices(raw, bool(entity.closed))
        if vertices is None:
            return None, False
        ring = _to_wcs(_bulge_ring(vertices, budget, label), entity.ocs(), float(entity.dxf.elevation))
        return _clean_ring(ring), True
    points = [v for v in entity.vertices if not v.dxf.flags & _SPLINE_CONTROL_POINT]
    if entity.is_3d_polyline:  # WCS, no bulges; Z dropped
        raw = [(float(v.dxf.location.x), float(v.dxf.location.y), 0.0) for v in points]
        vertices = _closed_vertices(raw, bool(entity.is_closed))
        return (None, False) if vertices is None else (_clean_ring([(x, y) for x, y, _ in vertices]), True)
    raw = [(float(v.dxf.location.x), float(v.dxf.location.y), float(v.dxf.get("bulge", 0.0))) for v in points]
    vertices = _closed_vertices(raw, bool(entity.is_closed))
    if vertices is None:
        return None, False
    elevation = float(entity.dxf.elevation.z) if entity.dxf.hasattr("elevation") else 0.0
    return _clean_ring(_to_wcs(_bulge_ring(vertices, budget, label), entity.ocs(), elevation)), True


def _edge_points(edge: object, budget: VertexBudget, label: str) -> list[Coord]:
    """Points of one hatch edge from its start to its end (OCS); a flattened curve stops at a feature's worth of
    points (a spline flattened at a millionth of its size could give millions)."""
    if isinstance(edge, LineEdge):
        return [(edge.start.x, edge.start.y), (edge.end.x, edge.end.y)]
    if isinstance(edge, ArcEdge):
        arc = edge.construction_tool()
        flat = arc.flattening(max(arc.radius * _ARC_SAGITTA_RELATIVE, 1e-12))
        points = [(v.x, v.y) for v in budget.take(flat, label)]
        return points if edge.ccw else points[::-1]
    if isinstance(edge, EllipseEdge):
        ellipse = edge.construction_tool()
        distance = max(ellipse.major_axis.magnitude * ellipse.ratio * _ARC_SAGITTA_RELATIVE, 1e-12)
        points = [(v.x, v.y) for v in budget.take(ellipse.flattening(distance, segments=16), label)]
        return points if edge.ccw else points[::-1]
    if isinstance(edge, SplineEdge):
        if budget.per_feature is not None:
            budget.feature(len(edge.control_points) + len(edge.fit_points), label)
        spline = edge.construction_tool()
        xs = [v.x for v in spline.control_points]
        ys = [v.y for v in spline.control_points]
        size = max(max(xs) - min(xs), max(ys) - min(ys), 1e-9)
        return [(v.x, v.y) for v in budget.take(spline.flattening(size * _ARC_SAGITTA_RELATIVE, segments=16), label)]
    raise ValueError(f"unknown hatch edge type {type(edge).__name__}")


def _hatch_rings(hatch: Hatch, budget: VertexBudget) -> tuple[list[list[Coord]], int]:
    """(rings in WCS, number of degenerate boundary paths) of a HATCH."""
    label = f"HATCH {hatch.dxf.get('handle', '')}"
    limit = budget.per_feature
    ocs = hatch.ocs()
    elevation = float(hatch.dxf.elevation.z) if hatch.dxf.hasattr("elevation") else 0.0
    rings: list[list[Coord]] = []
    degenerate = 0
    for boundary in hatch.paths:
        if isinstance(boundary, PolylinePath):
            vertices = [(float(v[0]), float(v[1]), float(v[2]) if len(v) > 2 else 0.0) for v in boundary.vertices]
            if vertices and vertices[0][:2] == vertices[-1][:2]:
                vertices = vertices[:-1]
            if limit is not None:
                budget.feature(len(vertices), label)
            ring = _bulge_ring(vertices, budget, label) if vertices else []
        else:
            ring = []
            for edge in boundary.edges:
                ring.extend(_edge_points(edge, budget, label))
                if limit is not None and len(ring) > limit:
                    budget.feature(len(ring), label)
        budget.add(len(ring))
        cleaned = _clean_ring(_to_wcs(ring, ocs, elevation))
        if cleaned is None:
            degenerate += 1
        else:
            rings.append(cleaned)
    return rings, degenerate


def _nest(rings: list[_Ring], notes: list[str], what: str) -> list[_Feature]:
    """Assemble polygons with holes from rings by containment (even–odd nesting)."""
    unique: list[_Ring] = []
    seen: dict[bytes, _Ring] = {}
    for ring in rings:
        key = ring.layer.encode() + b"\0" + shapely.normalize(ring.polygon).wkb
        duplicate = seen.get(key)
        if duplicate is not None:
            notes.append(f"{what} {ring.handle} on layer {ring.layer!r} repeats {duplicate.handle}; skipped")
        else:
            seen[key] = ring
            unique.append(ring)
    if not unique:
        return []
    polygons = np.array([r.polygon for r in unique], dtype=object)
    areas = shapely.area(polygons)
    containers: dict[int, list[int]] = {i: [] for i in range(len(unique))}
    try:
        tree = shapely.STRtree(polygons)
        outer_idx, inner_idx = tree.query(polygons, predicate="covers")
    except shapely.errors.GEOSException as exc:  # badly self-intersecting outlines
        notes.append(f"{what} outlines: containment could not be tested ({exc}); no holes assigned")
        outer_idx, inner_idx = np.array([], dtype=int), np.array([], dtype=int)
    for outer, inner in zip(outer_idx.tolist(), inner_idx.tolist(), strict=True):
        if outer != inner and areas[outer] > areas[inner] and unique[outer].layer == unique[inner].layer:
            containers[inner].append(outer)
    features: dict[int, _Feature] = {}
    holes: list[tuple[int, int]] = []  # (hole ring, shell ring)
    for index in sorted(range(len(unique)), key=lambda i: len(containers[i])):
        depth = len(containers[index])
        ring = unique[index]
        if depth % 2 == 0:
            features[index] = _Feature(ring.polygon, ring.layer, ring.handle, ring.entity, [])
        else:
            parent = min(containers[index], key=lambda i: areas[i])
            holes.append((index, parent))
    for hole, parent in holes:
        feature = features.get(parent)
        if feature is None:  # nesting not strictly even–odd (touching/overlapping outlines): keep as polygon
            ring = unique[hole]
            features[hole] = _Feature(ring.polygon, ring.layer, ring.handle, ring.entity, [])
            notes.append(f"{what} {ring.handle} lies inside {unique[parent].handle} but could not be a hole; kept")
            continue
        hole_ring = unique[hole]
        feature.polygon = Polygon(feature.polygon.exterior.coords, [*_interiors(feature.polygon), hole_ring.coords])
        feature.hole_handles.append(hole_ring.handle)
    return [features[i] for i in sorted(features)]


def _interiors(polygon: Polygon) -> list[list[Coord]]:
    return [list(interior.coords) for interior in polygon.interiors]


_SURROGATES = re.compile("[\udc80-\udcff]")


def read_dxf(path: Path, *, limits: ReadLimits | None = None) -> SourceData:
    """Read the polygons of a DXF drawing's model space.

    Parameters
    ----------
    path : Path
        The ``.dxf`` file (ASCII or binary, any DXF version ezdxf reads).
    limits : ReadLimits, optional
        Entities (counted in the file's text before it is parsed), vertices per outline (arcs and splines as the
        points they are flattened to, stopped there) and per file (uploads).

    Returns
    -------
    SourceData
        One polygon per outer outline with its holes, attributes :data:`ATTRIBUTE_COLUMNS`
        (layer, handle and entity type of the outer outline, handles of its holes), ``crs=None``.

    Raises
    ------
    InputFileError
        When the file cannot be read or is not a DXF file (corrupt structure).
    EncodingDetectionError
        When the layer names of a pre-2007 DXF are in no code page that can be decided.
    GeometryError
        When the model space holds no closed polyline or hatch.
    """
    source = path.name
    check_entity_count(path, limits)
    doc, notes = read_with_detected_encoding(path)
    budget = VertexBudget(limits, source)
    meta = {"DXF_VERSION": str(doc.dxfversion), "ENCODING": str(doc.encoding)}
    insunits = doc.header.get("$INSUNITS", 0)
    meta["INSUNITS"] = str(insunits)
    if insunits not in _INSUNITS_OK:
        notes.append(f"drawing units $INSUNITS={insunits} (not metres or unitless): check the coordinate unit")

    polyline_rings: list[_Ring] = []
    hatch_features: list[_Feature] = []
    ignored: Counter[str] = Counter()
    open_polylines = 0
    degenerate = 0
    entity: DXFEntity
    for entity in doc.modelspace():
        kind = entity.dxftype()
        layer = str(entity.dxf.get("layer", "0"))
        if _SURROGATES.search(layer):
            raise EncodingDetectionError(
                f"{source}: layer name {layer.encode('utf-8', 'surrogateescape')!r} is not valid {doc.encoding} "
                "(the drawing's declared code page); re-save the DXF as R2007 or later (UTF-8)",
                file=source,
            )
        handle = str(entity.dxf.get("handle", ""))
        try:
            if isinstance(entity, LWPolyline) or (
                isinstance(entity, Polyline) and (entity.is_2d_polyline or entity.is_3d_polyline)
            ):
                ring, closed = _polyline_ring(entity, budget)
                if not closed:
                    open_polylines += 1
                elif ring is None:
                    degenerate += 1
                else:
                    budget.add(len(ring))
                    polyline_rings.append(_Ring(ring, layer, handle, kind))
            elif isinstance(entity, Hatch):
                hatch_rings, bad = _hatch_rings(entity, budget)
                degenerate += bad
                rings = [_Ring(coords, layer, handle, kind) for coords in hatch_rings]
                hatch_features.extend(_nest(rings, notes, "HATCH"))
            else:
                ignored[kind] += 1
        except (DXFError, ValueError, ZeroDivisionError, IndexError) as exc:
            raise InputFileError(f"{source}: entity {kind} {handle} cannot be read ({exc})", file=source) from exc

    features = _nest(polyline_rings, notes, "polyline")
    if hatch_features and features:
        tree = shapely.STRtree([f.polygon for f in features])
        kept = []
        for hatch in hatch_features:
            same = [i for i in tree.query(hatch.polygon) if features[int(i)].polygon.equals(hatch.polygon)]
            if same:
                notes.append(f"HATCH {hatch.handle} repeats polyline {features[int(same[0])].handle}; skipped")
            else:
                kept.append(hatch)
        hatch_features = kept
    features.extend(hatch_features)

    if open_polylines:
        notes.append(f"{open_polylines} open polyline(s) ignored (only closed outlines are polygons)")
    if degenerate:
        notes.append(f"{degenerate} closed outline(s) with fewer than 3 distinct vertices ignored")
    if ignored:
        listed = ", ".join(f"{n} {kind}" for kind, n in sorted(ignored.items()))
        notes.append(f"entities ignored: {listed}")
    if not features:
        raise GeometryError(
            f"{source}: no closed polyline or hatch in the model space "
            f"({open_polylines} open polyline(s), {sum(ignored.values())} other entities)",
            file=source,
        )

    geometries = np.empty(len(features), dtype=object)
    geometries[:] = [f.polygon for f in features]
    attributes = pd.DataFrame(
        {
            "DXF_LAYER": [f.layer for f in features],
            "DXF_HANDLE": [f.handle for f in features],
            "DXF_ENTITY": [f.entity for f in features],
            "DXF_HOLE_HANDLES": [",".join(f.hole_handles) for f in features],
        },
        columns=ATTRIBUTE_COLUMNS,
    )
    return SourceData(
        geometries=geometries,
        attributes=attributes,
        crs=None,
        source_name=source,
        format=FORMAT,
        encoding=str(doc.encoding),
        meta=meta,
        notes=notes,
    )
