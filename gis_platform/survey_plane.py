"""The county's survey plane: the CGCS2000 3° Gauss-Krüger zone every overlay is computed in.

Red lines, 三调 patches and project parcels are surveyed and delivered in one GK zone, and a reviewer who
doubts a figure redoes the overlay there. A straight GK edge is not straight in longitude/latitude (on a
3.5 km edge the two differ by ~0.1 m at the middle), so intersecting in EPSG:4490 moves the vertices of the
result: a parcel snapped to a red-line edge would "overlap" it. Every intersection, union and difference of
the platform therefore runs in this plane, and the result is then measured on the CGCS2000 ellipsoid (or in
the plane on request, the planar area model). Projecting to lon/lat and back leaves ~2 nm of noise on a vertex,
and floating-point overlay of an edge lying on another leaves slivers nanometres wide: an overlay piece whose
mean width (area ÷ perimeter) is below :attr:`SurveyPlane.noise_width_m` (1 µm) is such noise and counts as
empty (:func:`substantive`), so a parcel snapped to a red-line edge overlaps 0 m² however long the edge.

Why not a precision grid (``ST_Intersection(a, b, gridSize)``)? Snap rounding moves every input vertex onto
the grid (at 1 mm, 0.34 m² on a 1.4 km parcel, measured) and drops vertices lying on a straight edge; in the
plane the latter changes nothing, but the ellipsoidal area of the result (geodesic edges between its vertices)
changes by ~0.5 m² on a 3 km edge (measured in tests/test_dashboard.py's county). docs/architecture.md keeps
the figures.

The plane is configuration: ``survey_plane`` in ``layers/catalog.yaml`` names the zone by its
central-meridian EPSG code (EPSG:4534–4554). Geometries reach the plane vertex by vertex, with pyproj (the
one library on the import and check paths): unchanged when they are already in that zone, shifted by the
exact zone prefix when they are in the zone-prefixed family of the same zone, projected otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyproj
import shapely

from .crs import ResolvedCRS
from .errors import CRSError
from .gk_zones import central_meridian, gk_epsg, gk_zone_of_epsg

__all__ = ["NOISE_PARAM", "SurveyPlane", "substantive"]

#: Mean width (area ÷ perimeter) below which an overlay piece is noise, when the catalogue names none: 1 µm,
#: 500 times the ~2 nm noise of projecting to lon/lat and back, far below any surveyed feature.
DEFAULT_NOISE_WIDTH_M = 0.000001
#: The SQL parameter every overlay statement binds to :attr:`SurveyPlane.noise_width_m`.
NOISE_PARAM = ":noise_width"


@dataclass(frozen=True)
class SurveyPlane:
    """A CGCS2000 3° Gauss-Krüger zone (central-meridian family) and the width below which overlay pieces are noise."""

    epsg: int
    """EPSG:4534–4554; the SRID of every plane geometry in the database."""
    noise_width_m: float = DEFAULT_NOISE_WIDTH_M
    """An overlay piece thinner than this on average (area ÷ perimeter, metres) is noise: empty."""

    def __post_init__(self) -> None:
        family = gk_zone_of_epsg(self.epsg)
        if family is None or family[1]:
            raise CRSError(
                f"EPSG:{self.epsg} is not a CGCS2000 3-degree Gauss-Krüger zone named by central meridian;"
                " the survey plane must be one of EPSG:4534–4554",
                epsg=self.epsg,
            )
        if not 0 < self.noise_width_m <= 0.01:
            raise CRSError(f"survey plane noise width {self.noise_width_m!r} m must be > 0 and ≤ 0.01 m")

    @property
    def zone(self) -> int:
        return gk_zone_of_epsg(self.epsg)[0]  # type: ignore[index]

    @property
    def central_meridian(self) -> int:
        return central_meridian(self.zone)

    @property
    def label(self) -> str:
        return f"EPSG:{self.epsg} (CGCS2000 3° Gauss-Krüger, CM {self.central_meridian}°E)"

    def to_plane(self, geometries: np.ndarray, source: ResolvedCRS) -> np.ndarray:
        """``geometries`` (in ``source``, x = easting/longitude) in this plane, vertex by vertex.

        Coordinates already in the plane are returned unchanged; the zone-prefixed family of the same zone
        loses its prefix exactly (a subtraction of zone × 10⁶ m); anything else is projected by pyproj.
        """
        if source.epsg == self.epsg:
            return geometries
        if source.epsg == gk_epsg(self.zone, prefixed=True):
            shift = float(self.zone * 1_000_000)
            return np.asarray(
                shapely.transform(geometries, lambda xy: np.column_stack([xy[:, 0] - shift, xy[:, 1]])), dtype=object
            )
        identity = source.identity
        transformer = _transformer(identity if isinstance(identity, int) else _crs_key(identity), self.epsg)

        def project(xy: np.ndarray) -> np.ndarray:
            x, y = transformer.transform(xy[:, 0], xy[:, 1])
            return np.column_stack([x, y])

        return np.asarray(shapely.transform(geometries, project), dtype=object)


def substantive(expr: str) -> str:
    """SQL: whether the overlay piece ``expr`` (a column, not a computation: it is read three times) is more than
    noise — not empty and on average at least :data:`NOISE_PARAM` wide."""
    return f"(NOT ST_IsEmpty({expr}) AND ST_Area({expr}) > {NOISE_PARAM} * ST_Perimeter({expr}))"


def _crs_key(crs: pyproj.CRS) -> int | str:
    code = crs.to_epsg(min_confidence=100)
    return code if code is not None else crs.to_wkt()


@lru_cache(maxsize=64)
def _transformer(source: int | str, target_epsg: int) -> pyproj.Transformer:
    try:
        source_crs = pyproj.CRS.from_epsg(source) if isinstance(source, int) else pyproj.CRS.from_user_input(source)
        return pyproj.Transformer.from_crs(source_crs, pyproj.CRS.from_epsg(target_epsg), always_xy=True)
    except pyproj.exceptions.ProjError as exc:  # pragma: no cover - every CRS reaching here was resolved before
        raise CRSError(f"cannot project {source!r} into the survey plane EPSG:{target_epsg}") from exc
