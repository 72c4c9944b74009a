"""CGCS2000 and its 3-degree Gauss-Krüger zones.

Everything is stored in :data:`STORAGE_EPSG` (EPSG:4490, CGCS2000 geographic, lon/lat).  Input files
usually come in one of the 21 CGCS2000 3-degree Gauss-Krüger zones 25–45, each of which has two EPSG codes:

* EPSG:4513–4533 ("prefixed" family): the zone number is written in front of the easting, false
  easting = zone × 1,000,000 + 500,000, so eastings have 8 integer digits (``38512345.67``);
* EPSG:4534–4554 ("CM" family, named by central meridian 75°E … 135°E): false easting 500,000,
  eastings have 6 integer digits (``512345.67``).

Zone = round(lon / 3), central meridian = 3 × zone (the zone arithmetic is in :mod:`gis_platform.gk_zones`).
A zone prefix is detected by the digit count of the integer part of the easting, never by its leading
characters (a northing of ``4012345.67`` starts with "40" and is no zone).

:func:`resolve_crs` is the single decision an importer makes from what a file declares and the
coordinates it holds.  All coordinates handed to this module are in "x = easting/longitude,
y = northing/latitude" order (pyproj ``always_xy``), whatever the EPSG axis order says.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import pyproj
from pyproj.exceptions import CRSError as ProjCRSError
from pyproj.exceptions import ProjError

from gis_platform.errors import CRSError
from gis_platform.gk_zones import GK_ZONE_MAX, GK_ZONE_MIN, check_zone, easting_zone_prefix, gk_epsg, gk_zone_of_epsg

__all__ = [
    "STORAGE_EPSG",
    "ResolvedCRS",
    "resolve_crs",
    "transformer_to_storage",
]

STORAGE_EPSG = 4490
"""CGCS2000 geographic (lon/lat): the CRS every geometry is stored in."""

WGS84_EPSG = 4326


# CGCS2000 ellipsoid; GRS 1980 has the same a and 1/f to the precision that matters here.
_CGCS2000_A = 6378137.0
_CGCS2000_INV_F = 298.257222101

# Plausibility window for Gauss-Krüger coordinates in China.
_NORTHING_MIN = 0.0
_NORTHING_MAX = 6_000_000.0
_EASTING_MIN = 100_000.0  # easting without the zone prefix
_EASTING_MAX = 900_000.0

# Resolution sources.
SOURCE_DECLARED = "declared"
SOURCE_OVERRIDE = "override"
SOURCE_HEADER = "header"
SOURCE_PREFIX = "prefix"
SOURCE_ASSUMED_GEOGRAPHIC = "assumed-geographic"

Bounds = tuple[float, float, float, float]


@dataclass(frozen=True)
class ResolvedCRS:
    """The coordinate reference system an importer settled on for one input.

    Attributes
    ----------
    epsg : int or None
        EPSG code of :attr:`crs`.  Always set for CGCS2000 geographic and CGCS2000 GK zones (the
        normal case); ``None`` only for a declared custom CRS that has no EPSG identity (for example
        a Transverse Mercator on CGCS2000 with a non-standard central meridian).
    crs : pyproj.CRS
        The CRS to transform the file's coordinates from.
    zone : int or None
        3-degree Gauss-Krüger zone (25–45) when :attr:`crs` is a CGCS2000 GK zone.
    prefixed : bool or None
        ``True`` for the EPSG:4513–4533 family (zone prefix in the easting), ``False`` for
        EPSG:4534–4554, ``None`` when not a GK zone.
    source : str
        How the CRS was decided: ``"declared"``, ``"override"``, ``"header"``, ``"prefix"`` or
        ``"assumed-geographic"``.
    notes : list of str
        Human-readable remarks worth showing to the user (assumptions, substitutions).
    """

    epsg: int | None
    crs: pyproj.CRS
    zone: int | None
    prefixed: bool | None
    source: str
    notes: list[str] = field(default_factory=list)

    @property
    def identity(self) -> int | pyproj.CRS:
        """The EPSG code when there is one, else the CRS: a transformer is found by it without pyproj's
        ``to_epsg()`` search (~0.1 ms a call, a fifth of preparing a parcel)."""
        return self.epsg if self.epsg is not None else self.crs


# ----------------------------------------------------------------------------------------------
# Recognising CGCS2000 CRSs
# ----------------------------------------------------------------------------------------------


def _is_cgcs2000_ellipsoid(crs: pyproj.CRS) -> bool:
    ellipsoid = crs.ellipsoid
    if ellipsoid is None:
        return False
    return (
        abs(ellipsoid.semi_major_metre - _CGCS2000_A) < 1e-3
        and abs(ellipsoid.inverse_flattening - _CGCS2000_INV_F) < 1e-6
    )


def _is_cgcs2000_datum(crs: pyproj.CRS) -> bool:
    """CGCS2000 datum, or an unnamed datum on the CGCS2000/GRS 1980 ellipsoid (PROJ strings, ESRI WKT)."""
    if not _is_cgcs2000_ellipsoid(crs):
        return False
    datum = crs.datum
    name = (datum.name if datum is not None else "").lower()
    return ("china" in name and "2000" in name) or "cgcs" in name or name.startswith("unknown") or name == ""


def _gk_zone_by_parameters(crs: pyproj.CRS) -> tuple[int, bool] | None:
    """(zone, prefixed) when *crs* is a CGCS2000 3-degree GK zone by its parameters, else ``None``."""
    if not crs.is_projected or not _is_cgcs2000_datum(crs):
        return None
    op = crs.coordinate_operation
    if op is None:
        return None
    method = (op.method_name or "").lower().replace("-", " ").replace("_", " ")
    if "transverse mercator" not in method and "gauss" not in method:
        return None
    if "south" in method:
        return None
    units = {axis.unit_name.lower() for axis in crs.axis_info}
    if not units <= {"metre", "meter", "m"}:
        return None
    params: dict[str, float] = {}
    for param in op.params:
        # unit_conversion_factor converts to SI: radians for angles, metres for lengths, 1 for scale
        value = float(param.value) * float(param.unit_conversion_factor or 1.0)
        code = str(param.code)
        params[code] = math.degrees(value) if code in ("8801", "8802") else value
    try:
        lat0, lon0, k0, x0, y0 = (params[c] for c in ("8801", "8802", "8805", "8806", "8807"))
    except KeyError:
        return None
    if abs(lat0) > 1e-9 or abs(k0 - 1.0) > 1e-9 or abs(y0) > 1e-6:
        return None
    zone_f = lon0 / 3
    zone = round(zone_f)
    if abs(zone_f - zone) > 1e-9 or not GK_ZONE_MIN <= zone <= GK_ZONE_MAX:
        return None
    if abs(x0 - 500_000) < 1e-6:
        return zone, False
    if abs(x0 - (zone * 1_000_000 + 500_000)) < 1e-6:
        return zone, True
    return None


def _identify(crs: pyproj.CRS) -> tuple[str, int | None, list[str]]:
    """Classify a CRS.

    Returns
    -------
    tuple
        ``(kind, epsg, notes)`` where kind is ``"cgcs2000-geographic"``, ``"gk"``, ``"wgs84"`` or
        ``"other"``.
    """
    notes: list[str] = []
    code = crs.to_epsg(min_confidence=70)
    if code == STORAGE_EPSG:
        return "cgcs2000-geographic", code, notes
    if code is not None and gk_zone_of_epsg(code) is not None:
        return "gk", code, notes
    if code == WGS84_EPSG or (crs.is_geographic and _is_wgs84_datum(crs) and _degree_axes(crs)):
        return "wgs84", WGS84_EPSG, notes
    by_params = _gk_zone_by_parameters(crs)
    if by_params is not None:
        epsg = gk_epsg(by_params[0], prefixed=by_params[1])
        notes.append(
            f"CRS {crs.name!r} identified as EPSG:{epsg} from its projection parameters "
            f"(CGCS2000, central meridian {3 * by_params[0]}°E, "
            f"false easting {'zone prefix + ' if by_params[1] else ''}500000 m)"
        )
        return "gk", epsg, notes
    if crs.is_geographic and _is_cgcs2000_datum(crs) and _degree_axes(crs):
        notes.append(f"CRS {crs.name!r} identified as CGCS2000 geographic EPSG:4490 from its datum and ellipsoid")
        return "cgcs2000-geographic", STORAGE_EPSG, notes
    return "other", code, notes


def _degree_axes(crs: pyproj.CRS) -> bool:
    """Longitude and latitude in degrees (a third, ellipsoidal-height axis is ignored)."""
    return {axis.unit_name.lower() for axis in crs.axis_info[:2]} <= {"degree", "degrees"}


def _is_wgs84_datum(crs: pyproj.CRS) -> bool:
    name = (crs.datum.name if crs.datum is not None else "").lower().replace("_", " ")
    return _is_wgs84_ellipsoid(crs) and ("world geodetic system 1984" in name or "wgs 1984" in name or "wgs 84" in name)


def _parse_override(override: str | int | pyproj.CRS) -> pyproj.CRS:
    try:
        if isinstance(override, pyproj.CRS):
            return override
        if isinstance(override, bool):
            raise TypeError(override)
        if isinstance(override, int):
            return pyproj.CRS.from_epsg(override)
        text = override.strip()
        if text.isdigit():
            return pyproj.CRS.from_epsg(int(text))
        return pyproj.CRS.from_user_input(text)
    except (ProjCRSError, ProjError, TypeError, ValueError) as exc:
        raise CRSError(
            f"--crs {override!r} is not a coordinate reference system pyproj understands: {exc}", value=str(override)
        ) from exc


def _fmt_bounds(bounds: Bounds) -> str:
    minx, miny, maxx, maxy = bounds
    return f"x {minx:.3f} … {maxx:.3f}, y {miny:.3f} … {maxy:.3f}"


def _looks_geographic(bounds: Bounds) -> bool:
    minx, miny, maxx, maxy = bounds
    return max(abs(minx), abs(maxx)) <= 180 and max(abs(miny), abs(maxy)) <= 90


def _bounds_prefix(bounds: Bounds) -> int | None:
    """The zone prefix all eastings share (checked on both extremes), ``None`` for 6-digit eastings."""
    minx, _, maxx, _ = bounds
    low, high = easting_zone_prefix(minx), easting_zone_prefix(maxx)
    if low != high:

        def describe(p: int | None) -> str:
            return "6-digit eastings without prefix" if p is None else f"zone prefix {p}"

        raise CRSError(
            f"eastings are inconsistent: {minx} has {describe(low)} but {maxx} has {describe(high)}",
            bounds=list(bounds),
        )
    return low


def _check_gk_fit(epsg: int, bounds: Bounds, header_zone: int | None, label: str) -> None:
    """Raise CRSError unless *bounds* are plausible coordinates of GK zone EPSG *epsg*."""
    zone_prefixed = gk_zone_of_epsg(epsg)
    assert zone_prefixed is not None
    zone, prefixed = zone_prefixed
    family = (
        f"zone {zone} with the zone prefix in the easting"
        if prefixed
        else f"central meridian {3 * zone}°E, no zone prefix"
    )
    if _looks_geographic(bounds):
        raise CRSError(
            f"{label} EPSG:{epsg} ({family}) is in metres but the coordinates look like degrees "
            f"({_fmt_bounds(bounds)})",
            epsg=epsg,
            bounds=list(bounds),
        )
    prefix = _bounds_prefix(bounds)
    if prefixed and prefix is None:
        raise CRSError(
            f"{label} EPSG:{epsg} ({family}) expects 8-digit eastings like {zone}5xxxxx but the eastings are "
            f"6-digit ({_fmt_bounds(bounds)}); EPSG:{gk_epsg(zone, prefixed=False)} would fit them",
            epsg=epsg,
            bounds=list(bounds),
        )
    if not prefixed and prefix is not None:
        raise CRSError(
            f"{label} EPSG:{epsg} ({family}) expects 6-digit eastings but the eastings carry zone prefix {prefix} "
            f"({_fmt_bounds(bounds)}); EPSG:{gk_epsg(prefix, prefixed=True)} would fit them",
            epsg=epsg,
            bounds=list(bounds),
        )
    if prefix is not None and prefix != zone:
        raise CRSError(
            f"{label} EPSG:{epsg} is zone {zone} but the eastings carry zone {prefix}",
            epsg=epsg,
            zone=zone,
            prefix=prefix,
        )
    if header_zone is not None and header_zone != zone:
        if prefix is not None:
            message = (
                f"带号 {header_zone} in the header but the eastings carry zone {prefix} ({label.lower()} EPSG:{epsg})"
            )
        else:
            message = f"带号 {header_zone} in the header but the {label.lower()} CRS EPSG:{epsg} is zone {zone}"
        raise CRSError(
            message,
            epsg=epsg,
            zone=zone,
            header_zone=header_zone,
        )
    _check_gk_plausible(bounds, prefix)


def _check_gk_plausible(bounds: Bounds, prefix: int | None) -> None:
    minx, miny, maxx, maxy = bounds
    offset = prefix * 1_000_000 if prefix is not None else 0
    for easting in (minx, maxx):
        bare = easting - offset
        if not _EASTING_MIN <= bare <= _EASTING_MAX:
            raise CRSError(
                f"easting {easting} is implausible for a 3-degree Gauss-Krüger zone: without the zone prefix it "
                f"must lie within {_EASTING_MIN:.0f}–{_EASTING_MAX:.0f} m, it is {bare:.3f}",
                easting=easting,
            )
    for northing in (miny, maxy):
        if not _NORTHING_MIN <= northing <= _NORTHING_MAX:
            raise CRSError(
                f"northing {northing} is implausible for Gauss-Krüger coordinates in China "
                f"(expected {_NORTHING_MIN:.0f}–{_NORTHING_MAX:.0f} m); are X and Y swapped?",
                northing=northing,
            )


def _check_geographic_fit(label: str, code: int | None, bounds: Bounds) -> None:
    if not _looks_geographic(bounds):
        raise CRSError(
            f"{label} CRS EPSG:{code} is geographic (degrees) but the coordinates are not degrees "
            f"({_fmt_bounds(bounds)}); metre coordinates need a projected CRS such as a Gauss-Krüger zone",
            bounds=list(bounds),
        )


def _check_other_transformable(crs: pyproj.CRS, bounds: Bounds, label: str) -> list[str]:
    """Accept a non-CGCS2000 CRS only if PROJ transforms it to CGCS2000 meaningfully; return notes."""
    notes: list[str] = []
    if not (crs.is_geographic or crs.is_projected):
        raise CRSError(
            f"{label} CRS {crs.name!r} is neither geographic nor projected and cannot be stored in EPSG:4490",
            crs=crs.name,
        )
    try:
        group = pyproj.transformer.TransformerGroup(crs, pyproj.CRS.from_epsg(STORAGE_EPSG), always_xy=True)
    except (ProjError, ProjCRSError) as exc:
        raise CRSError(f"{label} CRS {crs.name!r} cannot be transformed to EPSG:4490: {exc}", crs=crs.name) from exc
    if not group.transformers:
        raise CRSError(f"{label} CRS {crs.name!r} has no transformation to EPSG:4490", crs=crs.name)
    best = group.transformers[0]
    ballpark = "ballpark" in (best.description or "").lower()
    if ballpark and not _is_cgcs2000_ellipsoid(crs) and not _is_wgs84_ellipsoid(crs):
        datum = crs.datum.name if crs.datum is not None else "?"
        raise CRSError(
            f"{label} CRS {crs.name!r} uses datum {datum!r}, for which PROJ has only a ballpark (null) shift to "
            "CGCS2000: positions would be off by tens to hundreds of metres; convert the data to CGCS2000 first",
            crs=crs.name,
            datum=datum,
        )
    minx, miny, maxx, maxy = bounds
    xs, ys = best.transform([minx, maxx, minx, maxx], [miny, miny, maxy, maxy])
    if not all(math.isfinite(v) for v in (*xs, *ys)):
        raise CRSError(
            f"coordinates ({_fmt_bounds(bounds)}) do not fit the {label.lower()} CRS {crs.name!r}",
            crs=crs.name,
            bounds=list(bounds),
        )
    code = crs.to_epsg(min_confidence=70)
    ident = f"EPSG:{code}" if code is not None else "custom CRS"
    accuracy = f" (accuracy {best.accuracy} m)" if best.accuracy is not None and best.accuracy >= 0 else ""
    notes.append(
        f"{label} CRS {crs.name!r} ({ident}) is not CGCS2000; accepted as is and transformed to EPSG:4490 "
        f"with {best.description!r}{accuracy}"
    )
    return notes


def _is_wgs84_ellipsoid(crs: pyproj.CRS) -> bool:
    ellipsoid = crs.ellipsoid
    return (
        ellipsoid is not None
        and abs(ellipsoid.semi_major_metre - 6378137.0) < 1e-3
        and abs(ellipsoid.inverse_flattening - 298.257223563) < 1e-6
    )


def _resolve_given(
    crs: pyproj.CRS, bounds: Bounds, header_zone: int | None, source: str, notes: list[str]
) -> ResolvedCRS:
    label = "Declared" if source == SOURCE_DECLARED else "Override"
    if crs.is_compound:
        horizontal = crs.sub_crs_list[0]
        notes.append(f"{label} compound CRS {crs.name!r}: using its horizontal part {horizontal.name!r}")
        crs = horizontal
    kind, code, id_notes = _identify(crs)
    notes.extend(id_notes)
    if kind == "gk":
        assert code is not None
        _check_gk_fit(code, bounds, header_zone, label)
        zone, prefixed = gk_zone_of_epsg(code) or (None, None)
        return ResolvedCRS(code, pyproj.CRS.from_epsg(code), zone, prefixed, source, notes)
    if header_zone is not None:
        notes.append(f"带号 {header_zone} in the header ignored: the {label.lower()} CRS is not a Gauss-Krüger zone")
    if kind == "cgcs2000-geographic":
        _check_geographic_fit(label, STORAGE_EPSG, bounds)
        return ResolvedCRS(STORAGE_EPSG, pyproj.CRS.from_epsg(STORAGE_EPSG), None, None, source, notes)
    if kind == "wgs84":
        _check_geographic_fit(label, WGS84_EPSG, bounds)
        notes.append(f"{label} CRS is WGS 84 (EPSG:4326); treated as CGCS2000 EPSG:4490 (sub-metre difference)")
        return ResolvedCRS(STORAGE_EPSG, pyproj.CRS.from_epsg(STORAGE_EPSG), None, None, source, notes)
    if crs.is_geographic:
        _check_geographic_fit(label, code, bounds)
    notes.extend(_check_other_transformable(crs, bounds, label))
    return ResolvedCRS(code, crs, None, None, source, notes)


def resolve_crs(
    declared: pyproj.CRS | None,
    bounds: tuple[float, float, float, float],
    *,
    override: str | int | None = None,
    header_zone: int | None = None,
    allow_prefix_inference: bool = False,
) -> ResolvedCRS:
    """Decide the CRS of an input from what it declares and the coordinates it holds.

    Parameters
    ----------
    declared : pyproj.CRS or None
        The CRS the file declares (.prj, GeoPackage SRS, GeoJSON ``crs``), ``None`` if it declares none.
    bounds : tuple of float
        ``(minx, miny, maxx, maxy)`` of all coordinates, x = easting/longitude, y = northing/latitude.
    override : str or int, optional
        The user's ``--crs``: an EPSG code (``4547`` or ``"EPSG:4547"``) or a WKT/PROJ string.  Wins
        over anything declared, but the coordinates must still fit it.
    header_zone : int, optional
        Zone from a header's 带号 (TXT); must agree with the CRS and with any zone prefix.
    allow_prefix_inference : bool, default False
        Allow deriving the zone from an 8-digit easting prefix when nothing is declared.  Only for
        inputs whose format itself declares CGCS2000 Gauss-Krüger (the boundary TXT).

    Returns
    -------
    ResolvedCRS

    Raises
    ------
    CRSError
        When no CRS can be decided without guessing (metre coordinates and nothing declared), when
        the coordinates do not fit the declared/override CRS (wrong zone, prefix family, degrees vs
        metres, implausible range) or when the header's 带号 disagrees.
    """
    minx, miny, maxx, maxy = (float(v) for v in bounds)
    box: Bounds = (minx, miny, maxx, maxy)
    if not all(math.isfinite(v) for v in box):
        raise CRSError(f"coordinate bounds are not finite ({_fmt_bounds(box)})", bounds=list(box))
    notes: list[str] = []

    if override is not None:
        crs = _parse_override(override)
        if declared is not None and not declared.equals(crs, ignore_axis_order=True):
            notes.append(f"--crs {override} replaces the declared CRS {declared.name!r}")
        return _resolve_given(crs, box, header_zone, SOURCE_OVERRIDE, notes)
    if declared is not None:
        return _resolve_given(declared, box, header_zone, SOURCE_DECLARED, notes)

    if _looks_geographic(box):
        if header_zone is not None:
            raise CRSError(
                f"带号 {header_zone} in the header says Gauss-Krüger metres but the coordinates look like degrees "
                f"({_fmt_bounds(box)})",
                header_zone=header_zone,
                bounds=list(box),
            )
        notes.append(
            f"no CRS declared; coordinates look like degrees ({_fmt_bounds(box)}): assumed CGCS2000 "
            "geographic EPSG:4490"
        )
        return ResolvedCRS(
            STORAGE_EPSG, pyproj.CRS.from_epsg(STORAGE_EPSG), None, None, SOURCE_ASSUMED_GEOGRAPHIC, notes
        )

    if not allow_prefix_inference and header_zone is None:
        hint = ""
        try:
            prefix = _bounds_prefix(box)
        except CRSError:
            prefix = None
        if prefix is not None:
            hint = f" (the eastings carry zone prefix {prefix}: EPSG:{gk_epsg(prefix, prefixed=True)}?)"
        raise CRSError(
            f"metre coordinates with no CRS: give --crs ({_fmt_bounds(box)}){hint}",
            bounds=list(box),
        )

    prefix = _bounds_prefix(box)
    if prefix is not None and (allow_prefix_inference or header_zone is not None):
        if header_zone is not None and header_zone != prefix:
            raise CRSError(
                f"带号 {header_zone} in the header but the eastings carry zone {prefix}",
                header_zone=header_zone,
                prefix=prefix,
            )
        epsg = gk_epsg(prefix, prefixed=True)
        _check_gk_plausible(box, prefix)
        source = SOURCE_PREFIX if allow_prefix_inference else SOURCE_HEADER
        if source == SOURCE_PREFIX:
            agree = f"; agrees with 带号 {header_zone} in the header" if header_zone is not None else ""
            notes.append(f"zone {prefix} taken from the 8-digit easting prefix: EPSG:{epsg}{agree}")
        else:
            notes.append(f"带号 {header_zone} in the header, eastings carry the zone prefix: EPSG:{epsg}")
        return ResolvedCRS(epsg, pyproj.CRS.from_epsg(epsg), prefix, True, source, notes)
    if header_zone is not None:
        check_zone(header_zone)
        epsg = gk_epsg(header_zone, prefixed=False)
        _check_gk_plausible(box, None)
        notes.append(f"带号 {header_zone} in the header, 6-digit eastings without prefix: EPSG:{epsg}")
        return ResolvedCRS(epsg, pyproj.CRS.from_epsg(epsg), header_zone, False, SOURCE_HEADER, notes)
    raise CRSError(
        f"metre coordinates with no CRS: give --crs ({_fmt_bounds(box)}); the eastings carry no zone prefix "
        "and no 带号 is given",
        bounds=list(box),
    )


# ----------------------------------------------------------------------------------------------
# Transformation to storage
# ----------------------------------------------------------------------------------------------


@lru_cache(maxsize=128)
def _transformer_for_key(key: int | str) -> pyproj.Transformer:
    source = pyproj.CRS.from_epsg(key) if isinstance(key, int) else pyproj.CRS.from_user_input(key)
    return pyproj.Transformer.from_crs(source, pyproj.CRS.from_epsg(STORAGE_EPSG), always_xy=True)


def transformer_to_storage(epsg_or_crs: int | str | pyproj.CRS) -> pyproj.Transformer:
    """Cached transformer from a CRS to EPSG:4490 with ``always_xy=True`` (x = easting/lon in and out).

    Parameters
    ----------
    epsg_or_crs : int, str or pyproj.CRS
        EPSG code, any string pyproj accepts (``"EPSG:4547"``, WKT, PROJ) or a CRS object.

    Raises
    ------
    CRSError
        If pyproj cannot build the CRS or the transformation.
    """
    key: int | str
    if isinstance(epsg_or_crs, pyproj.CRS):
        code = epsg_or_crs.to_epsg(min_confidence=100)
        key = code if code is not None else epsg_or_crs.to_wkt()
    elif isinstance(epsg_or_crs, str) and epsg_or_crs.strip().isdigit():
        key = int(epsg_or_crs.strip())
    else:
        key = epsg_or_crs
    try:
        return _transformer_for_key(key)
    except (ProjCRSError, ProjError) as exc:
        raise CRSError(f"cannot transform {epsg_or_crs!r} to EPSG:4490: {exc}", value=str(epsg_or_crs)) from exc
