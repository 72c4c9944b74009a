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

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import ezdxf
import numpy as np
import pandas as pd
import shapely
from ezdxf import recover
from ezdxf.entities import DXFEntity, Hatch, LWPolyline, Polyline
from ezdxf.lldxf.const import DXFError
from ezdxf.path import Path as DXFPath
from ezdxf.path import from_hatch, make_path
from shapely.geometry import Polygon

from gis_platform.errors import GeometryError, InputFileError

from .source import SourceData

__all__ = ["ATTRIBUTE_COLUMNS", "read_dxf"]

FORMAT = "dxf"
ATTRIBUTE_COLUMNS = ["DXF_LAYER", "DXF_HANDLE", "DXF_ENTITY", "DXF_HOLE_HANDLES"]

# Chord tolerance for flattening arcs, relative to the size of the outline.
_FLATTEN_RELATIVE = 1e-6

# $INSUNITS codes: 0 unitless, 6 metres.
_INSUNITS_OK = {0, 6}


@dataclass
class _Ring:
    coords: list[tuple[float, float]]
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


def _ring_from_path(path: DXFPath) -> list[tuple[float, float]] | None:
    """Distinct (x, y) vertices of a closed path, arcs flattened; ``None`` if fewer than 3 remain."""
    vertices = path.control_vertices()
    if not vertices:
        return None
    if path.has_curves:
        xs = [v.x for v in vertices]
        ys = [v.y for v in vertices]
        size = max(max(xs) - min(xs), max(ys) - min(ys))
        distance = size * _FLATTEN_RELATIVE if size > 0 else 1e-9
        vertices = list(path.flattening(distance))
    coords = [(float(v.x), float(v.y)) for v in vertices]
    if len(coords) > 1 and coords[0] == coords[-1]:
        coords.pop()
    deduped = [c for i, c in enumerate(coords) if i == 0 or c != coords[i - 1]]
    if len(set(deduped)) < 3:
        return None
    return deduped


def _polyline_ring(entity: LWPolyline | Polyline) -> tuple[list[tuple[float, float]] | None, bool]:
    """(ring, is_closed) of a polyline; the ring is ``None`` for open or degenerate polylines."""
    closed = bool(entity.closed) if isinstance(entity, LWPolyline) else bool(entity.is_closed)
    path = make_path(entity)
    vertices = path.control_vertices()
    if not closed and len(vertices) > 2 and vertices[0].isclose(vertices[-1], abs_tol=0.0):
        closed = True
    if not closed:
        return None, False
    return _ring_from_path(path), True


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
        notes.append(f"{what}s: containment could not be tested ({exc}); no holes assigned")
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


def _interiors(polygon: Polygon) -> list[list[tuple[float, float]]]:
    return [list(interior.coords) for interior in polygon.interiors]


def _read_document(path: Path) -> tuple[ezdxf.document.Drawing, list[str]]:
    source = path.name
    notes: list[str] = []
    try:
        doc, auditor = recover.readfile(path)
    except OSError as exc:
        raise InputFileError(f"{source}: cannot read the file ({exc.strerror or exc})", file=source) from exc
    except (DXFError, ValueError, UnicodeError, EOFError, IndexError, KeyError, TypeError) as exc:
        raise InputFileError(f"{source}: not a readable DXF file ({exc})", file=source) from exc
    if auditor.has_errors:
        notes.append(f"DXF structure has {len(auditor.errors)} unrecoverable error(s); read what could be read")
    if auditor.has_fixes:
        notes.append(f"DXF structure needed {len(auditor.fixes)} automatic repair(s)")
    return doc, notes


def read_dxf(path: Path) -> SourceData:
    """Read the polygons of a DXF drawing's model space.

    Parameters
    ----------
    path : Path
        The ``.dxf`` file (ASCII or binary, any DXF version ezdxf reads).

    Returns
    -------
    SourceData
        One polygon per outer outline with its holes, attributes :data:`ATTRIBUTE_COLUMNS`
        (layer, handle and entity type of the outer outline, handles of its holes), ``crs=None``.

    Raises
    ------
    InputFileError
        When the file cannot be read or is not a DXF file (corrupt structure).
    GeometryError
        When the model space holds no closed polyline or hatch.
    """
    source = path.name
    doc, notes = _read_document(path)
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
        handle = str(entity.dxf.get("handle", ""))
        try:
            if isinstance(entity, LWPolyline) or (
                isinstance(entity, Polyline) and (entity.is_2d_polyline or entity.is_3d_polyline)
            ):
                ring, closed = _polyline_ring(entity)
                if not closed:
                    open_polylines += 1
                elif ring is None:
                    degenerate += 1
                else:
                    polyline_rings.append(_Ring(ring, layer, handle, kind))
            elif isinstance(entity, Hatch):
                rings = []
                for boundary in from_hatch(entity):
                    coords = _ring_from_path(boundary)
                    if coords is None:
                        degenerate += 1
                    else:
                        rings.append(_Ring(coords, layer, handle, kind))
                hatch_features.extend(_nest(rings, notes, "HATCH boundary of"))
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
