"""Deterministic generator of the synthetic demo county 示范县 for the "一张图" platform.

The county is fictitious (code 410299, centred near 114.8°E 34.8°N, CGCS2000) but built like real data:
townships tessellate the county, 三调 land-survey patches (DLTB) tessellate the townships, permanent basic
farmland (YJJBNT) is a subset of the cultivated patches, the ecological red line (STBHHX) follows a river and
covers the hills, the urban development boundary (CZKFBJ) surrounds the county seat and the township centres,
and the township land-use plan (YDYHGHFQ) contains a few deliberately planted conflicts with those three lines.
The files use the formats and coordinate systems an importer meets in practice (GeoJSON, GeoPackage, GBK
shapefile, zipped shapefile, GeoTIFF, 界址点 TXT in GBK / UTF-8-with-BOM, DXF).

Everything is derived from one ``numpy.random.Generator`` seeded by ``--seed``: the same seed gives the same
attribute values and geometries. All construction happens in metres in EPSG:4547 (CGCS2000 3-degree
Gauss-Krüger, central meridian 114°E); layers are reprojected only when written.

Usage::

    python data/generate_demo_county.py --out data/demo [--seed 42] [--scale]

The code tables (规划分区 codes, 要素代码 YSDM, coefficient tables) are illustrative values for a synthetic data
set; the platform itself must read such tables from ``layers/``.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import ezdxf
import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import rasterio
import shapely
from pyproj import Geod, Transformer
from rasterio.features import geometry_mask, shapes
from rasterio.transform import Affine
from shapely import LineString, MultiPoint, Point, Polygon, STRtree

T = TypeVar("T")

# ---------------------------------------------------------------------------------------------------------------
# Identity, coordinate systems
# ---------------------------------------------------------------------------------------------------------------
COUNTY_NAME = "示范县"
COUNTY_CODE = "410299"  # fictitious: 4102 is 开封市, county number 99 is not assigned
CENTRE_LONLAT = (114.8, 34.8)
GK_ZONE = 38  # round(114.8 / 3); central meridian 114°E
EPSG_GEOGRAPHIC = 4490  # CGCS2000 lon/lat
EPSG_GK_ZONE_PREFIXED = 4526  # CGCS2000 3-degree GK zone 38, false easting 38,500,000
EPSG_GK_CM_114 = 4547  # CGCS2000 3-degree GK CM 114°E, false easting 500,000
ZONE_PREFIX_M = GK_ZONE * 1_000_000.0  # EPSG:4526 easting = EPSG:4547 easting + 38,000,000 (same projection)
GEOD = Geod(ellps="GRS80")  # CGCS2000 and GRS80 share a and 1/f to the precision that matters for area
FIXED_DATE = "2024-06-30"  # the data set's date: TXT headers, DBF headers, GeoPackage timestamps, zip members
FIXED_TIMESTAMP = f"{FIXED_DATE}T00:00:00Z"  # written into GeoPackages instead of "now", for reproducible files
FIXED_ZIP_TIME = (2024, 6, 30, 0, 0, 0)
LONLAT_DECIMALS = 8  # township vertices are rounded to 1e-8° (~1 mm) once, so every layer clips to the same lines
GRID_DECIMALS = 4  # projected layers are snapped to a 0.1 mm grid, like the xy resolution of real survey databases

_METRIC_TO_LONLAT = Transformer.from_crs(EPSG_GK_CM_114, EPSG_GEOGRAPHIC, always_xy=True)
_LONLAT_TO_METRIC = Transformer.from_crs(EPSG_GEOGRAPHIC, EPSG_GK_CM_114, always_xy=True)
_PREFIXED_TO_LONLAT = Transformer.from_crs(EPSG_GK_ZONE_PREFIXED, EPSG_GEOGRAPHIC, always_xy=True)

# ---------------------------------------------------------------------------------------------------------------
# Code tables
# ---------------------------------------------------------------------------------------------------------------
DLTB_NAMES: dict[str, str] = {
    "0101": "水田", "0102": "水浇地", "0103": "旱地", "0201": "果园", "0301": "乔木林地", "0305": "灌木林地",
    "0401": "天然牧草地", "0404": "其他草地", "05H1": "商业服务业设施用地", "0601": "工业用地", "0602": "采矿用地",
    "0701": "城镇住宅用地", "0702": "农村宅基地", "08H1": "机关团体新闻出版用地", "1001": "铁路用地",
    "1003": "公路用地", "1006": "农村道路", "1101": "河流水面", "1104": "坑塘水面", "1107": "沟渠",
    "1202": "设施农用地", "1206": "裸土地",
}
CULTIVATED_CODES = ("0101", "0102", "0103")  # 耕地; 田坎 (1203) is not mapped as patches in 三调, see KCXS
STATE_OWNED_CODES = frozenset({"0701", "05H1", "08H1", "0601", "1001", "1003", "1101"})
BUILT_UP_DLTB_CODES = frozenset({"05H1", "0601", "0602", "0701", "0702", "08H1"})  # carved out of STBHHX
URBAN_DLTB_CODES = ("05H1", "0601", "0701", "08H1")  # built-up town land of the survey
PLANTABLE_DLTB_CODES = ("0101", "0102", "0103", "0201", "0301", "0305", "0401", "0404", "1206")  # open land

YDYH_NAMES: dict[str, str] = {
    "0101": "水田", "0102": "水浇地", "0103": "旱地", "0201": "果园", "0301": "乔木林地", "0303": "灌木林地",
    "0401": "天然牧草地", "0403": "其他草地", "0601": "乡村道路用地", "0602": "种植设施建设用地",
    "0701": "城镇住宅用地", "0703": "农村宅基地", "0801": "机关团体用地", "0901": "商业用地", "1001": "工业用地",
    "1002": "采矿用地", "1101": "物流仓储用地", "1201": "铁路用地", "1202": "公路用地", "1205": "管道运输用地",
    "1301": "供水用地", "1401": "公园绿地", "1402": "防护绿地", "1701": "河流水面", "1704": "坑塘水面",
    "1705": "沟渠", "2301": "空闲地", "2306": "裸土地",
}
DLTB_TO_YDYH: dict[str, str] = {
    "0101": "0101", "0102": "0102", "0103": "0103", "0201": "0201", "0301": "0301", "0305": "0303",
    "0401": "0401", "0404": "0403", "05H1": "0901", "0601": "1001", "0602": "1002", "0701": "0701",
    "0702": "0703", "08H1": "0801", "1001": "1201", "1003": "1202", "1006": "0601", "1101": "1701",
    "1104": "1704", "1107": "1705", "1202": "0602", "1206": "2306",
}
# Working definitions used to plant and to audit conflicts (written to the manifest as "conflict_rules").
CONSTRUCTION_PREFIXES = tuple(f"{n:02d}" for n in range(7, 17))  # 用地用海 first level 07–16
LINEAR_INFRASTRUCTURE_CODES = ("1201", "1202", "1205")  # may cross the red line with justification
URBAN_CONSTRUCTION_PREFIXES = ("0701", "0702", "08", "09", "1001", "11", "13", "14")

# 规划分区 codes (illustrative — verify against the provincial database specification).
GHFQ_CODES: dict[str, str] = {
    "生态保护区": "11", "生态控制区": "12", "农田保护区": "13", "城镇发展区": "21", "城镇集中建设区": "211",
    "城镇弹性发展区": "212", "特别用途区": "213", "乡村发展区": "22",
}
YSDM = {"STBHHX": "2011010100", "CZKFBJ": "2011030100", "YJJBNT": "2011020100"}  # illustrative 要素代码

# 田坎系数 by slope grade (坡度级别 1: ≤2°, 2: 2–6°, 3: 6–15°, 4: 15–25°, 5: >25°) for 旱地 and 水浇地.
SLOPE_GRADE_LIMITS_DEG = (2.0, 6.0, 15.0, 25.0)
KCXS_BY_SLOPE_GRADE = (0.0219, 0.0437, 0.0781, 0.1156, 0.1488)

# Land-use mixes (三调 code, weight) per landscape zone.
MIX_TOWN_INNER = (("0701", 0.62), ("05H1", 0.22), ("08H1", 0.12), ("1202", 0.04))
MIX_TOWN_OUTER = (("0701", 0.45), ("0601", 0.35), ("05H1", 0.12), ("08H1", 0.05), ("1202", 0.03))
MIX_VILLAGE = (("0702", 0.90), ("1202", 0.04), ("0103", 0.04), ("1104", 0.02))
MIX_HILLS = (("0301", 0.50), ("0305", 0.16), ("0404", 0.10), ("0201", 0.08), ("0103", 0.10), ("0602", 0.03),
             ("1206", 0.03))
MIX_RIVERSIDE = (("0101", 0.48), ("0102", 0.30), ("0103", 0.12), ("1104", 0.015), ("0201", 0.03), ("1202", 0.01),
                 ("0404", 0.02), ("0401", 0.015))
MIX_PLAIN = (("0103", 0.50), ("0102", 0.40), ("0201", 0.04), ("1202", 0.01), ("1104", 0.005), ("0404", 0.02),
             ("0301", 0.01), ("0401", 0.005))
MIX_PLANNED_URBAN = (("0701", 0.40), ("0901", 0.15), ("1001", 0.15), ("1101", 0.05), ("0801", 0.05),
                     ("1301", 0.02), ("1401", 0.10), ("1402", 0.08))

# Linear features burnt into the survey: (三调 code, half width in metres), in overlay priority order.
RIVER_HALF_WIDTH_M = 60.0
LINEAR_HALF_WIDTHS: dict[str, float] = {"1101": RIVER_HALF_WIDTH_M, "1001": 20.0, "1003": 14.0, "1107": 4.0,
                                        "1006": 3.5}

SURNAMES = ("王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "孙", "马", "朱", "胡", "郭", "何", "高",
            "林", "罗", "宋", "谢", "韩", "冯", "邓", "许", "曹", "彭", "曾", "萧", "田", "董", "潘", "袁", "蔡")
PLACE_SUFFIXES = ("庄", "集", "店", "楼", "寨", "桥", "岗", "营", "屯", "庙", "湾", "口", "岭", "堂", "坡", "园")
VILLAGE_PREFIXES = ("", "", "", "前", "后", "东", "西", "南", "北", "大", "小")
HAZARD_TYPE_CODES = {"滑坡": "01", "崩塌": "02", "泥石流": "03", "地面塌陷": "04"}
SUSCEPTIBILITY = {3: "高易发", 2: "中易发", 1: "低易发"}
SUSCEPTIBILITY_HAZARDS = {3: "滑坡、崩塌", 2: "滑坡、崩塌、泥石流", 1: "崩塌"}
MIN_PATCH_M2 = 60.0  # smaller pieces left by overlays are absorbed by a neighbour (三调 has no such slivers)
CONFLICT_MIN_M2 = 1.0  # overlaps below this are numerical noise of shared edges


@dataclass(frozen=True)
class Mode:
    """Size parameters of one generation mode."""

    name: str
    county_area_m2: float
    patch_spacing_m: float  # Voronoi seed spacing of farmland patches
    town_spacing_m: float  # seed spacing inside town cores
    village_spacing_m: float  # seed spacing inside villages
    village_radius_m: float
    villages_per_township: tuple[int, int]
    village_min_distance_m: float
    min_yjjbnt: int
    dem_cell_deg: float
    ghfq_spacing_m: float
    hazard_cell_m: float


NORMAL_MODE = Mode("normal", 1.5e9, 500.0, 170.0, 140.0, 220.0, (10, 22), 1100.0, 0, 0.0003, 2500.0, 200.0)
SCALE_MODE = Mode("scale", 4.5e9, 150.0, 90.0, 80.0, 220.0, (30, 60), 1100.0, 100_000, 0.0008, 4000.0, 300.0)


# ---------------------------------------------------------------------------------------------------------------
# Geometry helpers
# ---------------------------------------------------------------------------------------------------------------
def _transformer_func(transformer: Transformer) -> Callable[[np.ndarray], np.ndarray]:
    def apply(coords: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return apply


def metric_to_lonlat(geoms: np.ndarray | shapely.Geometry) -> np.ndarray | shapely.Geometry:
    """Reproject EPSG:4547 geometries to EPSG:4490 (lon, lat)."""
    return shapely.transform(geoms, _transformer_func(_METRIC_TO_LONLAT))


def lonlat_to_metric(geoms: np.ndarray | shapely.Geometry) -> np.ndarray | shapely.Geometry:
    """Reproject EPSG:4490 (lon, lat) geometries to EPSG:4547."""
    return shapely.transform(geoms, _transformer_func(_LONLAT_TO_METRIC))


def metric_to_zone_prefixed(geoms: np.ndarray | shapely.Geometry) -> np.ndarray | shapely.Geometry:
    """EPSG:4547 → EPSG:4526: the same Gauss-Krüger projection, eastings carry the zone number 38 in front."""
    return shapely.transform(geoms, lambda c: c + np.array([ZONE_PREFIX_M, 0.0]))


def ellipsoidal_area_m2(lonlat_geoms: np.ndarray) -> np.ndarray:
    """Geodesic area on the GRS80/CGCS2000 ellipsoid of (multi)polygons given in lon/lat; holes subtracted."""
    geoms = np.asarray(lonlat_geoms, dtype=object)
    parts, part_owner = shapely.get_parts(geoms, return_index=True)
    rings, ring_owner = shapely.get_rings(parts, return_index=True)
    coords, coord_owner = shapely.get_coordinates(rings, return_index=True)
    bounds = np.concatenate([[0], np.cumsum(np.bincount(coord_owner, minlength=len(rings)))])
    ring_area = np.empty(len(rings))
    lon, lat = coords[:, 0], coords[:, 1]
    for i in range(len(rings)):
        area, _ = GEOD.polygon_area_perimeter(lon[bounds[i]:bounds[i + 1]], lat[bounds[i]:bounds[i + 1]])
        ring_area[i] = abs(area)
    is_shell = np.ones(len(rings), dtype=bool)
    is_shell[1:] = ring_owner[1:] != ring_owner[:-1]
    part_area = np.bincount(ring_owner, np.where(is_shell, ring_area, -ring_area), minlength=len(parts))
    return np.bincount(part_owner, part_area, minlength=len(geoms))


def metric_area_m2(metric_geoms: np.ndarray) -> np.ndarray:
    """Ellipsoidal area (m²) of EPSG:4547 geometries."""
    return ellipsoidal_area_m2(metric_to_lonlat(np.asarray(metric_geoms, dtype=object)))


def snap_to_grid(geoms: np.ndarray) -> np.ndarray:
    """Round projected coordinates to the 0.1 mm grid.

    Overlays leave vertices a few nanometres apart; once the 38,000,000 m zone prefix is added (float spacing
    ~7e-9 m) such rings would self-intersect. Plain rounding keeps shared edges identical; the rare geometry that
    rounding makes invalid is snap-rounded by GEOS instead.
    """
    geoms = np.asarray(geoms, dtype=object)
    rounded = shapely.transform(geoms, lambda c: np.round(c, GRID_DECIMALS))
    broken = ~shapely.is_valid(rounded)
    rounded[broken] = shapely.set_precision(geoms[broken], 10.0 ** -GRID_DECIMALS)
    return rounded


def _valid_everywhere(geoms: np.ndarray, file_epsgs: Sequence[int]) -> np.ndarray:
    """Whether each EPSG:4547 geometry is valid in every file CRS listed and once an importer reprojects it to 4490."""
    ok = shapely.is_valid(geoms) & shapely.is_valid(metric_to_lonlat(geoms))
    if EPSG_GK_ZONE_PREFIXED in file_epsgs:
        prefixed = metric_to_zone_prefixed(geoms)
        ok &= shapely.is_valid(prefixed) & shapely.is_valid(shapely.transform(
            prefixed, _transformer_func(_PREFIXED_TO_LONLAT)))
    return ok


def robust_polygons(geoms: np.ndarray, file_epsgs: Sequence[int] = ()) -> np.ndarray:
    """Repair the few polygons that reprojection would make invalid.

    Overlays leave needles (wedges microns wide where a field edge ran almost along a township border) and
    cracks (two lobes of a polygon microns apart). Such polygons are valid but fragile: once reprojected (or
    shifted by the 38,000,000 m zone prefix) the ring can cross itself. Only polygons that actually break get a
    local repair: a morphological closing and opening that fill cracks and cut needles thinner than ``2 * eps``,
    then vertices closer than ``eps`` to their predecessor are dropped; ``eps`` grows from 0.1 mm to 1 cm. The
    last resort snap-rounds the polygon to a 1 mm grid, which turns a near-touch into an exact one. Neighbours are
    untouched, so the shared edges stay as they were except within the repaired microns.
    """
    geoms = np.asarray(geoms, dtype=object).copy()
    broken = np.flatnonzero(~_valid_everywhere(geoms, file_epsgs))
    for eps in (1e-4, 1e-3, 1e-2, None):
        if not len(broken):
            return geoms
        if eps is None:
            geoms[broken] = shapely.set_precision(geoms[broken], 1e-3)
            broken = broken[~_valid_everywhere(geoms[broken], file_epsgs)]
            continue
        closed = shapely.buffer(shapely.buffer(geoms[broken], eps, join_style="mitre"), -eps, join_style="mitre")
        opened = shapely.buffer(shapely.buffer(closed, -eps, join_style="mitre"), eps, join_style="mitre")
        thinned = shapely.remove_repeated_points(opened, eps)
        geoms[broken] = np.where(shapely.is_valid(thinned), thinned, opened)
        broken = broken[~_valid_everywhere(geoms[broken], file_epsgs)]
    if len(broken):
        raise RuntimeError(f"{len(broken)} polygons stay invalid after reprojection despite repair")
    return geoms


def polygon_parts(geoms: np.ndarray, owners: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Explode (multi)polygons and collections into non-empty polygons, returning each part's owner index."""
    geoms = np.asarray(geoms, dtype=object)
    owners = np.arange(len(geoms)) if owners is None else np.asarray(owners)
    for _ in range(4):
        parts, idx = shapely.get_parts(geoms, return_index=True)
        geoms, owners = parts, owners[idx]
        if not np.isin(shapely.get_type_id(geoms), (4, 5, 6, 7)).any():
            break
    keep = (shapely.get_type_id(geoms) == 3) & (shapely.area(geoms) > 0)
    return geoms[keep], owners[keep]


def drop_tiny_holes(geom: shapely.Geometry, min_area: float = 1.0) -> shapely.Geometry:
    """Remove interior rings smaller than ``min_area`` (noise of unions along shared edges)."""
    polys = []
    for part in shapely.get_parts(geom):
        if part.geom_type != "Polygon":
            continue
        holes = [ring for ring in part.interiors if Polygon(ring).area >= min_area]
        polys.append(Polygon(part.exterior, holes))
    if not polys:
        return Polygon()
    return polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)


def subdivide(geom: shapely.Geometry, max_vertices: int = 256) -> list[Polygon]:
    """Cut a large polygon into small tiles (like PostGIS ST_Subdivide) so overlays stay local and fast."""
    done: list[Polygon] = []
    stack = [geom]
    while stack:
        g = stack.pop()
        if g.is_empty:
            continue
        if shapely.get_num_coordinates(g) <= max_vertices:
            done.extend(polygon_parts(np.array([g], dtype=object))[0])
            continue
        xmin, ymin, xmax, ymax = g.bounds
        if xmax - xmin >= ymax - ymin:
            mid = (xmin + xmax) / 2
            halves = (shapely.box(xmin - 1, ymin - 1, mid, ymax + 1), shapely.box(mid, ymin - 1, xmax + 1, ymax + 1))
        else:
            mid = (ymin + ymax) / 2
            halves = (shapely.box(xmin - 1, ymin - 1, xmax + 1, mid), shapely.box(xmin - 1, mid, xmax + 1, ymax + 1))
        stack.extend(shapely.intersection(g, h) for h in halves)
    return done


def radial_blob(rng: np.random.Generator, centre: tuple[float, float], radius: float, roughness: float = 0.18,
                n: int = 96) -> Polygon:
    """An irregular star-shaped polygon (valid by construction) around ``centre``."""
    theta = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    r = np.ones(n)
    for k in range(2, 7):
        r += rng.uniform(0.0, roughness) / k ** 0.7 * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    r = radius * np.clip(r, 0.35, None)
    return Polygon(np.column_stack([centre[0] + r * np.cos(theta), centre[1] + r * np.sin(theta)]))


def jittered_grid(rng: np.random.Generator, bounds: Sequence[float], spacing: float) -> np.ndarray:
    """Blue-noise-like seed points: a square grid jittered by up to half a cell."""
    xmin, ymin, xmax, ymax = bounds
    xs = np.arange(xmin, xmax + spacing, spacing)
    ys = np.arange(ymin, ymax + spacing, spacing)
    gx, gy = np.meshgrid(xs, ys)
    pts = np.column_stack([gx.ravel(), gy.ravel()])
    return pts + rng.uniform(-0.5 * spacing, 0.5 * spacing, pts.shape)


def choose_codes(rng: np.random.Generator, n: int, mix: Sequence[tuple[str, float]]) -> np.ndarray:
    """Draw ``n`` codes from a (code, weight) mix."""
    codes = np.array([c for c, _ in mix], dtype=object)
    weights = np.array([w for _, w in mix], dtype=float)
    cumulative = np.cumsum(weights / weights.sum())
    return codes[np.minimum(np.searchsorted(cumulative, rng.random(n), side="right"), len(codes) - 1)]


def orient_ring_for_survey(ring: np.ndarray) -> np.ndarray:
    """Clockwise ring without closing point, starting at the north-westernmost vertex (surveyors' habit)."""
    ring = ring[:-1] if np.allclose(ring[0], ring[-1]) else ring
    signed = 0.5 * np.sum(ring[:, 0] * np.roll(ring[:, 1], -1) - np.roll(ring[:, 0], -1) * ring[:, 1])
    if signed > 0:
        ring = ring[::-1]
    start = int(np.argmax(ring[:, 1] - ring[:, 0]))
    return np.roll(ring, -start, axis=0)


# ---------------------------------------------------------------------------------------------------------------
# Terrain: hills in one corner, a river valley, gentle westward rise
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Terrain:
    """Analytic elevation model (metres) and river course in the EPSG:4547 frame."""

    cx: float
    cy: float
    radius: float
    hill_centres: np.ndarray  # (k, 2)
    hill_heights: np.ndarray
    hill_sigmas: np.ndarray
    ridge_waves: np.ndarray  # (m, 4): kx, ky, phase, amplitude
    river_angle: float
    river_offset: float
    river_waves: np.ndarray  # (w, 3): amplitude, wavelength, phase
    base_elevation: float = 72.0

    @property
    def hill_threshold(self) -> float:
        """Elevation above which land counts as hills."""
        return self.base_elevation + 45.0

    def to_river_frame(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Coordinates (u along the river's general course, v across it)."""
        dx, dy = np.asarray(x) - self.cx, np.asarray(y) - self.cy
        c, s = math.cos(self.river_angle), math.sin(self.river_angle)
        return dx * c + dy * s, -dx * s + dy * c

    def river_v(self, u: np.ndarray) -> np.ndarray:
        """Cross-offset of the river centre line at position u."""
        v = np.full_like(np.asarray(u, dtype=float), self.river_offset)
        for amp, wavelength, phase in self.river_waves:
            v += amp * np.sin(2 * np.pi * u / wavelength + phase)
        return v

    def distance_to_river(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Approximate distance to the river centre line (cross-offset in the river frame)."""
        u, v = self.to_river_frame(x, y)
        return np.abs(v - self.river_v(u))

    def river_line(self, step: float = 40.0) -> LineString:
        """The river centre line, extended beyond the county on both sides."""
        u = np.arange(-1.8 * self.radius, 1.8 * self.radius, step)
        v = self.river_v(u)
        c, s = math.cos(self.river_angle), math.sin(self.river_angle)
        return LineString(np.column_stack([self.cx + u * c - v * s, self.cy + u * s + v * c]))

    def elevation(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Elevation in metres."""
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        hills = np.zeros_like(x)
        for (hx, hy), h, sigma in zip(self.hill_centres, self.hill_heights, self.hill_sigmas, strict=True):
            hills += h * np.exp(-((x - hx) ** 2 + (y - hy) ** 2) / (2 * sigma ** 2))
        ridges = np.zeros_like(x)
        for kx, ky, phase, amp in self.ridge_waves:
            ridges += amp * np.sin(kx * (x - self.cx) + ky * (y - self.cy) + phase)
        tilt = -12.0 * (x - self.cx) / self.radius
        valley = -7.0 * np.exp(-(self.distance_to_river(x, y) / 900.0) ** 2)
        return self.base_elevation + tilt + hills * (1.0 + ridges) + valley

    def slope_deg(self, x: np.ndarray, y: np.ndarray, h: float = 15.0) -> np.ndarray:
        """Slope in degrees by central differences."""
        dzdx = (self.elevation(x + h, y) - self.elevation(x - h, y)) / (2 * h)
        dzdy = (self.elevation(x, y + h) - self.elevation(x, y - h)) / (2 * h)
        return np.degrees(np.arctan(np.hypot(dzdx, dzdy)))


def make_terrain(rng: np.random.Generator, cx: float, cy: float, radius: float) -> Terrain:
    """Hills in the north-west corner, a river crossing the county south of the county seat."""
    alpha = math.radians(rng.uniform(115, 155))
    main = np.array([cx + 0.62 * radius * math.cos(alpha), cy + 0.62 * radius * math.sin(alpha)])
    k = int(rng.integers(5, 8))
    offsets = rng.normal(0.0, 0.13 * radius, (k, 2))
    offsets[0] = 0.0
    waves = []
    for _ in range(5):
        wavelength = rng.uniform(1500, 4500) * radius / 21_850
        direction = rng.uniform(0, np.pi)
        waves.append([2 * np.pi / wavelength * math.cos(direction), 2 * np.pi / wavelength * math.sin(direction),
                      rng.uniform(0, 2 * np.pi), rng.uniform(0.04, 0.09)])
    river_waves = np.array([
        [rng.uniform(0.05, 0.08) * radius, rng.uniform(0.9, 1.3) * radius, rng.uniform(0, 2 * np.pi)],
        [rng.uniform(0.015, 0.025) * radius, rng.uniform(0.2, 0.3) * radius, rng.uniform(0, 2 * np.pi)],
        [rng.uniform(150, 300), rng.uniform(2500, 3500), rng.uniform(0, 2 * np.pi)],
    ])
    return Terrain(
        cx=cx, cy=cy, radius=radius,
        hill_centres=main + offsets,
        hill_heights=rng.uniform(120, 380, k),
        hill_sigmas=rng.uniform(0.06, 0.11, k) * radius,
        ridge_waves=np.array(waves),
        river_angle=math.radians(rng.uniform(-25, -5)),
        river_offset=-rng.uniform(0.08, 0.12) * radius,
        river_waves=river_waves,
    )


# ---------------------------------------------------------------------------------------------------------------
# County, townships, villages
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Township:
    """A township (乡镇) with its canonical polygon (EPSG:4547) and its centre (镇区/集镇)."""

    index: int
    code: str  # XZQDM, 9 digits
    name: str  # XZQMC
    centre: tuple[float, float]
    core_radius: float
    is_seat: bool
    geometry: Polygon  # EPSG:4547, back-projected from ``lonlat``
    lonlat: Polygon  # EPSG:4490, vertices rounded to LONLAT_DECIMALS: the published geometry
    core_shape: tuple[tuple[float, float], ...]  # (amplitude, phase) of harmonics 2, 3, 4 of the built-up outline

    def core_distance(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Distance from the centre in units of the (irregular) built-up radius in that direction: ≤1 is built-up."""
        dx, dy = np.asarray(x) - self.centre[0], np.asarray(y) - self.centre[1]
        theta = np.arctan2(dy, dx)
        shape = np.ones_like(theta)
        for k, (amp, phase) in enumerate(self.core_shape, start=2):
            shape += amp * np.cos(k * theta + phase)
        return np.hypot(dx, dy) / (self.core_radius * shape)


@dataclass(frozen=True)
class Village:
    """A 村民委员会 or 社区居民委员会: the 座落/权属单位 of survey patches."""

    code: str  # 12 digits; ZLDWDM/QSDWDM append 7 zeros
    name: str
    township: int
    centre: tuple[float, float]
    is_community: bool


def make_county_outline(rng: np.random.Generator, cx: float, cy: float, area_m2: float) -> Polygon:
    """An irregular star-shaped county outline of the requested planar area."""
    theta = np.linspace(0.0, 2 * np.pi, 900, endpoint=False)
    r = np.ones_like(theta)
    for k in range(2, 7):
        r += rng.uniform(0.03, 0.10) / math.sqrt(k) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    for k in range(8, 48):
        r += rng.uniform(0.0, 0.012) * 8 / k * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    r = np.clip(r, 0.4, None)
    unit = Polygon(np.column_stack([np.cos(theta) * r, np.sin(theta) * r]))
    scale = math.sqrt(area_m2 / unit.area)
    return Polygon(np.column_stack([cx + np.cos(theta) * r * scale, cy + np.sin(theta) * r * scale]))


def township_seeds(rng: np.random.Generator, county: Polygon, n: int, seat: tuple[float, float]) -> np.ndarray:
    """Dart-throwing township centres with a minimum spacing, the county seat first, then Lloyd relaxation."""
    min_dist = 0.8 * math.sqrt(county.area / n)
    xmin, ymin, xmax, ymax = county.bounds
    inner = county.buffer(-0.25 * min_dist)
    seeds = [np.array(seat)]
    while len(seeds) < n:
        cand = rng.uniform((xmin, ymin), (xmax, ymax), (4000, 2))
        cand = cand[shapely.contains_xy(inner, cand[:, 0], cand[:, 1])]
        for p in cand:
            if len(seeds) == n:
                break
            if min(np.hypot(*(p - s)) for s in seeds) >= min_dist:
                seeds.append(p)
        min_dist *= 0.95
    pts = np.array(seeds)
    for _ in range(3):  # Lloyd relaxation keeps the seat in place
        cells = voronoi_cells(pts, county)
        centroids = shapely.get_coordinates(shapely.centroid(shapely.intersection(cells, county)))
        pts[1:] = centroids[1:]
    return pts


def voronoi_cells(points: np.ndarray, extent: shapely.Geometry) -> np.ndarray:
    """Voronoi cells in the order of ``points``, covering at least the envelope of ``extent``."""
    collection = shapely.voronoi_polygons(MultiPoint(points), extend_to=shapely.envelope(extent).buffer(1000.0),
                                          ordered=True)
    return np.asarray(shapely.get_parts(collection), dtype=object)


def tessellate_townships(rng: np.random.Generator, county: Polygon, seeds: np.ndarray) -> list[Polygon]:
    """Townships as unions of ~1 km cells given to the nearest seed, so borders zig-zag like real ones.

    Stray parts join the neighbour with which they share the longest border.
    """
    spacing = 0.045 * math.sqrt(county.area / len(seeds))
    small = voronoi_cells(jittered_grid(rng, county.buffer(spacing).bounds, spacing), county)
    small, _ = polygon_parts(shapely.intersection(small, county))
    nearest = STRtree(shapely.points(seeds)).query_nearest(shapely.centroid(small), return_distance=False)[1]
    cells = np.array([shapely.union_all(small[nearest == i]) for i in range(len(seeds))], dtype=object)
    parts, owner = polygon_parts(cells)
    main_of = {}
    for i in range(len(seeds)):
        own = np.flatnonzero(owner == i)
        main_of[i] = own[np.argmax(shapely.area(parts[own]))]
    groups: dict[int, list[Polygon]] = {i: [parts[main_of[i]]] for i in range(len(seeds))}
    for j in range(len(parts)):
        if j in main_of.values():
            continue
        shared = shapely.length(shapely.intersection(parts[j].boundary, [parts[main_of[i]] for i in groups]))
        shared[owner[j]] = -1.0
        groups[int(np.argmax(shared))].append(parts[j])
    return [shapely.union_all(groups[i]) for i in range(len(seeds))]


def canonical_townships(polys: list[Polygon]) -> tuple[list[Polygon], list[Polygon]]:
    """Round township vertices once in EPSG:4490 (shared edges stay identical); return metric and lon/lat forms."""
    lonlat = metric_to_lonlat(np.asarray(polys, dtype=object))
    lonlat = shapely.transform(lonlat, lambda c: np.round(c, LONLAT_DECIMALS))
    metric = lonlat_to_metric(lonlat)
    return list(metric), list(lonlat)


def township_names(rng: np.random.Generator, n: int) -> list[tuple[str, str]]:
    """(name, kind) pairs: 城关镇 is the county seat, the others are 镇 or 乡 with distinct surnames."""
    surnames = rng.permutation(np.array(SURNAMES, dtype=object))[: n - 1]
    names = [("城关镇", "镇")]
    for s in surnames:
        kind = "镇" if rng.random() < 0.4 else "乡"
        names.append((f"{s}{PLACE_SUFFIXES[int(rng.integers(len(PLACE_SUFFIXES)))]}{kind}", kind))
    return names


def make_townships(rng: np.random.Generator, county: Polygon, radius: float) -> list[Township]:
    """12–20 townships tessellating the county; codes follow GB/T 10114 (镇 1xx, 乡 2xx)."""
    n = int(rng.integers(12, 21))
    cx, cy = county.centroid.x, county.centroid.y
    seat = (cx + rng.uniform(-0.04, 0.04) * radius, cy + rng.uniform(-0.04, 0.04) * radius)
    seeds = township_seeds(rng, county, n, seat)
    metric, lonlat = canonical_townships(tessellate_townships(rng, county, seeds))
    names = township_names(rng, n)
    town_no, xiang_no = 100, 200
    townships = []
    for i, ((name, kind), geom, geom_ll) in enumerate(zip(names, metric, lonlat, strict=True)):
        if kind == "镇":
            number, town_no = town_no, town_no + 1
        else:
            number, xiang_no = xiang_no, xiang_no + 1
        if i == 0:
            core = 0.11 * radius
        else:
            core = (rng.uniform(0.035, 0.045) if kind == "镇" else rng.uniform(0.025, 0.032)) * radius
        shape = tuple((float(rng.uniform(0.0, 0.14)), float(rng.uniform(0, 2 * np.pi))) for _ in range(3))
        townships.append(Township(i, f"{COUNTY_CODE}{number:03d}", name, (float(seeds[i][0]), float(seeds[i][1])),
                                  float(core), i == 0, geom, geom_ll, shape))
    return townships


def make_villages(rng: np.random.Generator, mode: Mode, townships: list[Township], terrain: Terrain
                  ) -> list[Village]:
    """One 社区居委会 at each township centre plus 村委会 scattered over the township."""
    villages: list[Village] = []
    for t in townships:
        villages.append(Village(f"{t.code}001", f"{t.name[:-1]}社区", t.index, t.centre, True))
        lo, hi = mode.villages_per_township
        wanted = int(rng.integers(lo, hi + 1))
        inner = t.geometry.buffer(-300.0)
        xmin, ymin, xmax, ymax = t.geometry.bounds
        cand = rng.uniform((xmin, ymin), (xmax, ymax), (wanted * 40, 2))
        ok = shapely.contains_xy(inner, cand[:, 0], cand[:, 1])
        ok &= np.hypot(cand[:, 0] - t.centre[0], cand[:, 1] - t.centre[1]) > t.core_radius + 500
        ok &= terrain.distance_to_river(cand[:, 0], cand[:, 1]) > 350
        ok &= terrain.elevation(cand[:, 0], cand[:, 1]) < terrain.hill_threshold + 60
        placed: list[np.ndarray] = []
        used_names: set[str] = set()
        for p in cand[ok]:
            if len(placed) == wanted:
                break
            if placed and np.min(np.hypot(*(np.array(placed) - p).T)) < mode.village_min_distance_m:
                continue
            name = village_name(rng, used_names)
            placed.append(p)
            villages.append(Village(f"{t.code}{200 + len(placed):03d}", name, t.index, (float(p[0]), float(p[1])),
                                    False))
    return villages


def village_name(rng: np.random.Generator, used: set[str]) -> str:
    """A unique 村 name within the township, such as 后李庄村."""
    while True:
        name = (VILLAGE_PREFIXES[int(rng.integers(len(VILLAGE_PREFIXES)))] + SURNAMES[int(rng.integers(len(SURNAMES)))]
                + PLACE_SUFFIXES[int(rng.integers(len(PLACE_SUFFIXES)))] + "村")
        if name not in used:
            used.add(name)
            return name


# ---------------------------------------------------------------------------------------------------------------
# Linear network: river, railway, highways, canals, rural roads
# ---------------------------------------------------------------------------------------------------------------
def bent_line(rng: np.random.Generator, start: Sequence[float] | np.ndarray, end: Sequence[float] | np.ndarray,
              bend: float = 0.06) -> LineString:
    """A road from start to end with two gently displaced intermediate points."""
    a, b = np.asarray(start, dtype=float), np.asarray(end, dtype=float)
    d = b - a
    normal = np.array([-d[1], d[0]]) / (np.hypot(*d) + 1e-9)
    pts = [a]
    for f in (1 / 3, 2 / 3):
        pts.append(a + f * d + normal * rng.uniform(-bend, bend) * np.hypot(*d))
    pts.append(b)
    return LineString(pts)


def make_linear_network(rng: np.random.Generator, terrain: Terrain, townships: list[Township],
                        villages: list[Village]) -> dict[str, list[LineString]]:
    """Centre lines of the linear survey features, by 三调 code."""
    seat = np.array(townships[0].centre)
    r = terrain.radius
    angle = math.radians(rng.uniform(25, 65))
    direction = np.array([math.cos(angle), math.sin(angle)])
    normal = np.array([-direction[1], direction[0]])
    through = seat + normal * 0.07 * r
    rail = LineString([through - 2.0 * r * direction, through - 0.3 * r * direction + normal * 0.02 * r,
                       through + 0.4 * r * direction - normal * 0.02 * r, through + 2.0 * r * direction])
    highways = [bent_line(rng, seat, t.centre) for t in townships[1:]]
    highways.append(bent_line(rng, seat - 2.0 * r * normal, seat + 2.0 * r * normal, bend=0.01))
    hills = shapely.union_all([Point(c).buffer(2.2 * s) for c, s in zip(terrain.hill_centres, terrain.hill_sigmas,
                                                                           strict=True)])
    canals: list[LineString] = []
    c, s = math.cos(terrain.river_angle), math.sin(terrain.river_angle)
    for offset in rng.choice([-1, 1], 5) * rng.uniform(0.12, 0.45, 5) * r:
        u = np.arange(-1.6 * r, 1.6 * r, 200.0)
        v = terrain.river_offset + offset + 0.4 * (terrain.river_v(u) - terrain.river_offset)
        line = LineString(np.column_stack([terrain.cx + u * c - v * s, terrain.cy + u * s + v * c]))
        canals.extend(g for g in shapely.get_parts(line.difference(hills)) if g.length > 1000)
    rural = []
    for t in townships:
        members = sorted((v for v in villages if v.township == t.index and not v.is_community),
                         key=lambda v: math.dist(v.centre, t.centre))
        reached = [t.centre]
        for v in members:
            target = min(reached, key=lambda p: math.dist(p, v.centre))
            rural.append(bent_line(rng, v.centre, target, bend=0.04))
            reached.append(v.centre)
    return {"1101": [terrain.river_line()], "1001": [rail], "1003": highways, "1107": canals, "1006": rural}


def linear_polygons(network: dict[str, list[LineString]], county: Polygon) -> list[tuple[str, shapely.Geometry]]:
    """Buffer the centre lines and make the classes disjoint in priority order (river first)."""
    taken = Polygon()
    result = []
    for code, half_width in LINEAR_HALF_WIDTHS.items():
        merged = shapely.union_all(shapely.buffer(network[code], half_width, quad_segs=4))
        own = merged.difference(taken).intersection(county.buffer(50.0))
        result.append((code, own))
        taken = taken.union(merged)
    return result


# ---------------------------------------------------------------------------------------------------------------
# 三调 patches
# ---------------------------------------------------------------------------------------------------------------
def patch_seeds(rng: np.random.Generator, mode: Mode, county: Polygon, townships: list[Township],
                villages: list[Village]) -> np.ndarray:
    """Seed points: coarse in farmland, fine in town cores and villages (built-up patches are smaller)."""
    bounds = county.buffer(mode.patch_spacing_m).bounds
    base = jittered_grid(rng, bounds, mode.patch_spacing_m)
    dense_zones = [(t.centre, t.core_radius * 1.5, mode.town_spacing_m) for t in townships]
    dense_zones += [(v.centre, mode.village_radius_m, mode.village_spacing_m) for v in villages if not v.is_community]
    centres = shapely.points([c for c, _, _ in dense_zones])
    radii = np.array([r for _, r, _ in dense_zones])
    _, covered = STRtree(shapely.points(base)).query(centres, predicate="dwithin", distance=radii)
    keep = np.ones(len(base), dtype=bool)
    keep[covered] = False
    extra = []
    for (x, y), radius, spacing in dense_zones:
        fine = jittered_grid(rng, (x - radius, y - radius, x + radius, y + radius), spacing)
        extra.append(fine[np.hypot(fine[:, 0] - x, fine[:, 1] - y) <= radius])
    pts = np.vstack([base[keep], *extra])
    # Dense zones may overlap: drop near-duplicates so the Voronoi diagram stays well defined.
    _, unique = np.unique(np.round(pts / 20.0).astype(np.int64), axis=0, return_index=True)
    return pts[np.sort(unique)]


def bend_field_edges(cells: np.ndarray, min_edge: float, amplitude: float = 0.05) -> np.ndarray:
    """Give every cell edge longer than ``min_edge`` a slightly displaced middle vertex (field borders are not
    ruler-straight, and real farmland patches have 6–12 vertices).

    The new vertex depends only on the edge (canonical direction, hash of its rounded midpoint), so the two cells
    sharing an edge receive the same vertex and the tessellation stays gap- and overlap-free. Edges whose bend
    would make a cell invalid stay straight.
    """
    coords, owner = shapely.get_coordinates(shapely.get_exterior_ring(cells), return_index=True)
    a, b = coords[:-1], coords[1:]
    same_ring = owner[:-1] == owner[1:]
    forward = (a[:, 0] < b[:, 0]) | ((a[:, 0] == b[:, 0]) & (a[:, 1] < b[:, 1]))
    direction = np.where(forward[:, None], b - a, a - b)
    length = np.hypot(direction[:, 0], direction[:, 1])
    normal = np.column_stack([-direction[:, 1], direction[:, 0]]) / np.maximum(length, 1e-9)[:, None]
    midpoint = (a + b) / 2
    key = np.round(midpoint, 2)
    noise = (np.sin(key[:, 0] * 12.9898 + key[:, 1] * 78.233) * 43758.5453) % 1.0 * 2.0 - 1.0
    bent = midpoint + normal * (noise * amplitude * length)[:, None]
    straight = length > 4 * min_edge  # the huge cells at the edge of the diagram keep straight borders
    edge_id = None
    for _ in range(3):
        insert = same_ring & (length > min_edge) & ~straight
        result = _rings_with_inserted_points(coords, owner, bent, insert)
        broken = np.flatnonzero(~shapely.is_valid(result))
        if not len(broken):
            return result
        if edge_id is None:
            edge_id = np.unique(key, axis=0, return_inverse=True)[1].ravel()
        straight |= np.isin(edge_id, edge_id[np.isin(owner[:-1], broken)])
    return cells


def _rings_with_inserted_points(coords: np.ndarray, owner: np.ndarray, points: np.ndarray, insert: np.ndarray
                                ) -> np.ndarray:
    """Polygons rebuilt from ring coordinates with ``points[i]`` inserted after vertex i where ``insert[i]``."""
    n = len(coords)
    extra = np.zeros(n, dtype=np.int64)
    extra[:-1] = insert
    position = np.arange(n) + np.concatenate([[0], np.cumsum(extra)[:-1]])
    merged = np.empty((n + int(extra.sum()), 2))
    merged_owner = np.empty(len(merged), dtype=np.int64)
    merged[position] = coords
    merged_owner[position] = owner
    inserted_at = position[:-1][insert] + 1
    merged[inserted_at] = points[insert]
    merged_owner[inserted_at] = owner[:-1][insert]
    rings = shapely.linearrings(merged, indices=merged_owner)
    return shapely.polygons(rings)


def clip_cells_to_townships(cells: np.ndarray, townships: list[Township]) -> tuple[np.ndarray, np.ndarray]:
    """Cut the cells along township borders; returns polygons and their township index."""
    tree = STRtree(cells)
    out_geoms, out_twp = [], []
    for t in townships:
        shapely.prepare(t.geometry)
        idx = tree.query(t.geometry, predicate="intersects")
        inside = shapely.covers(t.geometry, cells[idx])
        out_geoms.append(cells[idx[inside]])
        out_twp.append(np.full(inside.sum(), t.index))
        cut, _ = polygon_parts(shapely.intersection(cells[idx[~inside]], t.geometry))
        out_geoms.append(cut)
        out_twp.append(np.full(len(cut), t.index))
    return np.concatenate(out_geoms), np.concatenate(out_twp)


def burn_linear_features(cells: np.ndarray, twp: np.ndarray, linear: list[tuple[str, shapely.Geometry]]
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Overlay the linear features on the cells: linear pieces become their own patches, the rest is differenced.

    Returns (geometries, township index, linear code or '' for areal patches).
    """
    tiles, tile_code = [], []
    for code, geom in linear:
        pieces = subdivide(geom, 200)
        tiles.extend(pieces)
        tile_code.extend([code] * len(pieces))
    tiles_arr = np.asarray(tiles, dtype=object)
    tile_code_arr = np.asarray(tile_code, dtype=object)
    tile_idx, cell_idx = STRtree(cells).query(tiles_arr, predicate="intersects")
    cut, owner = polygon_parts(shapely.intersection(cells[cell_idx], tiles_arr[tile_idx]))
    lin_geoms, lin_cell, lin_code = merge_tile_seams(cut, cell_idx[owner], tile_code_arr[tile_idx[owner]])

    remaining = cells.copy()
    order = np.argsort(cell_idx, kind="stable")
    sorted_cells = cell_idx[order]
    first = np.searchsorted(sorted_cells, sorted_cells, side="left")
    rank = np.arange(len(sorted_cells)) - first
    for r in range(int(rank.max()) + 1 if len(rank) else 0):
        sel = order[rank == r]
        remaining[cell_idx[sel]] = shapely.difference(remaining[cell_idx[sel]], tiles_arr[tile_idx[sel]])
    areal, areal_cell = polygon_parts(remaining)
    geoms = np.concatenate([areal, lin_geoms])
    return (geoms, np.concatenate([twp[areal_cell], twp[lin_cell]]),
            np.concatenate([np.full(len(areal), "", dtype=object), lin_code]))


def merge_tile_seams(geoms: np.ndarray, cell: np.ndarray, code: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rejoin linear pieces that the subdivision tiles split inside one cell."""
    key = pd.Series(cell.astype(str)) + "|" + pd.Series(code.astype(str))
    dup = key.duplicated(keep=False).to_numpy()
    if not dup.any():
        return geoms, cell, code
    out_g, out_c, out_k = [geoms[~dup]], [cell[~dup]], [code[~dup]]
    for _, idx in pd.Series(np.flatnonzero(dup)).groupby(key[dup].to_numpy()):
        members = idx.to_numpy()
        merged, _ = polygon_parts(np.array([shapely.union_all(geoms[members])], dtype=object))
        out_g.append(merged)
        out_c.append(np.full(len(merged), cell[members[0]]))
        out_k.append(np.full(len(merged), code[members[0]], dtype=object))
    return np.concatenate(out_g), np.concatenate(out_c), np.concatenate(out_k)


def absorb_slivers(geoms: np.ndarray, twp: np.ndarray, lin: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge pieces below MIN_PATCH_M2 into the same-township neighbour sharing the longest border."""
    area = shapely.area(geoms)
    small = np.flatnonzero(area < MIN_PATCH_M2)
    if not len(small):
        return geoms, twp, lin
    s_idx, n_idx = STRtree(geoms).query(geoms[small], predicate="intersects")
    s_idx = small[s_idx]
    ok = (twp[s_idx] == twp[n_idx]) & (area[n_idx] >= MIN_PATCH_M2)
    s_idx, n_idx = s_idx[ok], n_idx[ok]
    shared = shapely.length(shapely.intersection(shapely.boundary(geoms[s_idx]), shapely.boundary(geoms[n_idx])))
    best = pd.DataFrame({"s": s_idx, "n": n_idx, "len": shared}).query("len > 0")
    best = best.sort_values(["s", "len"], ascending=[True, False], kind="stable").drop_duplicates("s")
    geoms = geoms.copy()
    best = best.sort_values(["n", "s"], kind="stable")
    absorbed, absorber = best["s"].to_numpy(), best["n"].to_numpy()
    targets, starts = np.unique(absorber, return_index=True)
    for target, slivers in zip(targets, np.split(absorbed, starts[1:]), strict=True):
        geoms[target] = drop_tiny_holes(shapely.union_all(np.concatenate([[geoms[target]], geoms[slivers]])))
    keep = np.ones(len(geoms), dtype=bool)
    keep[best["s"].to_numpy()] = False
    parts, owner = polygon_parts(geoms[keep])
    return parts, twp[keep][owner], lin[keep][owner]


@dataclass
class Landscape:
    """Everything the land-use classification needs to know about the county."""

    terrain: Terrain
    townships: list[Township]
    villages: list[Village]
    village_radius: float


def classify_areal_patches(rng: np.random.Generator, geoms: np.ndarray, land: Landscape) -> np.ndarray:
    """三调 codes for non-linear patches by landscape zone: town cores > villages > hills > riverside > plain."""
    c = shapely.get_coordinates(shapely.centroid(geoms))
    x, y = c[:, 0], c[:, 1]
    codes = np.full(len(geoms), "", dtype=object)
    unassigned = np.ones(len(geoms), dtype=bool)

    def assign(mask: np.ndarray, mix: Sequence[tuple[str, float]]) -> None:
        sel = mask & unassigned
        codes[sel] = choose_codes(rng, int(sel.sum()), mix)
        unassigned[sel] = False

    for t in land.townships:
        d = t.core_distance(x, y)
        assign(d <= 0.6, MIX_TOWN_INNER)
        assign(d <= 1.0, MIX_TOWN_OUTER)
    village_points = shapely.points([v.centre for v in land.villages if not v.is_community])
    hits, _ = STRtree(village_points).query(shapely.points(c), predicate="dwithin", distance=land.village_radius)
    near_village = np.zeros(len(geoms), dtype=bool)
    near_village[hits] = True
    assign(near_village, MIX_VILLAGE)
    elevation = land.terrain.elevation(x, y)
    assign(elevation > land.terrain.hill_threshold, MIX_HILLS)
    assign(land.terrain.distance_to_river(x, y) < 2000.0, MIX_RIVERSIDE)
    assign(np.ones(len(geoms), dtype=bool), MIX_PLAIN)
    return codes


def carve_ponds(rng: np.random.Generator, geoms: np.ndarray, codes: np.ndarray, twp: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Put small ponds (1104) inside ~0.6% of farmland patches, leaving a hole (岛) in the farmland patch."""
    candidates = np.flatnonzero(np.isin(codes, CULTIVATED_CODES))
    chosen = np.sort(rng.choice(candidates, size=max(3, int(0.006 * len(candidates))), replace=False))
    centres = shapely.centroid(geoms[chosen])
    room = shapely.distance(centres, shapely.boundary(geoms[chosen]))
    ok = shapely.contains(geoms[chosen], centres) & (room > 30.0)
    chosen, centres, room = chosen[ok], centres[ok], room[ok]
    ponds = shapely.buffer(centres, np.minimum(0.45 * room, 45.0), quad_segs=4)
    geoms = geoms.copy()
    geoms[chosen] = shapely.difference(geoms[chosen], ponds)
    return (np.concatenate([geoms, ponds]), np.concatenate([codes, np.full(len(ponds), "1104", dtype=object)]),
            np.concatenate([twp, twp[chosen]]))


def assign_villages(geoms: np.ndarray, twp: np.ndarray, villages: list[Village]) -> np.ndarray:
    """Index (into ``villages``) of the 座落单位 of each patch: the nearest village of the same township."""
    c = shapely.get_coordinates(shapely.centroid(geoms))
    result = np.empty(len(geoms), dtype=np.int64)
    vil_twp = np.array([v.township for v in villages])
    vil_xy = np.array([v.centre for v in villages])
    for t in np.unique(twp):
        sel = np.flatnonzero(twp == t)
        cand = np.flatnonzero(vil_twp == t)
        d = np.hypot(c[sel, 0, None] - vil_xy[cand, 0], c[sel, 1, None] - vil_xy[cand, 1])
        result[sel] = cand[np.argmin(d, axis=1)]
    return result


def slope_grade(slope_deg: np.ndarray) -> np.ndarray:
    """坡度级别 1–5."""
    return np.searchsorted(np.array(SLOPE_GRADE_LIMITS_DEG), slope_deg, side="left") + 1


def bsm(seq: np.ndarray | int) -> np.ndarray | int:
    """标识码: county code followed by a 10-digit sequence number (fits int64 and JavaScript numbers)."""
    return int(COUNTY_CODE) * 10 ** 10 + seq


def build_dltb(rng: np.random.Generator, mode: Mode, county: Polygon, land: Landscape,
               network: dict[str, list[LineString]]) -> gpd.GeoDataFrame:
    """三调地类图斑 (EPSG:4547) with all attributes; rows sorted by township, village, TBBH."""
    seeds = patch_seeds(rng, mode, county, land.townships, land.villages)
    cells = bend_field_edges(voronoi_cells(seeds, county), 0.6 * mode.patch_spacing_m)
    cells, twp = clip_cells_to_townships(cells, land.townships)
    geoms, twp, lin = burn_linear_features(cells, twp, linear_polygons(network, county))
    geoms, twp, lin = absorb_slivers(geoms, twp, lin)
    codes = lin.copy()
    areal = lin == ""
    codes[areal] = classify_areal_patches(rng, geoms[areal], land)
    geoms, codes, twp = carve_ponds(rng, geoms, codes, twp)
    geoms, owner = polygon_parts(snap_to_grid(geoms))
    geoms, owner_2 = polygon_parts(robust_polygons(geoms, (EPSG_GK_ZONE_PREFIXED, EPSG_GK_CM_114)))
    owner = owner[owner_2]
    keep = shapely.area(geoms) >= 1.0
    geoms, codes, twp = geoms[keep], codes[owner[keep]], twp[owner[keep]]
    vil_idx = assign_villages(geoms, twp, land.villages)
    c = shapely.get_coordinates(shapely.centroid(geoms))
    grade = slope_grade(land.terrain.slope_deg(c[:, 0], c[:, 1]))
    frame = pd.DataFrame({"twp": twp, "vil": vil_idx, "north": -np.round(c[:, 1], 3), "east": np.round(c[:, 0], 3)})
    order = np.lexsort((frame["east"], frame["north"], frame["vil"], frame["twp"]))
    geoms, codes, twp, vil_idx, grade = geoms[order], codes[order], twp[order], vil_idx[order], grade[order]
    tbbh = pd.Series(vil_idx).groupby(vil_idx).cumcount().to_numpy() + 1

    vil_code = np.array([v.code + "0000000" for v in land.villages], dtype=object)
    vil_name = np.array([v.name for v in land.villages], dtype=object)
    twp_code = np.array([t.code for t in land.townships], dtype=object)
    twp_name = np.array([t.name for t in land.townships], dtype=object)
    state = np.isin(codes, list(STATE_OWNED_CODES))
    kcxs = np.where(np.isin(codes, ("0102", "0103")), np.array(KCXS_BY_SLOPE_GRADE)[grade - 1], 0.0)
    tbmj = np.round(metric_area_m2(geoms), 2)
    kcmj = np.round(tbmj * kcxs, 2)
    return gpd.GeoDataFrame({
        "BSM": bsm(np.arange(1, len(geoms) + 1)),
        "TBBH": tbbh.astype(str),
        "DLBM": codes.astype(str),
        "DLMC": [DLTB_NAMES[k] for k in codes],
        "QSDWDM": np.where(state, twp_code[twp] + "0000000000", vil_code[vil_idx]),
        "QSDWMC": np.where(state, twp_name[twp] + "国有土地", vil_name[vil_idx]),
        "ZLDWDM": vil_code[vil_idx],
        "ZLDWMC": vil_name[vil_idx],
        "TBMJ": tbmj,
        "KCXS": kcxs,
        "KCMJ": kcmj,
        "TBDLMJ": np.round(tbmj - kcmj, 2),
        "GDPDJB": pd.Series(grade, dtype="Int32").where(np.isin(codes, CULTIVATED_CODES)),  # 耕地坡度级别 (耕地 only)
        "_grade": grade,
        "_twp": twp,
    }, geometry=geoms, crs=EPSG_GK_CM_114)


def corrupt_patches(rng: np.random.Generator, dltb: gpd.GeoDataFrame, county: Polygon) -> dict[int, str]:
    """Make 3 non-farmland interior patches invalid (2 bow-ties, 1 spike); returns {BSM: defect}."""
    inner = county.buffer(-2000.0)
    shapely.prepare(inner)
    geoms = dltb.geometry.to_numpy()
    ok = np.flatnonzero(~dltb["DLBM"].isin(CULTIVATED_CODES).to_numpy() & (shapely.get_num_interior_rings(geoms) == 0)
                        & (shapely.get_num_coordinates(geoms) >= 7) & (dltb["DLBM"].str[:2] != "10").to_numpy()
                        & (dltb["TBMJ"].to_numpy() > 2000))
    ok = ok[shapely.contains(inner, geoms[ok])]
    chosen = np.sort(rng.choice(ok, 3, replace=False))
    defects: dict[int, str] = {}
    geoms = geoms.copy()
    for i, row in enumerate(chosen):
        kind = "spike" if i == 1 else "bow-tie"
        geoms[row] = spiked(geoms[row]) if kind == "spike" else bow_tied(geoms[row])
        defects[int(dltb["BSM"].iat[row])] = kind
    dltb.geometry = gpd.GeoSeries(geoms, crs=dltb.crs, index=dltb.index)
    return defects


def spiked(poly: Polygon) -> Polygon:
    """The ring runs from a vertex 30% of the way to the centroid and back: a zero-width spike (invalid)."""
    ring = np.asarray(poly.exterior.coords)[:-1]
    centroid = np.asarray(poly.centroid.coords[0])
    tip = ring[2] + 0.3 * (centroid - ring[2])
    result = Polygon(np.vstack([ring[:3], tip, ring[2:]]))
    if result.is_valid:
        raise RuntimeError("spike did not make the polygon invalid")
    return result


def bow_tied(poly: Polygon) -> Polygon:
    """Two consecutive vertices swapped so that the ring crosses itself (a bow-tie, invalid)."""
    ring = np.asarray(poly.exterior.coords)[:-1]
    for k in range(len(ring) - 1):
        swapped = ring.copy()
        swapped[[k, k + 1]] = swapped[[k + 1, k]]
        result = Polygon(swapped)
        if not result.is_valid and abs(result.area) > 0:
            return result
    raise RuntimeError("no vertex swap makes this ring self-intersect")


# ---------------------------------------------------------------------------------------------------------------
# Three lines
# ---------------------------------------------------------------------------------------------------------------
def build_czkfbj(dltb: gpd.GeoDataFrame, land: Landscape) -> tuple[gpd.GeoDataFrame, np.ndarray, np.ndarray]:
    """城镇开发边界 assembled from whole survey patches around the county seat and each township centre.

    Returns the layer, the sub-zone name per DLTB row ('' outside) and the index of the town that claimed it.
    """
    c = shapely.get_coordinates(shapely.centroid(dltb.geometry.values))
    x, y = c[:, 0], c[:, 1]
    hills = land.terrain.elevation(x, y) > land.terrain.hill_threshold
    existing_urban = dltb["DLBM"].isin(URBAN_DLTB_CODES).to_numpy()  # always inside 城镇集中建设区
    zone = np.full(len(dltb), "", dtype=object)
    town_of = np.full(len(dltb), -1)
    for t in land.townships:
        d = t.core_distance(x, y)
        bearing = np.degrees(np.arctan2(y - t.centre[1], x - t.centre[0])) % 360
        free = (zone == "") & (~(hills & (d > 1.0)) | existing_urban)
        core_limit = 1.25 if t.is_seat else 1.2
        outer_limit = 1.5 if t.is_seat else 1.35
        core = free & ((d <= core_limit) | (existing_urban & (d <= 2.0)))
        ring = free & ~core & (d <= outer_limit)
        zone[core] = "城镇集中建设区"
        start = (t.index * 67) % 360
        if t.is_seat or t.name.endswith("镇"):
            sector = 180 if t.is_seat else 120
            zone[ring & ((bearing - start) % 360 < sector)] = "城镇弹性发展区"
        if t.is_seat:
            zone[ring & ((bearing - start) % 360 >= 200) & ((bearing - start) % 360 < 260)] = "特别用途区"
        town_of[(zone != "") & (town_of < 0)] = t.index
    rows = []
    claimed = np.flatnonzero(zone != "")
    keys = pd.DataFrame({"town": town_of[claimed], "zone": zone[claimed].astype(str),
                         "twp": dltb["_twp"].to_numpy()[claimed], "row": claimed})
    for (town, name, tw), group in keys.groupby(["town", "zone", "twp"], sort=True):
        merged = drop_tiny_holes(shapely.union_all(dltb.geometry.values[group["row"].to_numpy()]))
        for part in polygon_parts(np.array([merged], dtype=object))[0]:
            rows.append({"town": town, "GHFQMC": name, "twp": tw, "geometry": part})
    layer = gpd.GeoDataFrame(rows, geometry="geometry", crs=EPSG_GK_CM_114)
    layer = layer.sort_values(["town", "twp", "GHFQMC"], kind="stable").reset_index(drop=True)
    repaired, owner = polygon_parts(robust_polygons(layer.geometry.to_numpy()))
    layer = gpd.GeoDataFrame(layer.drop(columns="geometry").iloc[owner].reset_index(drop=True), geometry=repaired,
                             crs=EPSG_GK_CM_114)
    t_code = [land.townships[i].code for i in layer["twp"]]
    t_name = [land.townships[i].name for i in layer["twp"]]
    out = gpd.GeoDataFrame({
        "BSM": bsm(np.arange(1, len(layer) + 1)),
        "YSDM": YSDM["CZKFBJ"],
        "XZQDM": t_code,
        "XZQMC": t_name,
        "GHFQDM": [GHFQ_CODES[n] for n in layer["GHFQMC"]],
        "GHFQMC": layer["GHFQMC"].to_numpy(),
        "MJ": np.round(metric_area_m2(layer.geometry.values), 2),
    }, geometry=layer.geometry.values, crs=EPSG_GK_CM_114)
    return out, zone, town_of


def build_stbhhx(rng: np.random.Generator, dltb: gpd.GeoDataFrame, czkfbj: gpd.GeoDataFrame, county: Polygon,
                 terrain: Terrain) -> gpd.GeoDataFrame:
    """生态保护红线: river-corridor segments and hill blobs that overlap each other slightly.

    Villages, towns and mines are carved out (开天窗) and the features never enter the urban development boundary.
    """
    excluded = shapely.union_all(np.concatenate([
        dltb.geometry.values[dltb["DLBM"].isin(BUILT_UP_DLTB_CODES).to_numpy()], czkfbj.geometry.values]))
    corridor = terrain.river_line().buffer(500.0, quad_segs=4)
    n_segments = int(rng.integers(3, 6))
    edges = np.linspace(-1.1 * terrain.radius, 1.1 * terrain.radius, n_segments + 1)
    c, s = math.cos(terrain.river_angle), math.sin(terrain.river_angle)
    features: list[tuple[str, str, shapely.Geometry]] = []
    for i in range(n_segments):
        u0, u1 = edges[i] - 150.0, edges[i + 1] + 150.0  # consecutive segments overlap by 300 m
        band = Polygon([(terrain.cx + u * c - v * s, terrain.cy + u * s + v * c)
                        for u, v in ((u0, -3 * terrain.radius), (u1, -3 * terrain.radius),
                                     (u1, 3 * terrain.radius), (u0, 3 * terrain.radius))])
        features.append((f"清水河{'一二三四五六'[i]}段生物多样性维护生态保护红线", "生物多样性维护",
                         corridor.intersection(band)))
    order = np.argsort(-terrain.hill_heights)
    for rank, k in enumerate(order[: int(rng.integers(3, 6))]):
        blob = radial_blob(rng, tuple(terrain.hill_centres[k]), 1.3 * terrain.hill_sigmas[k])
        kind = "水源涵养" if rank % 2 == 0 else "水土保持"
        features.append((f"西北山地{kind}生态保护红线{rank + 1}号区", kind, blob))
    rows = []
    for name, kind, geom in features:
        clipped = drop_tiny_holes(geom.intersection(county).difference(excluded))
        parts, _ = polygon_parts(np.array([clipped], dtype=object))
        parts = parts[shapely.area(parts) >= 2000.0]
        if len(parts):
            rows.append((name, kind, shapely.MultiPolygon(list(parts)) if len(parts) > 1 else parts[0]))
    geoms = robust_polygons(snap_to_grid(np.array([g for _, _, g in rows], dtype=object)), (EPSG_GK_ZONE_PREFIXED,))
    return gpd.GeoDataFrame({
        "BSM": bsm(np.arange(1, len(rows) + 1)),
        "YSDM": YSDM["STBHHX"],
        "XJXZQDM": COUNTY_CODE,
        "HXMC": [n for n, _, _ in rows],
        "LHLX": [k for _, k, _ in rows],
        "MJ": np.round(metric_area_m2(geoms), 2),
    }, geometry=geoms, crs=EPSG_GK_CM_114)


def overlap_area_with(geoms: np.ndarray, layer: np.ndarray) -> np.ndarray:
    """Planar overlap area (m²) of each geometry with the union of ``layer`` (features may overlap)."""
    result = np.zeros(len(geoms))
    layer = np.asarray([tile for g in layer for tile in subdivide(g, 256)], dtype=object)
    g_idx, l_idx = STRtree(layer).query(geoms, predicate="intersects")
    if not len(g_idx):
        return result
    pieces = shapely.intersection(geoms[g_idx], layer[l_idx])
    for g, idx in pd.Series(np.arange(len(g_idx))).groupby(g_idx):
        result[g] = shapely.area(shapely.union_all(pieces[idx.to_numpy()])) if len(idx) > 1 else pieces[
            idx.iat[0]].area
    return result


def build_yjjbnt(rng: np.random.Generator, mode: Mode, dltb: gpd.GeoDataFrame, czk_zone: np.ndarray,
                 stbhhx: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """永久基本农田: ~70% of cultivated patches outside the urban boundary and the red line (same geometry).

    Returns the layer and the DLTB row index of every feature.
    """
    cultivated = np.flatnonzero(dltb["DLBM"].isin(CULTIVATED_CODES).to_numpy())
    in_red_line = overlap_area_with(dltb.geometry.values[cultivated], stbhhx.geometry.values) > 0.01
    eligible = cultivated[(czk_zone[cultivated] == "") & ~in_red_line]
    wanted = min(len(eligible), max(round(0.7 * len(cultivated)), mode.min_yjjbnt))
    rows = np.sort(rng.choice(eligible, size=wanted, replace=False))
    src = dltb.iloc[rows]
    grade = src["_grade"].to_numpy()
    base_quality = src["DLBM"].map({"0101": 6, "0102": 7, "0103": 9}).to_numpy()
    quality = np.clip(base_quality + grade - 1 + rng.integers(-1, 2, len(rows)), 1, 15)
    seq = pd.Series(src["ZLDWDM"].to_numpy()).groupby(src["ZLDWDM"].to_numpy()).cumcount().to_numpy() + 1
    geoms = src.geometry.values
    return gpd.GeoDataFrame({
        "BSM": bsm(np.arange(1, len(rows) + 1)),
        "YSDM": YSDM["YJJBNT"],
        "YJJBNTTBBH": [f"{z[:12]}{n:04d}" for z, n in zip(src["ZLDWDM"], seq, strict=True)],
        "TBBH": src["TBBH"].to_numpy(),
        "DLBM": src["DLBM"].to_numpy(),
        "DLMC": src["DLMC"].to_numpy(),
        "QSDWDM": src["QSDWDM"].to_numpy(),
        "QSDWMC": src["QSDWMC"].to_numpy(),
        "ZLDWDM": src["ZLDWDM"].to_numpy(),
        "ZLDWMC": src["ZLDWMC"].to_numpy(),
        "KCXS": src["KCXS"].to_numpy(),
        "YJJBNTTBMJ": src["TBMJ"].to_numpy(),  # same geometry as the survey patch, hence the same area
        "GDPDJB": grade.astype(np.int32),  # 耕地坡度级别 1–5
        "GDDB": quality.astype(np.int32),  # 耕地质量等别 1–15
    }, geometry=geoms, crs=EPSG_GK_CM_114), rows


# ---------------------------------------------------------------------------------------------------------------
# Township land-use plan with planted conflicts
# ---------------------------------------------------------------------------------------------------------------
def is_construction(code: str) -> bool:
    """用地用海 construction land (first level 07–16)."""
    return code[:2] in CONSTRUCTION_PREFIXES


def is_urban_construction(code: str) -> bool:
    """Construction that belongs inside the urban development boundary (this generator's working definition)."""
    return code.startswith(URBAN_CONSTRUCTION_PREFIXES)


@dataclass
class PlantedConflict:
    """A plan polygon given a construction use on purpose."""

    row: int
    code: str
    target: str  # the layer it was planted against


def plan_codes(rng: np.random.Generator, dltb: gpd.GeoDataFrame, czk_zone: np.ndarray) -> np.ndarray:
    """用地用海 codes: the survey code translated, farmland in 城镇集中建设区 turned into planned urban uses."""
    codes = dltb["DLBM"].map(DLTB_TO_YDYH).to_numpy().astype(object)
    convert = np.flatnonzero((czk_zone == "城镇集中建设区") & dltb["DLBM"].isin(
        ("0101", "0102", "0103", "0201", "0404", "0401", "1202", "1206")).to_numpy())
    codes[convert] = choose_codes(rng, len(convert), MIX_PLANNED_URBAN)
    return codes


def pick_planted_conflicts(rng: np.random.Generator, dltb: gpd.GeoDataFrame, yjjbnt_rows: np.ndarray,
                           czk_zone: np.ndarray, stbhhx: gpd.GeoDataFrame, czkfbj: gpd.GeoDataFrame,
                           land: Landscape, avoid: set[int]) -> list[PlantedConflict]:
    """Choose the plan polygons that receive conflicting construction uses."""
    geoms = dltb.geometry.values
    c = shapely.get_coordinates(shapely.centroid(geoms))
    area = shapely.area(geoms)
    twp = dltb["_twp"].to_numpy()
    usable = np.ones(len(dltb), dtype=bool)
    usable[list(avoid)] = False
    usable &= (czk_zone == "") & (area > 3000) & (dltb["DLBM"].str[:2] != "10").to_numpy()
    planted: list[PlantedConflict] = []

    # On permanent basic farmland, 1.5–4 km from a township centre, three different townships.
    centre_dist = np.full(len(dltb), np.inf)
    for t in land.townships[1:]:
        centre_dist = np.minimum(centre_dist, np.hypot(c[:, 0] - t.centre[0], c[:, 1] - t.centre[1]))
    on_farmland = np.zeros(len(dltb), dtype=bool)
    on_farmland[yjjbnt_rows] = True
    cand = np.flatnonzero(usable & on_farmland & (centre_dist > 1500) & (centre_dist < 4000))
    used_twp: set[int] = set()
    for row in rng.permutation(cand):
        if twp[row] not in used_twp:
            used_twp.add(int(twp[row]))
            planted.append(PlantedConflict(int(row), ("1001", "0703", "1202")[len(used_twp) - 1], "YJJBNT"))
        if len(used_twp) == 3:
            break

    # Inside the ecological red line: non-construction patches lying (almost) entirely inside it.
    natural = usable & ~on_farmland & dltb["DLBM"].isin(PLANTABLE_DLTB_CODES).to_numpy()
    near = np.flatnonzero(natural)
    inside_share = overlap_area_with(geoms[near], stbhhx.geometry.values) / area[near]
    cand = near[inside_share > 0.98]
    for row, code in zip(np.sort(rng.choice(cand, 3, replace=False)), ("0703", "1001", "1205"), strict=True):
        planted.append(PlantedConflict(int(row), code, "STBHHX"))

    # Urban uses just outside the urban development boundary, on land that is neither farmland nor red line.
    shared = set(row for p in planted for row in [p.row])
    boundary = shapely.union_all(czkfbj.geometry.values[czkfbj["GHFQMC"].to_numpy() == "城镇集中建设区"])
    touching = np.flatnonzero(natural & shapely.intersects(geoms, boundary))
    touching = touching[overlap_area_with(geoms[touching], stbhhx.geometry.values) == 0.0]
    touching = np.array([r for r in touching if r not in shared])
    for row, code in zip(np.sort(rng.choice(touching, 2, replace=False)), ("0701", "0901"), strict=True):
        planted.append(PlantedConflict(int(row), code, "CZKFBJ"))
    return planted


def build_ydyhghfq(rng: np.random.Generator, dltb: gpd.GeoDataFrame, valid_geoms: np.ndarray, czk_zone: np.ndarray,
                   planted: list[PlantedConflict], land: Landscape) -> gpd.GeoDataFrame:
    """规划用地用海 of the township plans, one polygon per survey patch (valid geometry)."""
    codes = plan_codes(rng, dltb, czk_zone)
    for p in planted:
        codes[p.row] = p.code
    twp = dltb["_twp"].to_numpy()
    seq = pd.Series(twp).groupby(twp).cumcount().to_numpy() + 1
    t_code = np.array([t.code for t in land.townships], dtype=object)[twp]
    return gpd.GeoDataFrame({
        "BSM": bsm(np.arange(1, len(dltb) + 1)),
        "DKBH": [f"{c}{n:06d}" for c, n in zip(t_code, seq, strict=True)],
        "YDYHFLDM": codes.astype(str),
        "YDYHFLMC": [YDYH_NAMES[k] for k in codes],
        "XZQDM": t_code,
        "XZQMC": np.array([t.name for t in land.townships], dtype=object)[twp],
        "MJ": dltb["TBMJ"].to_numpy(),  # the same (valid) geometry as the survey patch
    }, geometry=valid_geoms, crs=EPSG_GK_CM_114)


def describe_conflicts(plan: gpd.GeoDataFrame, planted: list[PlantedConflict], yjjbnt: gpd.GeoDataFrame,
                       stbhhx: gpd.GeoDataFrame, czkfbj: gpd.GeoDataFrame) -> list[dict]:
    """Every conflict of each planted polygon with the three lines, with the ellipsoidal area concerned."""
    out = []
    udb = shapely.union_all(czkfbj.geometry.values)
    for p in planted:
        geom = plan.geometry.values[p.row]
        code = plan["YDYHFLDM"].iat[p.row]
        found: list[tuple[str, str, shapely.Geometry]] = []
        for layer_code, layer in (("YJJBNT", yjjbnt), ("STBHHX", stbhhx)):
            hits = layer.geometry.values[STRtree(layer.geometry.values).query(geom, predicate="intersects")]
            if len(hits):
                found.append((layer_code, "overlaps", shapely.union_all(shapely.intersection(geom, hits))))
        if is_urban_construction(code):
            found.append(("CZKFBJ", "outside", geom.difference(udb)))
        for layer_code, relation, piece in found:
            area = float(metric_area_m2(np.array([piece], dtype=object))[0]) if not piece.is_empty else 0.0
            if area >= CONFLICT_MIN_M2:
                out.append({"dkbh": plan["DKBH"].iat[p.row], "layer": layer_code, "relation": relation,
                            "ydyhfldm": code, "ydyhflmc": plan["YDYHFLMC"].iat[p.row], "area_m2": round(area, 2),
                            "planted_against": p.target})
    return out


# ---------------------------------------------------------------------------------------------------------------
# Coarse zoning, geological hazards
# ---------------------------------------------------------------------------------------------------------------
def split_by_township(geoms: Sequence[shapely.Geometry], labels: Sequence[T], townships: list[Township],
                      min_area: float = 1.0) -> list[tuple[T, int, Polygon]]:
    """Intersect labelled geometries with the townships and explode them into single polygons."""
    out: list[tuple[T, int, Polygon]] = []
    for label, geom in zip(labels, geoms, strict=True):
        for t in townships:
            parts, _ = polygon_parts(np.array([geom.intersection(t.geometry)], dtype=object))
            out.extend((label, t.index, p) for p in parts if p.area >= min_area)
    repaired, owner = polygon_parts(robust_polygons(np.array([p for _, _, p in out], dtype=object)))
    return [(out[i][0], out[i][1], g) for g, i in zip(repaired, owner, strict=True)]


def build_ghfq(rng: np.random.Generator, mode: Mode, county: Polygon, dltb: gpd.GeoDataFrame,
               yjjbnt_rows: np.ndarray, stbhhx: gpd.GeoDataFrame, czkfbj: gpd.GeoDataFrame,
               land: Landscape) -> gpd.GeoDataFrame:
    """规划分区: red line → 生态保护区, urban boundary → 城镇发展区, the rest by coarse cells."""
    eco = shapely.union_all(stbhhx.geometry.values)
    urban = shapely.union_all(czkfbj.geometry.values)
    seeds = jittered_grid(rng, county.bounds, mode.ghfq_spacing_m)
    seeds = seeds[shapely.contains_xy(county.buffer(mode.ghfq_spacing_m), seeds[:, 0], seeds[:, 1])]
    cells = shapely.intersection(voronoi_cells(seeds, county), county)
    centroids = shapely.centroid(dltb.geometry.values)
    cell_of = STRtree(shapely.points(seeds)).query_nearest(centroids, return_distance=False)[1]
    area = dltb["TBMJ"].to_numpy()
    farmland = np.zeros(len(dltb))
    farmland[yjjbnt_rows] = area[yjjbnt_rows]
    xy = shapely.get_coordinates(centroids)
    natural = dltb["DLBM"].isin(("0301", "0305", "0404", "0201", "1206")).to_numpy() & (
        land.terrain.elevation(xy[:, 0], xy[:, 1]) > land.terrain.hill_threshold - 20)
    total = np.bincount(cell_of, area, len(seeds))
    farm_share = np.bincount(cell_of, farmland, len(seeds)) / np.maximum(total, 1)
    natural_share = np.bincount(cell_of, np.where(natural, area, 0), len(seeds)) / np.maximum(total, 1)
    cell_class = np.where(natural_share >= 0.5, "生态控制区", np.where(farm_share >= 0.45, "农田保护区", "乡村发展区"))
    taken = shapely.union(eco, urban)
    names, geoms = ["生态保护区", "城镇发展区"], [eco, urban]
    for name in ("生态控制区", "农田保护区", "乡村发展区"):
        members = cells[cell_class == name]
        if len(members):
            names.append(name)
            geoms.append(shapely.union_all(members).difference(taken))
    rows = split_by_township(geoms, names, land.townships)
    polys = np.array([p for _, _, p in rows], dtype=object)
    return gpd.GeoDataFrame({
        "BSM": bsm(np.arange(1, len(rows) + 1)),
        "GHFQDM": [GHFQ_CODES[n] for n, _, _ in rows],
        "GHFQMC": [n for n, _, _ in rows],
        "XZQDM": [land.townships[t].code for _, t, _ in rows],
        "XZQMC": [land.townships[t].name for _, t, _ in rows],
        "MJ": np.round(metric_area_m2(polys), 2),
    }, geometry=polys, crs=EPSG_GK_CM_114)


def susceptibility_grid(rng: np.random.Generator, mode: Mode, county: Polygon, terrain: Terrain
                        ) -> tuple[np.ndarray, Affine]:
    """地质灾害易发程度 0–3 on a coarse metric grid, from slope, relief and a smooth random field."""
    xmin, ymin, xmax, ymax = county.bounds
    cell = mode.hazard_cell_m
    width, height = math.ceil((xmax - xmin) / cell), math.ceil((ymax - ymin) / cell)
    transform = Affine(cell, 0.0, xmin, 0.0, -cell, ymax)
    cols, rows = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    x, y = xmin + cols * cell, ymax - rows * cell
    relief = (terrain.elevation(x, y) - terrain.hill_threshold) / 250.0
    noise = np.zeros_like(x)
    for _ in range(4):
        k = 2 * np.pi / rng.uniform(2000, 6000)
        a = rng.uniform(0, np.pi)
        noise += 0.12 * np.sin(k * (x * math.cos(a) + y * math.sin(a)) + rng.uniform(0, 2 * np.pi))
    score = terrain.slope_deg(x, y) / 18.0 + relief + noise
    classes = np.digitize(score, (0.45, 0.85, 1.3)).astype(np.int32)
    return classes, transform


def build_dzzhyfq(rng: np.random.Generator, mode: Mode, county: Polygon, land: Landscape
                  ) -> tuple[gpd.GeoDataFrame, np.ndarray, Affine]:
    """地质灾害易发区 polygons (staircase edges of the classification grid, like raster-derived zoning)."""
    classes, transform = susceptibility_grid(rng, mode, county, land.terrain)
    by_class: dict[int, list[Polygon]] = {}
    for geom, value in shapes(classes, mask=classes > 0, transform=transform, connectivity=4):
        by_class.setdefault(int(value), []).append(shapely.geometry.shape(geom))
    labels = sorted(by_class, reverse=True)
    rows = split_by_township([shapely.union_all(by_class[k]) for k in labels], labels, land.townships,
                             min_area=0.05e6)
    polys = np.array([p for _, _, p in rows], dtype=object)
    layer = gpd.GeoDataFrame({
        "BSM": bsm(np.arange(1, len(rows) + 1)),
        "YFCD": [SUSCEPTIBILITY[k] for k, _, _ in rows],
        "ZHLX": [SUSCEPTIBILITY_HAZARDS[k] for k, _, _ in rows],
        "XZQDM": [land.townships[t].code for _, t, _ in rows],
        "XZQMC": [land.townships[t].name for _, t, _ in rows],
        "MJ": np.round(metric_area_m2(polys), 2),
    }, geometry=polys, crs=EPSG_GK_CM_114)
    return layer, classes, transform


def build_dzzhd(rng: np.random.Generator, county: Polygon, classes: np.ndarray, transform: Affine,
                dltb: gpd.GeoDataFrame, land: Landscape) -> gpd.GeoDataFrame:
    """地质灾害隐患点: mostly in high/medium susceptibility cells, a few 地面塌陷 near mines."""
    n_total = int(rng.integers(30, 61))
    mines = dltb.geometry.values[(dltb["DLBM"] == "0602").to_numpy()]
    n_subsidence = min(len(mines), int(rng.integers(3, 6)))
    weights = np.select([classes == 3, classes == 2, classes == 1], [6.0, 3.0, 1.0], 0.0).ravel()
    points: list[tuple[float, float, str]] = []
    shapely.prepare(county)
    while len(points) < n_total - n_subsidence:
        flat = int(rng.choice(len(weights), p=weights / weights.sum()))
        row, col = divmod(flat, classes.shape[1])
        x = transform.c + (col + rng.random()) * transform.a
        y = transform.f + (row + rng.random()) * transform.e
        if not county.contains(Point(x, y)):
            continue
        mix = {3: (("滑坡", .5), ("崩塌", .35), ("泥石流", .15)), 2: (("滑坡", .45), ("崩塌", .4), ("泥石流", .15)),
               1: (("崩塌", .5), ("滑坡", .5))}[int(classes[row, col])]
        points.append((x, y, str(choose_codes(rng, 1, mix)[0])))
    for mine in mines[np.sort(rng.choice(len(mines), n_subsidence, replace=False))] if n_subsidence else []:
        p = shapely.point_on_surface(mine)
        points.append((p.x, p.y, "地面塌陷"))
    xy = np.array([(x, y) for x, y, _ in points])
    geoms = shapely.points(xy)
    twp = np.array([next(t.index for t in land.townships if t.geometry.intersects(g)) for g in geoms])
    vil = assign_villages(geoms, twp, land.villages)
    kinds = [k for _, _, k in points]
    people = rng.integers(0, 300, len(points))
    return gpd.GeoDataFrame({
        "YHDBH": [f"{COUNTY_CODE}{HAZARD_TYPE_CODES[k]}{i + 1:04d}" for i, k in enumerate(kinds)],
        "YHDMC": [f"{land.townships[t].name}{land.villages[v].name}{k}" for t, v, k in zip(twp, vil, kinds,
                                                                                       strict=True)],
        "ZHLX": kinds,
        "WXRS": people.astype(np.int32),
        "WXCC": np.round(people * rng.uniform(1.5, 6.0, len(points)) + rng.uniform(5, 50, len(points)), 1),
        "XZQDM": [land.townships[t].code for t in twp],
    }, geometry=geoms, crs=EPSG_GK_CM_114)


# ---------------------------------------------------------------------------------------------------------------
# Sample parcels (建设项目用地红线) for checks
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class Parcel:
    """A project parcel in EPSG:4547 with the numbers a checker should find."""

    dkbh: str
    name: str
    use_name: str
    use_code: str
    purpose: str
    geometry: Polygon


def rotated_rectangle(centre: Sequence[float], length: float, width: float, angle_deg: float) -> Polygon:
    """A rectangle centred at ``centre`` rotated by ``angle_deg``."""
    a = math.radians(angle_deg)
    ux, uy = math.cos(a), math.sin(a)
    corners = [(-length / 2, -width / 2), (length / 2, -width / 2), (length / 2, width / 2), (-length / 2, width / 2)]
    return Polygon([(centre[0] + p * ux - q * uy, centre[1] + p * uy + q * ux) for p, q in corners])


def round_mm(geom: Polygon) -> Polygon:
    """Coordinates rounded to the millimetre, as written in the coordinate files."""
    return shapely.transform(geom, lambda c: np.round(c, 3))


def make_parcels(rng: np.random.Generator, county: Polygon, dltb: gpd.GeoDataFrame, yjjbnt: gpd.GeoDataFrame,
                 stbhhx: gpd.GeoDataFrame, czkfbj: gpd.GeoDataFrame, terrain: Terrain, land: Landscape
                 ) -> list[Parcel]:
    """Five parcels: on farmland (with a hole), on the red line, clean, across the urban boundary, a road."""
    eco = shapely.union_all(stbhhx.geometry.values)
    udb = shapely.union_all(czkfbj.geometry.values)
    year = "2024"
    inner = county.buffer(-2500.0)
    for g in (eco, udb, inner):
        shapely.prepare(g)
    parcels: list[Parcel] = []

    sample = np.sort(rng.choice(len(yjjbnt), min(len(yjjbnt), 400), replace=False))
    far = shapely.centroid(yjjbnt.geometry.to_numpy()[sample])
    far = far[shapely.contains(inner, far)]
    far = far[~shapely.dwithin(udb, far, 1500.0) & ~shapely.dwithin(eco, far, 800.0)]
    centre = shapely.get_coordinates(far[int(rng.integers(len(far)))])[0]
    angle = rng.uniform(0, 90)
    outer = rotated_rectangle(centre, 320, 220, angle)
    hole = rotated_rectangle(centre + np.array([40.0, 20.0]), 60, 40, angle)
    parcels.append(Parcel(f"{COUNTY_CODE}-{year}-001", "示范县农产品加工园项目", "工业用地", "1001",
                          "overlaps permanent basic farmland (YJJBNT); has a hole (圈号 2)",
                          round_mm(Polygon(outer.exterior.coords, [hole.exterior.coords]))))

    hill_edge = shapely.intersection(shapely.boundary(eco), inner)
    hill_points = shapely.get_coordinates(hill_edge)
    hill_points = hill_points[terrain.elevation(hill_points[:, 0], hill_points[:, 1]) > terrain.hill_threshold]
    p = hill_points[int(rng.integers(len(hill_points)))]
    parcels.append(Parcel(f"{COUNTY_CODE}-{year}-002", "西山康养旅游项目", "商业用地", "0901",
                          "partly inside the ecological protection red line (STBHHX)",
                          round_mm(radial_blob(rng, tuple(p), 160.0, n=7))))

    seat_core = shapely.union_all(czkfbj.geometry.values[(czkfbj["GHFQMC"] == "城镇集中建设区").to_numpy()
                                                         & (czkfbj["XZQDM"] == land.townships[0].code).to_numpy()])
    safe = seat_core.buffer(-250.0).difference(eco.buffer(300.0))
    spot = shapely.get_coordinates(safe.representative_point())[0]
    parcels.append(Parcel(f"{COUNTY_CODE}-{year}-003", "城关镇保障性住房项目", "城镇住宅用地", "0701",
                          "clean: inside the urban development boundary, no farmland, no red line",
                          round_mm(rotated_rectangle(spot, 150, 100, rng.uniform(0, 90)))))

    edge = shapely.get_coordinates(shapely.boundary(seat_core).difference(eco.buffer(400.0)))
    q = edge[int(rng.integers(len(edge)))]
    parcels.append(Parcel(f"{COUNTY_CODE}-{year}-004", "城关镇商贸物流项目", "物流仓储用地", "1101",
                          "straddles the urban development boundary (CZKFBJ): part of it lies outside",
                          round_mm(rotated_rectangle(q, 220, 160, rng.uniform(0, 90)))))

    u = rng.permutation(np.linspace(-0.7, 0.7, 57) * terrain.radius)
    v = terrain.river_v(u)
    c, s = math.cos(terrain.river_angle), math.sin(terrain.river_angle)
    on_river = np.column_stack([terrain.cx + u * c - v * s, terrain.cy + u * s + v * c])
    ok = shapely.contains_xy(shapely.intersection(eco, county.buffer(-3000.0)), on_river[:, 0], on_river[:, 1])
    crossing = on_river[np.flatnonzero(ok)[0]]
    parcels.append(Parcel(f"{COUNTY_CODE}-{year}-005", "清水河大桥及连接线工程", "公路用地", "1202",
                          "linear road crossing the river red line (STBHHX): conditional, needs justification",
                          round_mm(rotated_rectangle(crossing, 1400, 26, math.degrees(terrain.river_angle) + 90))))
    return parcels


def parcel_expectations(parcel: Parcel, yjjbnt: gpd.GeoDataFrame, stbhhx: gpd.GeoDataFrame,
                        czkfbj: gpd.GeoDataFrame) -> dict[str, float]:
    """Ellipsoidal areas a checker should report for the parcel."""
    g = parcel.geometry

    def overlap(layer: gpd.GeoDataFrame) -> shapely.Geometry:
        hits = layer.geometry.values[STRtree(layer.geometry.values).query(g, predicate="intersects")]
        return shapely.union_all(shapely.intersection(g, hits)) if len(hits) else Polygon()

    udb_inside = overlap(czkfbj)
    pieces = np.array([g, overlap(yjjbnt), overlap(stbhhx), udb_inside, g.difference(udb_inside)], dtype=object)
    areas = [round(float(a), 2) for a in metric_area_m2(pieces)]
    return {"area_m2": areas[0], "YJJBNT_overlap_m2": areas[1], "STBHHX_overlap_m2": areas[2],
            "CZKFBJ_inside_m2": areas[3], "CZKFBJ_outside_m2": areas[4]}


def sheet_number_10k(lon: float, lat: float) -> str:
    """1:10,000 map sheet number (图幅号, GB/T 13989) of a point, such as I50G029013."""
    row_1m = int(lat // 4) + 1
    col_1m = int(lon // 6) + 31
    row = 96 - int((lat % 4) * 24)
    col = int((lon % 6) * 16) + 1
    return f"{chr(ord('A') + row_1m - 1)}{col_1m:02d}G{row:03d}{col:03d}"


def txt_parcel_block(parcel: Parcel) -> tuple[list[str], int, int]:
    """Lines of one parcel in the 界址点坐标 format; returns (lines, number of rings, number of points)."""
    rings = [orient_ring_for_survey(np.asarray(parcel.geometry.exterior.coords))]
    rings += [orient_ring_for_survey(np.asarray(r.coords))[::-1] for r in parcel.geometry.interiors]
    point_lines: list[str] = []
    number = 1
    for ring_no, ring in enumerate(rings, start=1):
        first = number
        for x, y in ring:
            point_lines.append(f"J{number},{ring_no},{y:.3f},{x + ZONE_PREFIX_M:.3f}")
            number += 1
        x0, y0 = ring[0]
        point_lines.append(f"J{first},{ring_no},{y0:.3f},{x0 + ZONE_PREFIX_M:.3f}")
    lon, lat = shapely.get_coordinates(metric_to_lonlat(parcel.geometry.centroid))[0]
    area_ha = parcel.geometry.area / 10_000  # surveyors' files state the planar Gauss-Krüger area
    header = (f"{len(point_lines)},{area_ha:.4f},{parcel.dkbh},{parcel.name},面,{sheet_number_10k(lon, lat)},"
              f"{parcel.use_name},{parcel.use_code},@")
    return [header, *point_lines], len(rings), len(point_lines)


def write_txt_parcels(path: Path, parcels: list[Parcel], encoding: str) -> list[dict]:
    """A 界址点坐标 TXT file (CRLF line ends) holding one or more parcels."""
    lines = ["[属性描述]", "格式版本号=1.01版本", f"数据产生单位={COUNTY_NAME}自然资源局", f"数据产生日期={FIXED_DATE}",
             "坐标系=2000国家大地坐标系", "几度分带=3", "投影类型=高斯克吕格", "计量单位=米", f"带号={GK_ZONE}",
             "精度=0.001", "转换参数=,,,,,,", "[地块坐标]"]
    info = []
    for parcel in parcels:
        block, n_rings, n_points = txt_parcel_block(parcel)
        lines.extend(block)
        info.append({"dkbh": parcel.dkbh, "rings": n_rings, "points": n_points,
                     "declared_area_ha": round(parcel.geometry.area / 10_000, 4)})
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return info


def write_geojson_parcel(path: Path, parcel: Parcel) -> None:
    """An RFC 7946 GeoJSON (lon/lat, no crs member) as a web tool would export it."""
    geometry = json.loads(shapely.to_geojson(metric_to_lonlat(parcel.geometry)))
    feature = {"type": "Feature", "properties": {"DKBH": parcel.dkbh, "DKMC": parcel.name, "YTMC": parcel.use_name,
                                                 "DLBM": parcel.use_code}, "geometry": geometry}
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}, ensure_ascii=False, indent=1),
                    encoding="utf-8")


def write_dxf_parcel(path: Path, parcel: Parcel) -> None:
    """A CAD drawing: a closed LWPOLYLINE in Gauss-Krüger CM 114°E metres without the zone prefix."""
    doc = ezdxf.new("R2010")
    doc.header["$INSUNITS"] = 6  # metres
    doc.layers.add("用地红线", color=1)
    msp = doc.modelspace()
    ring = np.asarray(parcel.geometry.exterior.coords)[:-1]
    msp.add_lwpolyline([(float(x), float(y)) for x, y in ring], close=True, dxfattribs={"layer": "用地红线"})
    cx, cy = parcel.geometry.centroid.coords[0]
    msp.add_text(parcel.name, height=8.0, dxfattribs={"layer": "用地红线"}).set_placement((cx, cy))
    doc.saveas(path)


# ---------------------------------------------------------------------------------------------------------------
# DEM
# ---------------------------------------------------------------------------------------------------------------
def write_dem(path: Path, mode: Mode, county_lonlat: Polygon, terrain: Terrain) -> dict:
    """GeoTIFF DEM in EPSG:4490, float32 metres (0.1 m steps), nodata outside the county."""
    cell = mode.dem_cell_deg
    xmin, ymin, xmax, ymax = county_lonlat.bounds
    west, north = math.floor(xmin / cell) * cell - 4 * cell, math.ceil(ymax / cell) * cell + 4 * cell
    width = math.ceil((xmax + 4 * cell - west) / cell)
    height = math.ceil((north - ymin + 4 * cell) / cell)
    transform = Affine(cell, 0.0, west, 0.0, -cell, north)
    cols, rows = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    lon, lat = west + cols * cell, north - rows * cell
    x, y = _LONLAT_TO_METRIC.transform(lon.ravel(), lat.ravel())
    dem = np.round(terrain.elevation(np.asarray(x), np.asarray(y)).reshape(height, width), 1).astype(np.float32)
    outside = geometry_mask([shapely.geometry.mapping(county_lonlat)], (height, width), transform)
    nodata = -9999.0
    dem[outside] = nodata
    profile = {"driver": "GTiff", "width": width, "height": height, "count": 1, "dtype": "float32",
               "crs": f"EPSG:{EPSG_GEOGRAPHIC}", "transform": transform, "nodata": nodata, "compress": "deflate",
               "predictor": 3, "tiled": True, "blockxsize": 256, "blockysize": 256}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(dem, 1)
        dst.update_tags(AREA_OR_POINT="Area", UNITS="metre", VERTICAL_DATUM="1985国家高程基准")
    valid = dem[~outside]
    return {"file": path.name, "crs": f"EPSG:{EPSG_GEOGRAPHIC}", "cell_deg": cell, "width": width, "height": height,
            "nodata": nodata, "min_m": float(valid.min()), "max_m": float(valid.max())}


# ---------------------------------------------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------------------------------------------
def ensure_valid(layer: gpd.GeoDataFrame, code: str, crs_name: str, expected_invalid: set[int]) -> None:
    """Refuse to write a layer with invalid geometries other than the ones made invalid on purpose."""
    invalid = ~shapely.is_valid(layer.geometry.to_numpy())
    bsm_values = set(layer["BSM"][invalid]) if "BSM" in layer.columns else set(np.flatnonzero(invalid))
    if bsm_values != expected_invalid:
        raise RuntimeError(f"{code}: unexpected invalid geometries in {crs_name}: {sorted(bsm_values)[:10]}")


def in_file_crs(layer: gpd.GeoDataFrame, epsg: int) -> gpd.GeoDataFrame:
    """A layer in the coordinate system of its file (layers are built in EPSG:4547, XZQ in EPSG:4490)."""
    if layer.crs.to_epsg() == epsg:
        return layer
    if epsg == EPSG_GEOGRAPHIC:
        return as_lonlat(layer)
    if epsg == EPSG_GK_ZONE_PREFIXED:
        return as_zone_prefixed(layer)
    raise ValueError(f"no conversion from {layer.crs} to EPSG:{epsg}")


def as_lonlat(layer: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Copy of a metric layer in EPSG:4490."""
    return gpd.GeoDataFrame(layer.drop(columns=layer.geometry.name), crs=EPSG_GEOGRAPHIC,
                            geometry=metric_to_lonlat(layer.geometry.values))


def as_zone_prefixed(layer: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Copy of a metric layer in EPSG:4526 (eastings with the zone prefix)."""
    return gpd.GeoDataFrame(layer.drop(columns=layer.geometry.name), crs=EPSG_GK_ZONE_PREFIXED,
                            geometry=metric_to_zone_prefixed(layer.geometry.values))


def public_columns(layer: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Drop the generator's helper columns (names starting with '_')."""
    return layer.drop(columns=[c for c in layer.columns if c.startswith("_")])


def write_gpkg(layer: gpd.GeoDataFrame, path: Path, name: str) -> None:
    """GeoPackage with one layer named after the layer code."""
    pyogrio.write_dataframe(public_columns(layer), path, layer=name, driver="GPKG")


def write_geojson(layer: gpd.GeoDataFrame, path: Path, name: str) -> None:
    """GeoJSON in EPSG:4490 (lon, lat) with a crs member naming EPSG:4490."""
    pyogrio.write_dataframe(public_columns(layer), path, layer=name, driver="GeoJSON")


def write_gbk_shapefile(layer: gpd.GeoDataFrame, path: Path) -> None:
    """Shapefile whose DBF text is GBK, declared by a .cpg file, like ArcGIS output on Chinese Windows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pyogrio.write_dataframe(public_columns(layer), path, driver="ESRI Shapefile", encoding="GBK",
                            layer_options={"DBF_DATE_LAST_UPDATE": FIXED_DATE})
    path.with_suffix(".cpg").write_text("GBK", encoding="ascii")


def write_zipped_shapefile(layer: gpd.GeoDataFrame, path: Path, stem: str) -> list[str]:
    """A zipped UTF-8 shapefile (stem.shp/.shx/.dbf/.prj/.cpg) with fixed member timestamps."""
    with tempfile.TemporaryDirectory() as tmp:
        shp = Path(tmp) / f"{stem}.shp"
        pyogrio.write_dataframe(public_columns(layer), shp, driver="ESRI Shapefile", encoding="UTF-8",
                                layer_options={"DBF_DATE_LAST_UPDATE": FIXED_DATE})
        shp.with_suffix(".cpg").write_text("UTF-8", encoding="ascii")
        members = sorted(p.name for p in Path(tmp).iterdir())
        with zipfile.ZipFile(path, "w") as zf:
            for name in members:
                info = zipfile.ZipInfo(name, date_time=FIXED_ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, (Path(tmp) / name).read_bytes())
    return members


# ---------------------------------------------------------------------------------------------------------------
# Orchestration
# ---------------------------------------------------------------------------------------------------------------
def build_xzq(townships: list[Township]) -> gpd.GeoDataFrame:
    """乡镇行政区 in EPSG:4490: the canonical (rounded) township polygons."""
    geoms = np.array([t.lonlat for t in townships], dtype=object)
    return gpd.GeoDataFrame({
        "BSM": bsm(np.arange(1, len(townships) + 1)),
        "XZQDM": [t.code for t in townships],
        "XZQMC": [t.name for t in townships],
        "MJ": np.round(ellipsoidal_area_m2(geoms), 2),
    }, geometry=geoms, crs=EPSG_GEOGRAPHIC)


def generate(out_dir: Path, seed: int = 42, scale: bool = False) -> Path:
    """Generate the demo county into ``out_dir`` and return the path of ``manifest.json``."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("yjjbnt", "parcels"):
        shutil.rmtree(out_dir / stale, ignore_errors=True)
    mode = SCALE_MODE if scale else NORMAL_MODE
    rng = np.random.default_rng(seed)
    previous_date = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": FIXED_TIMESTAMP})
    try:
        manifest = _generate(out_dir, rng, mode, seed)
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": previous_date})
    path = out_dir / "manifest.json"
    path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"demo county ({mode.name}, seed {seed}) written to {out_dir} in {time.perf_counter() - started:.1f} s")
    return path


def _generate(out_dir: Path, rng: np.random.Generator, mode: Mode, seed: int) -> dict:
    cx, cy = _LONLAT_TO_METRIC.transform(*CENTRE_LONLAT)
    radius = math.sqrt(mode.county_area_m2 / math.pi)
    outline = make_county_outline(rng, cx, cy, mode.county_area_m2)
    townships = make_townships(rng, outline, radius)
    county = shapely.union_all([t.geometry for t in townships])
    terrain = make_terrain(rng, cx, cy, radius)
    villages = make_villages(rng, mode, townships, terrain)
    land = Landscape(terrain, townships, villages, mode.village_radius_m)
    network = make_linear_network(rng, terrain, townships, villages)

    dltb = build_dltb(rng, mode, county, land, network)
    czkfbj, czk_zone, _ = build_czkfbj(dltb, land)
    stbhhx = build_stbhhx(rng, dltb, czkfbj, county, terrain)
    yjjbnt, yjjbnt_rows = build_yjjbnt(rng, mode, dltb, czk_zone, stbhhx)
    valid_geoms = dltb.geometry.to_numpy().copy()
    defects = corrupt_patches(rng, dltb, county)
    defect_rows = set(np.flatnonzero(dltb["BSM"].isin(list(defects)).to_numpy()).tolist())
    planted = pick_planted_conflicts(rng, dltb, yjjbnt_rows, czk_zone, stbhhx, czkfbj, land, defect_rows)
    plan = build_ydyhghfq(rng, dltb, valid_geoms, czk_zone, planted, land)
    conflicts = describe_conflicts(plan, planted, yjjbnt, stbhhx, czkfbj)
    ghfq = build_ghfq(rng, mode, county, dltb.assign(geometry=valid_geoms), yjjbnt_rows, stbhhx, czkfbj, land)
    dzzhyfq, classes, grid_transform = build_dzzhyfq(rng, mode, county, land)
    dzzhd = build_dzzhd(rng, county, classes, grid_transform, dltb, land)
    xzq = build_xzq(townships)
    parcels = make_parcels(rng, county, dltb, yjjbnt, stbhhx, czkfbj, terrain, land)

    county_lonlat = shapely.union_all([t.lonlat for t in townships])
    write_geojson(gpd.GeoDataFrame({"XZQDM": [COUNTY_CODE], "XZQMC": [COUNTY_NAME]}, geometry=[county_lonlat],
                                   crs=EPSG_GEOGRAPHIC), out_dir / "county.geojson", "county")
    layer_specs: list[tuple[str, str, str, gpd.GeoDataFrame, Callable[[gpd.GeoDataFrame, Path], object], int,
                            str]] = [
        ("XZQ", "乡镇行政区", "xzq.geojson", xzq, lambda g, p: write_geojson(g, p, "XZQ"), EPSG_GEOGRAPHIC, "UTF-8"),
        ("DLTB", "三调地类图斑", "dltb.gpkg", dltb, lambda g, p: write_gpkg(g, p, "DLTB"), EPSG_GK_ZONE_PREFIXED,
         "UTF-8"),
        ("YJJBNT", "永久基本农田", "yjjbnt/yjjbnt.shp", yjjbnt, write_gbk_shapefile, EPSG_GK_CM_114, "GBK"),
        ("STBHHX", "生态保护红线", "stbhhx.zip", stbhhx, lambda g, p: write_zipped_shapefile(g, p, "stbhhx"),
         EPSG_GK_ZONE_PREFIXED, "UTF-8"),
        ("CZKFBJ", "城镇开发边界", "czkfbj.geojson", czkfbj, lambda g, p: write_geojson(g, p, "CZKFBJ"),
         EPSG_GEOGRAPHIC, "UTF-8"),
        ("GHFQ", "规划分区", "ghfq.gpkg", ghfq, lambda g, p: write_gpkg(g, p, "GHFQ"), EPSG_GEOGRAPHIC, "UTF-8"),
        ("YDYHGHFQ", "规划用地用海", "ydyhghfq.gpkg", plan, lambda g, p: write_gpkg(g, p, "YDYHGHFQ"), EPSG_GK_CM_114,
         "UTF-8"),
        ("DZZHYFQ", "地质灾害易发区", "dzzhyfq.geojson", dzzhyfq, lambda g, p: write_geojson(g, p, "DZZHYFQ"),
         EPSG_GEOGRAPHIC, "UTF-8"),
        ("DZZHD", "地质灾害隐患点", "dzzhd.geojson", dzzhd, lambda g, p: write_geojson(g, p, "DZZHD"),
         EPSG_GEOGRAPHIC, "UTF-8"),
    ]
    layers = []
    for code, name, file, layer, writer, epsg, encoding in layer_specs:
        converted = in_file_crs(layer, epsg)
        ensure_valid(converted, code, f"EPSG:{epsg}", set(defects) if code == "DLTB" else set())
        target = out_dir / file
        target.unlink(missing_ok=True)
        writer(converted, target)
        entry = {"code": code, "name": name, "file": file, "features": len(layer), "crs": f"EPSG:{epsg}",
                 "encoding": encoding}
        if code == "STBHHX":
            entry["area_sum_m2"] = round(float(layer["MJ"].sum()), 2)
            entry["area_union_m2"] = round(float(metric_area_m2(np.array([shapely.union_all(
                layer.geometry.values)], dtype=object))[0]), 2)
        layers.append(entry)

    parcel_dir = out_dir / "parcels"
    parcel_dir.mkdir()
    parcel_entries = write_parcel_files(parcel_dir, parcels, yjjbnt, stbhhx, czkfbj)
    dem = write_dem(out_dir / "dem.tif", mode, county_lonlat, terrain)
    county_area = float(ellipsoidal_area_m2(np.array([county_lonlat], dtype=object))[0])
    return {
        "seed": seed,
        "scale": mode.name == "scale",
        "generator": "data/generate_demo_county.py",
        "county": {"name": COUNTY_NAME, "code": COUNTY_CODE, "file": "county.geojson",
                   "bbox": [round(v, 8) for v in county_lonlat.bounds], "area_m2": round(county_area, 2),
                   "townships": len(townships), "villages": len(villages)},
        "crs": {"storage": f"EPSG:{EPSG_GEOGRAPHIC}", "gk_zone": GK_ZONE, "gk_zone_prefixed": "EPSG:4526",
                "gk_central_meridian": "EPSG:4547"},
        "area_basis": "ellipsoidal (pyproj Geod GRS80), m², 2 decimals",
        "layers": layers,
        "dem": "dem.tif",
        "dem_info": dem,
        "parcels": parcel_entries,
        "deliberate_conflicts": conflicts,
        "conflict_rules": {"construction_prefixes": list(CONSTRUCTION_PREFIXES),
                           "linear_infrastructure_codes": list(LINEAR_INFRASTRUCTURE_CODES),
                           "urban_construction_prefixes": list(URBAN_CONSTRUCTION_PREFIXES),
                           "min_area_m2": CONFLICT_MIN_M2},
        "invalid_on_purpose": {"DLTB": sorted(defects)},
        "invalid_defects": [{"layer": "DLTB", "bsm": b, "defect": d} for b, d in sorted(defects.items())],
        "statistics": county_statistics(dltb, yjjbnt),
    }


def write_parcel_files(parcel_dir: Path, parcels: list[Parcel], yjjbnt: gpd.GeoDataFrame, stbhhx: gpd.GeoDataFrame,
                       czkfbj: gpd.GeoDataFrame) -> list[dict]:
    """Write the sample parcels in four formats and describe them for the manifest."""
    files = [("jzd_two_parcels_gbk.txt", "txt", "GBK", parcels[:2]),
             ("jzd_clean_utf8_bom.txt", "txt", "UTF-8-BOM", parcels[2:3]),
             ("parcel_udb_edge.geojson", "geojson", "UTF-8", parcels[3:4]),
             ("parcel_road_redline.dxf", "dxf", "UTF-8", parcels[4:5])]
    entries = []
    for name, fmt, encoding, group in files:
        path = parcel_dir / name
        if fmt == "txt":
            info = write_txt_parcels(path, group, "gbk" if encoding == "GBK" else "utf-8-sig")
            crs = "EPSG:4526"
        elif fmt == "geojson":
            write_geojson_parcel(path, group[0])
            info = [{"dkbh": group[0].dkbh, "rings": 1 + len(group[0].geometry.interiors),
                     "points": len(group[0].geometry.exterior.coords)}]
            crs = "EPSG:4490"
        else:
            write_dxf_parcel(path, group[0])
            info = [{"dkbh": group[0].dkbh, "rings": 1, "points": len(group[0].geometry.exterior.coords) - 1}]
            crs = "EPSG:4547"
        for parcel, item in zip(group, info, strict=True):
            item.update({"name": parcel.name, "use": parcel.use_name, "dlbm": parcel.use_code,
                         "purpose": parcel.purpose, "area_m2_planar_gk": round(parcel.geometry.area, 2),
                         "expected": parcel_expectations(parcel, yjjbnt, stbhhx, czkfbj),
                         "geometry_wkt_4547": shapely.to_wkt(parcel.geometry, rounding_precision=3)})
        entries.append({"file": f"parcels/{name}", "format": fmt, "encoding": encoding, "crs": crs, "parcels": info})
    return entries


def county_statistics(dltb: gpd.GeoDataFrame, yjjbnt: gpd.GeoDataFrame) -> dict:
    """A few totals for sanity checks of importers and dashboards."""
    cultivated = dltb["DLBM"].isin(CULTIVATED_CODES)
    return {"dltb_area_m2": round(float(dltb["TBMJ"].sum()), 2),
            "cultivated_tbmj_m2": round(float(dltb.loc[cultivated, "TBMJ"].sum()), 2),
            "cultivated_tbdlmj_m2": round(float(dltb.loc[cultivated, "TBDLMJ"].sum()), 2),
            "cultivated_patches": int(cultivated.sum()),
            "yjjbnt_area_m2": round(float(yjjbnt["YJJBNTTBMJ"].sum()), 2)}


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description="Generate the deterministic demo county 示范县.")
    parser.add_argument("--out", type=Path, default=Path("data/demo"), help="output folder (default data/demo)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument("--scale", action="store_true",
                        help="benchmark county: ≥100,000 YJJBNT patches and ≥50,000 YDYHGHFQ polygons")
    args = parser.parse_args(argv)
    print(generate(args.out, seed=args.seed, scale=args.scale))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
