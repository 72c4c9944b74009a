"""A small synthetic county drawn in the survey plane (CGCS2000 3° Gauss-Krüger zone 38, EPSG:4547, CM 114°E).

Two regions of 21 km × 21 km at ~32°N (issue 12, DOMAIN.md "Overlay in the survey plane"):

* ``M`` by the central meridian, 113.94–114.16°E;
* ``Z`` at the zone edge, 115.26–115.48°E (zone 38 ends at 115.5°E), where the plane is most distorted.

Each region is a 3 × 3 grid of 7 km cells. A cell holds one long straight red-line edge (0.1 to 5 km, N-S, E-W,
diagonal and odd angles) with a red-line rectangle on its left and, on most edges, a polygon of another layer
sharing the edge from the right (the three control lines meet, they do not cross); or a pair of overlapping
features of one layer (the union rule). A straight township line (XZQ) runs through each region between the second
and the third row of cells.

Every vertex of the red lines and of the parcels snapped to them is a whole number of metres, and an edge runs
along an integer step vector (1, 0), (0, 1), (1, 1), (3, 4), (24, 7) …: a point ``start + k · step`` lies exactly on
the edge in floating point too, so "snapped in GK" is exact and the overlap of a snapped parcel in the plane is 0,
not 1e-9. Areas are judged against an oracle independent of the platform: shapely in the survey plane, the result's
vertices to longitude/latitude with pyproj, its area on the GRS80 ellipsoid with pyproj Geod (tests/helpers.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import shapely
from pyproj import Transformer
from shapely import affinity
from shapely.geometry import mapping

from .helpers import geod_area, gk_to_lonlat

SURVEY_EPSG = 4547
"""The county's survey plane: CGCS2000 3° GK zone 38 named by its central meridian (114°E)."""
PREFIXED_EPSG = 4526
"""The same zone with the zone number in front of the easting (false easting 38,500,000)."""
ZONE_PREFIX_M = 38_000_000
NEIGHBOUR_ZONE_EPSG = 4548
"""The next zone east (39, CM 117°E): a parcel drawn there must be reprojected into the county's plane."""
GEOGRAPHIC_EPSG = 4490

CELL_M = 7_000
REGION_M = 3 * CELL_M
TOWNSHIP_LINE_ROW = 2  # the township line runs along the southern border of the third row of cells
TOWNSHIP_LINE_RISE_M = 100  # … rising by this much from west to east: an odd angle, one straight 21 km edge

Side = Literal["left", "right"]
Point = tuple[float, float]
Step = tuple[int, int]


def tolerance_m2(area_m2: float) -> float:
    """How far an overlap may be from the oracle (issue 12): 0.005 % of it + 0.05 m²."""
    return 0.00005 * abs(area_m2) + 0.05


def polygonal(geometry: shapely.Geometry) -> shapely.Geometry:
    """The polygonal part of an overlay result (an edge contact leaves lines and points, which have no area)."""
    parts = [p for p in shapely.get_parts(geometry) if p.geom_type in ("Polygon", "MultiPolygon") and p.area > 0]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def ellipsoidal_m2(gk: shapely.Geometry) -> float:
    """The oracle: ellipsoidal area (GRS80, pyproj Geod) of a survey-plane geometry, measured from its vertices."""
    part = polygonal(gk)
    return 0.0 if part.is_empty else geod_area(gk_to_lonlat(part, SURVEY_EPSG))


def to_mm(geometry: shapely.Geometry) -> shapely.Geometry:
    """Coordinates rounded to the millimetre, as surveyed coordinates are delivered (界址点坐标 to 3 decimals).

    A parcel on the 1 mm grid is unchanged by an overlay on that grid, so its area as sent, the sum of its pieces
    and the oracle can all be held to 0.01 m².
    """
    return shapely.transform(geometry, lambda xy: np.round(xy, 3))


def rectangle(origin: Point, step: Step, along: int, across: int) -> shapely.Polygon:
    """``along`` steps along ``step`` from ``origin``, ``across`` steps to its left (positive) or right."""
    (x, y), (ux, uy) = origin, step
    nx, ny = -uy, ux
    corners = [(0, 0), (along, 0), (along, across), (0, across)]
    return shapely.orient_polygons(shapely.Polygon([(x + a * ux + c * nx, y + a * uy + c * ny) for a, c in corners]))


@dataclass(frozen=True)
class Region:
    key: str
    x0: int
    y0: int
    south: tuple[str, str]
    north: tuple[str, str]

    def cell_centre(self, col: int, row: int) -> Point:
        return (self.x0 + (col + 0.5) * CELL_M, self.y0 + (row + 0.5) * CELL_M)

    def township_line(self) -> tuple[Point, Point]:
        y = self.y0 + TOWNSHIP_LINE_ROW * CELL_M
        return (self.x0, y - TOWNSHIP_LINE_RISE_M // 2), (self.x0 + REGION_M, y + TOWNSHIP_LINE_RISE_M // 2)

    def townships(self) -> list[tuple[str, str, shapely.Polygon]]:
        """(XZQDM, XZQMC, polygon): the region split in two by one straight 21 km township line."""
        (wx, wy), (ex, ey) = self.township_line()
        top = self.y0 + REGION_M
        south = shapely.Polygon([(self.x0, self.y0), (self.x0 + REGION_M, self.y0), (ex, ey), (wx, wy)])
        north = shapely.Polygon([(wx, wy), (ex, ey), (self.x0 + REGION_M, top), (self.x0, top)])
        return [(*self.south, shapely.orient_polygons(south)), (*self.north, shapely.orient_polygons(north))]


REGIONS = {
    "M": Region("M", 494_000, 3_531_000, ("410001001", "城关镇"), ("410001002", "王庄乡")),
    "Z": Region("Z", 619_000, 3_531_000, ("410001003", "河口镇"), ("410001004", "东岭乡")),
}


@dataclass(frozen=True)
class Span:
    """A parcel edge along a red-line edge: ``start_m`` from the edge's start, ``length_m`` long (nominal)."""

    start_m: float
    length_m: float


@dataclass(frozen=True)
class Edge:
    """A long straight edge ``start → end`` in the survey plane; layer ``left`` lies on its left.

    ``right`` (optional) is the layer whose polygon shares the whole edge from the right. Lengths are nominal:
    the edge is a whole number of ``step`` vectors (e.g. 3.5 km along (24, 7) is 140 steps of 25 m).
    """

    key: str
    region: Region
    cell: tuple[int, int]
    step: Step
    length_m: float
    left: str
    right: str | None
    depth_m: float
    spans: tuple[Span, ...] = ()

    @property
    def step_m(self) -> float:
        return math.hypot(*self.step)

    def steps(self, metres: float) -> int:
        return max(1, round(metres / self.step_m))

    @property
    def n(self) -> int:
        """The edge's length in steps."""
        return self.steps(self.length_m)

    @property
    def depth(self) -> int:
        """Each side's polygon depth in steps (to the left for ``left``, to the right for ``right``)."""
        return self.steps(self.depth_m)

    @cached_property
    def start(self) -> tuple[int, int]:
        """Whole metres, chosen so that the polygons on both sides are centred in the cell."""
        cx, cy = self.region.cell_centre(*self.cell)
        (ux, uy), half = self.step, self.n / 2
        return (round(cx - half * ux), round(cy - half * uy))

    def at(self, s: float, n: float = 0.0) -> Point:
        """The point ``s`` steps along the edge and ``n`` steps to its left (negative: right)."""
        (x, y), (ux, uy) = self.start, self.step
        return (x + s * ux - n * uy, y + s * uy + n * ux)

    def polygon(self, side: Side) -> shapely.Polygon:
        if side == "left":
            return rectangle(self.start, self.step, self.n, self.depth)
        return rectangle(self.start, self.step, self.n, -self.depth)

    def layer(self, side: Side) -> str | None:
        return self.left if side == "left" else self.right

    @property
    def length_real_m(self) -> float:
        return self.n * self.step_m

    def snapped_parcel(self, span: Span, side: Side, *, spike_m2: float = 0.0) -> shapely.Polygon:
        """A parcel on ``side`` whose edge lies exactly on this edge (whole-step vertices every ≤100 m along it).

        With ``spike_m2``, one digitising slip: a thin triangle of that plane area pokes across the edge into the
        other side, in the middle of the span (base at least 2 m; apex on the 1 mm grid).
        """
        s0 = self.steps(span.start_m) if span.start_m else 0
        s1 = min(self.n, s0 + self.steps(span.length_m))
        spacing = max(1, min(self.steps(100), (s1 - s0) // 4))
        along = sorted({*range(s0, s1, spacing), s1})
        sign = 1 if side == "left" else -1
        depth = max(1, min(self.steps(min(0.3 * span.length_m, 300)), int(0.6 * self.depth)))
        edge: list[Point] = [self.at(s) for s in along]
        if spike_m2:
            base = max(2, self.steps(2.0))
            mid = (s0 + s1) // 2
            height_m = 2 * spike_m2 / (base * self.step_m)  # plane area = base × height / 2
            ax, ay = self.at(mid + base / 2, -sign * height_m / self.step_m)
            apex = (round(ax, 3), round(ay, 3))
            before = [self.at(s) for s in along if s < mid]
            after = [self.at(s) for s in along if s > mid + base]
            edge = [*before, self.at(mid), apex, self.at(mid + base), *after]
        ring = [*edge, self.at(s1, sign * depth), self.at(s0, sign * depth)]
        return shapely.orient_polygons(shapely.Polygon(ring))

    def crossing_parcel(self, crossing: Crossing) -> shapely.Polygon:
        """A rotated rectangle across the edge (vertices on the 1 mm grid, nothing snapped to the edge)."""
        cx, cy = self.at(crossing.at * self.n, crossing.offset_m / self.step_m)
        ux, uy = self.step[0] / self.step_m, self.step[1] / self.step_m
        turn = math.radians(crossing.angle_deg)
        ax, ay = ux * math.cos(turn) - uy * math.sin(turn), ux * math.sin(turn) + uy * math.cos(turn)
        bx, by = -ay, ax
        a, b = crossing.along_m / 2, crossing.across_m / 2
        corners = [(-a, -b), (a, -b), (a, b), (-a, b)]
        return to_mm(
            shapely.orient_polygons(shapely.Polygon([(cx + i * ax + j * bx, cy + i * ay + j * by) for i, j in corners]))
        )


@dataclass(frozen=True)
class Crossing:
    """A parcel across an edge: centred ``at`` (fraction of the edge) and ``offset_m`` to its left, turned by
    ``angle_deg`` from the edge, ``along_m`` × ``across_m`` in its own axes."""

    at: float
    angle_deg: float
    along_m: float
    across_m: float
    offset_m: float


M, Z = REGIONS["M"], REGIONS["Z"]
ONE_FOUR = Span(1050, 1400)  # issue 12: a 1.4 km parcel edge on a 3.5 km red-line edge

EDGES: tuple[Edge, ...] = (
    # by the central meridian
    Edge("M-0.1-NE53", M, (0, 0), (3, 4), 100, "YJJBNT", "CZKFBJ", 60, (Span(0, 100),)),
    Edge("M-0.5-W", M, (1, 0), (-1, 0), 500, "CZKFBJ", None, 200, (Span(100, 300), Span(0, 500))),
    Edge("M-1-N", M, (2, 0), (0, 1), 1000, "STBHHX", "YJJBNT", 300, (Span(0, 1000),)),
    Edge("M-2-E16", M, (0, 1), (24, 7), 2000, "YJJBNT", None, 400, (Span(500, 1000), Span(0, 2000))),
    Edge("M-3.5-E", M, (1, 1), (1, 0), 3500, "STBHHX", "CZKFBJ", 500, (ONE_FOUR, Span(0, 3500))),
    Edge("M-5-SW", M, (2, 1), (-1, -1), 5000, "CZKFBJ", "STBHHX", 500, (Span(1500, 2000), Span(0, 5000))),
    Edge("M-2-NE45", M, (1, 2), (1, 1), 2000, "STBHHX", "YJJBNT", 300, (Span(500, 1000),)),
    Edge("M-3.5-N74W", M, (2, 2), (-7, 24), 3500, "YJJBNT", "CZKFBJ", 400, (Span(0, 3500),)),
    # at the zone edge (115.26–115.48°E)
    Edge("Z-0.1-S", Z, (0, 0), (0, -1), 100, "STBHHX", None, 60, (Span(0, 100),)),
    Edge("Z-0.5-NE45", Z, (1, 0), (1, 1), 500, "YJJBNT", "CZKFBJ", 200, (Span(100, 300),)),
    Edge("Z-1-W16N", Z, (2, 0), (-24, 7), 1000, "CZKFBJ", "STBHHX", 300, (Span(0, 1000),)),
    Edge("Z-2-NE37", Z, (0, 1), (4, 3), 2000, "STBHHX", "CZKFBJ", 400, (Span(500, 1000), Span(0, 2000))),
    Edge("Z-3.5-W", Z, (1, 1), (-1, 0), 3500, "STBHHX", "CZKFBJ", 500, (ONE_FOUR, Span(0, 3500))),
    Edge("Z-5-N", Z, (2, 1), (0, 1), 5000, "YJJBNT", "STBHHX", 500, (Span(1500, 2000), Span(0, 5000))),
    Edge("Z-5-S74E", Z, (1, 2), (7, -24), 5000, "CZKFBJ", "YJJBNT", 500, (Span(0, 5000),)),
    Edge("Z-3.5-E", Z, (2, 2), (1, 0), 3500, "YJJBNT", "CZKFBJ", 400, (Span(1050, 1400),)),
)
EDGE = {e.key: e for e in EDGES}

CROSSINGS: dict[str, tuple[str, Crossing]] = {
    "M-2-E16/x": ("M-2-E16", Crossing(0.5, 8, 1200, 500, 60)),
    "M-3.5-E/x": ("M-3.5-E", Crossing(0.45, -15, 2400, 600, -40)),
    "M-5-SW/x": ("M-5-SW", Crossing(0.55, 5, 3600, 500, 90)),
    "M-3.5-N74W/x": ("M-3.5-N74W", Crossing(0.5, 60, 900, 700, 50)),
    "Z-2-NE37/x": ("Z-2-NE37", Crossing(0.5, -20, 1500, 500, 30)),
    "Z-3.5-W/x": ("Z-3.5-W", Crossing(0.5, 3, 3000, 400, -25)),
    "Z-5-N/x": ("Z-5-N", Crossing(0.5, 10, 3800, 600, 70)),
    "Z-5-S74E/x": ("Z-5-S74E", Crossing(0.4, -6, 3000, 500, -60)),
}


def crossing_parcel(key: str) -> tuple[Edge, shapely.Polygon]:
    edge_key, crossing = CROSSINGS[key]
    edge = EDGE[edge_key]
    return edge, edge.crossing_parcel(crossing)


@dataclass(frozen=True)
class OverlapPair:
    """Two overlapping features of one layer with long rotated edges, and a parcel across both."""

    region: Region
    layer: str
    features: tuple[shapely.Polygon, shapely.Polygon]

    @property
    def parcel(self) -> shapely.Polygon:
        """3.5 km × 0.7 km at 20°, centred on the pair's common part: along the first feature's long edges."""
        centre = shapely.intersection(*self.features).centroid
        box = shapely.box(centre.x - 1750, centre.y - 350, centre.x + 1750, centre.y + 350)
        return to_mm(shapely.orient_polygons(affinity.rotate(box, 20, origin=centre)))


def _pair(region: Region, layer: str) -> OverlapPair:
    cx, cy = (round(v) for v in region.cell_centre(0, 2))
    first = rectangle((cx - 2400, cy - 700), (24, 7), 200, 40)  # 5 km × 1 km at 16°
    second = rectangle((cx - 300, cy - 1400), (3, 4), 700, -150)  # 3.5 km × 0.75 km at 53°
    return OverlapPair(region, layer, (first, second))


OVERLAP_PAIRS = {"M": _pair(M, "YJJBNT"), "Z": _pair(Z, "STBHHX")}


def township_split_parcel(region: Region, col: int) -> shapely.Polygon:
    """A parcel across the township line in the gap between cell rows, at column ``col``."""
    (wx, wy), (ex, ey) = region.township_line()
    x = region.x0 + (col + 0.5) * CELL_M
    y = wy + (ey - wy) * (x - wx) / (ex - wx) + 80
    box = shapely.box(x - 450, y - 350, x + 450, y + 350)
    return to_mm(shapely.orient_polygons(affinity.rotate(box, 17, origin=(x, y))))


# ---------------------------------------------------------------------------------------------------------------
# The layers as the county delivers them: GK files
# ---------------------------------------------------------------------------------------------------------------
_PROPS = {
    "STBHHX": lambda key: {"BSM": f"ST-{key}", "HXMC": "生态保护红线", "YSDM": "2090010100"},
    "YJJBNT": lambda key: {"YJJBNTTBBH": f"JB-{key}", "DLBM": "0101"},
    "CZKFBJ": lambda key: {"BSM": f"UB-{key}", "GHFQMC": "城镇集中建设区"},
}


@dataclass
class CountyLayers:
    """Every layer's features in the survey plane, with the attributes written to its file."""

    features: dict[str, list[tuple[shapely.Polygon, dict[str, Any]]]] = field(default_factory=dict)

    def add(self, code: str, geometry: shapely.Polygon, properties: dict[str, Any]) -> None:
        self.features.setdefault(code, []).append((geometry, properties))

    def union(self, code: str) -> shapely.Geometry:
        return shapely.union_all([g for g, _p in self.features.get(code, [])])

    def geometries(self, code: str) -> list[shapely.Polygon]:
        return [g for g, _p in self.features.get(code, [])]


def county_layers() -> CountyLayers:
    layers = CountyLayers()
    for region in REGIONS.values():
        for code, name, polygon in region.townships():
            layers.add("XZQ", polygon, {"XZQDM": code, "XZQMC": name})
    for edge in EDGES:
        for side in ("left", "right"):
            code = edge.layer(side)
            if code:
                layers.add(code, edge.polygon(side), _PROPS[code](f"{edge.key}-{side[0]}"))
    for pair in OVERLAP_PAIRS.values():
        for i, polygon in enumerate(pair.features):
            layers.add(pair.layer, polygon, _PROPS[pair.layer](f"{pair.region.key}-pair{i}"))
    return layers


COUNTY = county_layers()


def write_gk_file(path: Path, layer_name: str, rows: list[tuple[shapely.Geometry, dict[str, Any]]]) -> Path:
    """A GeoPackage in the survey plane (EPSG:4547), coordinates written exactly as built."""
    frame = gpd.GeoDataFrame([p for _g, p in rows], geometry=[g for g, _p in rows], crs=f"EPSG:{SURVEY_EPSG}")
    frame.to_file(path, layer=layer_name, engine="pyogrio")
    return path


# ---------------------------------------------------------------------------------------------------------------
# A parcel as a client sends it
# ---------------------------------------------------------------------------------------------------------------
_TO_NEIGHBOUR_ZONE = Transformer.from_crs(SURVEY_EPSG, NEIGHBOUR_ZONE_EPSG, always_xy=True)


def in_crs(gk: shapely.Geometry, epsg: int) -> shapely.Geometry:
    """The survey-plane geometry with each vertex expressed in ``epsg`` (edges stay straight lines in that CRS)."""
    if epsg == SURVEY_EPSG:
        return gk
    if epsg == PREFIXED_EPSG:
        return shapely.transform(gk, lambda xy: xy + np.array([ZONE_PREFIX_M, 0.0]))
    if epsg == GEOGRAPHIC_EPSG:
        return gk_to_lonlat(gk, SURVEY_EPSG)
    if epsg == NEIGHBOUR_ZONE_EPSG:
        return shapely.transform(gk, lambda xy: np.column_stack(_TO_NEIGHBOUR_ZONE.transform(xy[:, 0], xy[:, 1])))
    raise ValueError(f"no client-side projection to EPSG:{epsg} in this fixture")


def geojson(geometry: shapely.Geometry) -> dict[str, Any]:
    """GeoJSON with every coordinate as the exact float (shapely.geometry.mapping, no text rounding)."""
    return dict(mapping(geometry))
