"""The national land survey's ellipsoid area (图斑椭球面积) as an independent test oracle.

The platform measures areas with ``ST_Area(geom::geography)`` (geodesic edges, Karney's algorithm in
GeographicLib). This module computes the same quantity the way the land survey does, with nothing in
common with that path except PROJ's inverse Gauss-Krüger projection, so a test can hold one against the
other.

Source of the formula
---------------------
国土调查办发〔2008〕32号《图幅理论面积与图斑椭球面积计算公式及要求》 (the 二调 notice that fixed the
formulas of 《第二次全国土地调查技术规程》 TD/T 1014-2007, with Xi'an 80 constants). The 三调 rules
(《第三次全国国土调查技术规程》 TD/T 1055-2019) use the same ellipsoidal area on CGCS2000 (a = 6378137,
f = 1/298.257222101); the text of TD/T 1055 itself was not available when this was written, so the
formula below rests on the 二调 notice (several public transcriptions agree on it) and on the
implementations named further down. The notice gives

1. the inverse Gauss-Krüger projection x, y → B, L (a truncated series in the footpoint latitude, the zone
   number taken off a prefixed easting). Here PROJ does that step (``pyproj``, the CRS's own inverse
   ``tmerc``) instead of the notice's series; a vertex shift shared by a patch's neighbours barely moves
   its area, so the choice of inverse is not what the comparisons in the tests measure;
2. the area of an ellipsoidal trapezoid bounded by the parallels B1, B2 and two meridians ΔL apart::

       S = 2 b² ΔL [ A sin(½ΔB) cos Bm − B sin(3/2·ΔB) cos 3Bm + C sin(5/2·ΔB) cos 5Bm
                     − D sin(7/2·ΔB) cos 7Bm + E sin(9/2·ΔB) cos 9Bm ]

       ΔB = B2 − B1, Bm = (B1 + B2) / 2, e² = (a² − b²) / a²,
       A = 1 + 3/6 e² + 30/80 e⁴ + 35/112 e⁶ + 630/2304 e⁸
       B =     1/6 e² + 15/80 e⁴ + 21/112 e⁶ + 420/2304 e⁸
       C =              3/80 e⁴ +  7/112 e⁶ + 180/2304 e⁸
       D =                          1/112 e⁶ +  45/2304 e⁸
       E =                                      5/2304 e⁸

   This is the integral b² ΔL ∫ cos B / (1 − e² sin² B)² dB over [B1, B2] with the integrand expanded to
   e⁸ (``tests/test_land_survey_area.py`` derives the fractions again from that expansion).

How a patch is summed
---------------------
The notice states the trapezoid; how a patch is cut into trapezoids is settled by practice. Three public
implementations read for this (two ArcObjects C# tools for 二调 data, one arcpy script) agree: each
boundary edge (B1, L1) → (B2, L2) makes the trapezoid between the parallels B1 and B2, from a reference
meridian L0 to the edge's mean longitude, i.e. ``ΔL = (L1 + L2) / 2 − L0`` with the edge's own ΔB and Bm;
the signed trapezoids summed round a ring give its area (they use the prime meridian as L0 and ArcGIS's
clockwise outer rings, hence a minus sign in their code). Summed round a closed ring, L0 cancels exactly;
this module takes the zone's central meridian, so ΔL stays within ±1.5° and the sum keeps its digits.
One of the C# tools first cuts every GK edge longer than 70 m into equal pieces; the notice's text as
transcribed does not ask for that, so it is an option here (``max_segment_m``), off by default.

What the formula assumes about edges
------------------------------------
Summing ``(L1 + L2) / 2 · [F(B2) − F(B1)]`` (F = the trapezoid integral from the equator) is the shoelace
formula in the plane (L, F(B)), which is Lambert's cylindrical equal-area projection of the ellipsoid. The
formula is therefore exact for a polygon whose edges are straight lines in that projection: parallels and
meridians exactly, anything else only approximately. It is *not* the area of the polygon with geodesic edges
(what ``ST_Area(geography)`` and ``pyproj.Geod`` measure), nor of the polygon with straight Gauss-Krüger
edges (what the surveyor drew). The three differ by thin lenses along each edge whose area grows with the
cube of the edge length; ``max_segment_m`` densifies the Gauss-Krüger edges before projecting, which makes
the result converge to the area of the straight-edged Gauss-Krüger polygon. Without it (the default) the
oracle is the formula as the rules state it: boundary vertices only.

Other assumptions: rings are closed and simple; a polygon's area is |outer| − Σ|holes| whatever the ring
orientation; a ring's signed area is positive when it runs counter-clockwise in (easting, northing), i.e.
in map view. The notice also fixes how many digits B, L (in arc seconds) keep; the C# tools round them to
1e-6″ and the GK coordinates to 0.1 mm. This oracle does not round (1e-6″ is 3e-5 m on the ground).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import shapely
from pyproj import CRS, Transformer

#: CGCS2000 ellipsoid (GB/T 2000 national geodetic coordinate system): a and f as defined.
CGCS2000_A = 6378137.0
CGCS2000_INVERSE_F = 298.257222101

#: CGCS2000 3° Gauss-Krüger families: 4513–4533 carry the zone number in front of the easting,
#: 4534–4554 are the same zones named by central meridian.
GK_EPSG_PREFIXED = range(4513, 4534)
GK_EPSG_CENTRAL_MERIDIAN = range(4534, 4555)

#: The published series coefficients as fractions of (e², e⁴, e⁶, e⁸), term by term (A, B, C, D, E).
PUBLISHED_SERIES: tuple[tuple[tuple[int, int], ...], ...] = (
    ((1, 1), (3, 6), (30, 80), (35, 112), (630, 2304)),  # A: 1 + 3/6 e² + …
    ((0, 1), (1, 6), (15, 80), (21, 112), (420, 2304)),  # B
    ((0, 1), (0, 1), (3, 80), (7, 112), (180, 2304)),  # C
    ((0, 1), (0, 1), (0, 1), (1, 112), (45, 2304)),  # D
    ((0, 1), (0, 1), (0, 1), (0, 1), (5, 2304)),  # E
)


@dataclass(frozen=True)
class SurveyEllipsoid:
    """An ellipsoid with the land survey's trapezoid series coefficients A…E."""

    a: float
    inverse_flattening: float

    @property
    def b(self) -> float:
        return self.a * (1.0 - 1.0 / self.inverse_flattening)

    @property
    def e2(self) -> float:
        return (self.a**2 - self.b**2) / self.a**2

    @property
    def coefficients(self) -> tuple[float, float, float, float, float]:
        """A, B, C, D, E of the notice, evaluated for this ellipsoid's e²."""
        powers = [self.e2**k for k in range(5)]  # 1, e², e⁴, e⁶, e⁸
        values = [sum(p * num / den for p, (num, den) in zip(powers, row, strict=True)) for row in PUBLISHED_SERIES]
        return values[0], values[1], values[2], values[3], values[4]


CGCS2000 = SurveyEllipsoid(CGCS2000_A, CGCS2000_INVERSE_F)


def trapezoid_area(
    b1: np.ndarray | float,
    b2: np.ndarray | float,
    delta_l: np.ndarray | float,
    ellipsoid: SurveyEllipsoid = CGCS2000,
) -> np.ndarray:
    """Area of the ellipsoidal trapezoid between parallels *b1*, *b2* and a longitude span *delta_l*.

    The notice's formula (2): ``S = 2 b² ΔL [A sin(½ΔB) cos Bm − B sin(3/2ΔB) cos 3Bm + …]`` with
    ``ΔB = b2 − b1`` and ``Bm = (b1 + b2) / 2``. Angles in radians, area in m². Signed: positive when
    ``b2 > b1`` and ``delta_l > 0``.
    """
    b1 = np.asarray(b1, dtype=float)
    b2 = np.asarray(b2, dtype=float)
    d_b = b2 - b1
    b_m = (b1 + b2) / 2.0
    c_a, c_b, c_c, c_d, c_e = ellipsoid.coefficients
    series = (
        c_a * np.sin(0.5 * d_b) * np.cos(b_m)
        - c_b * np.sin(1.5 * d_b) * np.cos(3.0 * b_m)
        + c_c * np.sin(2.5 * d_b) * np.cos(5.0 * b_m)
        - c_d * np.sin(3.5 * d_b) * np.cos(7.0 * b_m)
        + c_e * np.sin(4.5 * d_b) * np.cos(9.0 * b_m)
    )
    return np.asarray(2.0 * ellipsoid.b**2 * np.asarray(delta_l, dtype=float) * series)


def ring_area_geodetic(
    lon_deg: np.ndarray,
    lat_deg: np.ndarray,
    reference_lon_deg: float,
    ellipsoid: SurveyEllipsoid = CGCS2000,
) -> float:
    """Signed area of a ring given by geodetic longitudes/latitudes (degrees), by the trapezoid sum.

    Each edge i → i+1 contributes the trapezoid between its two parallels, from the reference meridian to
    the edge's mean longitude. Positive for a counter-clockwise ring (seen from above, east to the right).
    The ring may or may not repeat its first vertex at the end.
    """
    lon = np.asarray(lon_deg, dtype=float)
    lat = np.asarray(lat_deg, dtype=float)
    if lon.shape != lat.shape or lon.ndim != 1:
        raise ValueError(f"a ring needs two 1-D coordinate arrays of equal length, got {lon.shape} and {lat.shape}")
    if lon.size and (lon[0] != lon[-1] or lat[0] != lat[-1]):
        lon, lat = np.append(lon, lon[0]), np.append(lat, lat[0])
    if lon.size < 4:
        raise ValueError(f"a ring needs at least 3 distinct vertices, got {max(lon.size - 1, 0)}")
    b = np.radians(lat)
    l_rel = np.radians(lon - reference_lon_deg)
    mean_l = (l_rel[:-1] + l_rel[1:]) / 2.0
    return float(np.sum(trapezoid_area(b[:-1], b[1:], mean_l, ellipsoid)))


@dataclass(frozen=True)
class GaussKrugerZone:
    """A CGCS2000 3° Gauss-Krüger CRS: its EPSG code, central meridian and false easting."""

    epsg: int
    central_meridian: float
    false_easting: float


@lru_cache(maxsize=64)
def gk_zone(epsg: int) -> GaussKrugerZone:
    """Read the central meridian and false easting of a CGCS2000 3° GK CRS from its PROJ definition.

    Raises ``ValueError`` for anything that is not one of EPSG:4513–4554 (a transverse Mercator on
    GRS80/CGCS2000 with scale 1 on the central meridian).
    """
    if epsg not in GK_EPSG_PREFIXED and epsg not in GK_EPSG_CENTRAL_MERIDIAN:
        raise ValueError(
            f"EPSG:{epsg} is not a CGCS2000 3-degree Gauss-Krüger CRS (EPSG:4513–4533 zone-prefixed, 4534–4554 by CM)"
        )
    crs = CRS.from_epsg(epsg)
    operation = crs.coordinate_operation
    params = {p.name: p.value for p in operation.params} if operation is not None else {}
    if (
        operation is None
        or operation.method_name != "Transverse Mercator"
        or params.get("Scale factor at natural origin") != 1.0
        or crs.ellipsoid is None
        or abs(crs.ellipsoid.inverse_flattening - CGCS2000_INVERSE_F) > 1e-6
    ):
        raise ValueError(f"EPSG:{epsg} is not a CGCS2000 transverse Mercator with scale 1 ({crs.name})")
    return GaussKrugerZone(epsg, float(params["Longitude of natural origin"]), float(params["False easting"]))


@lru_cache(maxsize=64)
def _inverse_gk(epsg: int) -> Transformer:
    # CGCS2000 geographic (EPSG:4490) as the target: B, L on the CGCS2000 ellipsoid, no datum shift.
    return Transformer.from_crs(CRS.from_epsg(epsg), CRS.from_epsg(4490), always_xy=True)


def gk_to_geodetic(easting: np.ndarray, northing: np.ndarray, epsg: int) -> tuple[np.ndarray, np.ndarray]:
    """Inverse Gauss-Krüger: (easting, northing) in EPSG:*epsg* → (longitude, latitude) in degrees.

    Refuses eastings that do not belong to the CRS (a prefixed easting given with the central-meridian
    code, or the other way round): the result would lie outside the zone, which the check catches.
    """
    zone = gk_zone(epsg)
    east = np.asarray(easting, dtype=float)
    north = np.asarray(northing, dtype=float)
    offset = east - zone.false_easting
    if offset.size and np.max(np.abs(offset)) > 400_000.0:
        raise ValueError(
            f"eastings {east.min():,.3f}…{east.max():,.3f} are not in EPSG:{epsg} "
            f"(false easting {zone.false_easting:,.0f}; a 3° zone spans about ±200 km)"
        )
    lon, lat = _inverse_gk(epsg).transform(east, north)
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


def densify_ring(coords: np.ndarray, max_segment_m: float) -> np.ndarray:
    """Insert points along each straight edge of a planar ring so that no piece is longer than *max_segment_m*."""
    if max_segment_m <= 0 or not math.isfinite(max_segment_m):
        raise ValueError(f"max_segment_m must be a positive length in metres, got {max_segment_m!r}")
    start, end = coords[:-1], coords[1:]
    lengths = np.hypot(end[:, 0] - start[:, 0], end[:, 1] - start[:, 1])
    pieces = np.maximum(1, np.ceil(lengths / max_segment_m).astype(int))
    out = [coords[:1]]
    for p, q, n in zip(start, end, pieces, strict=True):
        t = np.arange(1, n + 1, dtype=float)[:, None] / n
        out.append(p + (q - p) * t)
    return np.vstack(out)


def ring_area_gk(
    coords: np.ndarray | Sequence[Sequence[float]], epsg: int, *, max_segment_m: float | None = None
) -> float:
    """Signed land-survey area (m²) of one ring given as Gauss-Krüger (easting, northing) vertices.

    Positive for a counter-clockwise ring in (easting, northing). With *max_segment_m* the GK edges are
    densified first (see the module docstring); without it, only the vertices are used, as the rules do.
    """
    xy = np.asarray(coords, dtype=float)[:, :2]
    if xy.ndim != 2 or len(xy) < 3:
        raise ValueError(f"a ring needs at least 3 (easting, northing) vertices, got shape {xy.shape}")
    if not (xy[0] == xy[-1]).all():
        xy = np.vstack([xy, xy[:1]])
    if max_segment_m is not None:
        xy = densify_ring(xy, max_segment_m)
    lon, lat = gk_to_geodetic(xy[:, 0], xy[:, 1], epsg)
    return ring_area_geodetic(lon, lat, gk_zone(epsg).central_meridian)


def _polygons(geometry: shapely.Geometry) -> Iterable[shapely.Polygon]:
    if isinstance(geometry, shapely.Polygon):
        yield geometry
    elif isinstance(geometry, shapely.MultiPolygon):
        yield from geometry.geoms
    else:
        raise ValueError(f"expected a Polygon or MultiPolygon, got {geometry.geom_type}")


def polygon_area_gk(geometry: shapely.Geometry, epsg: int, *, max_segment_m: float | None = None) -> float:
    """Land-survey ellipsoidal area (m²) of a (Multi)Polygon in GK (easting, northing) coordinates.

    |outer ring| − Σ |hole| for each part, whatever the ring orientation.
    """
    total = 0.0
    for polygon in _polygons(geometry):
        if polygon.is_empty:
            continue
        total += abs(ring_area_gk(np.asarray(polygon.exterior.coords), epsg, max_segment_m=max_segment_m))
        for hole in polygon.interiors:
            total -= abs(ring_area_gk(np.asarray(hole.coords), epsg, max_segment_m=max_segment_m))
    return total
