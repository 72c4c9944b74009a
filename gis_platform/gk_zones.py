"""CGCS2000 3-degree Gauss-Krüger zones: zone numbers, central meridians and their EPSG codes.

The zones 25–45 each have two EPSG codes: EPSG:4513–4533 ("prefixed" family, the zone number written in
front of the easting, 8 integer digits) and EPSG:4534–4554 ("CM" family, named by central meridian, false
easting 500,000, 6 integer digits). Zone = round(lon / 3), central meridian = 3 × zone. A zone prefix is
read from the digit count of the integer part of an easting, never from its leading characters. Which CRS
an input is in is decided in :mod:`gis_platform.crs`.
"""

from __future__ import annotations

import math
import re

from gis_platform.errors import CRSError

GK_ZONE_MIN = 25
GK_ZONE_MAX = 45

_PREFIXED_BASE = 4513  # EPSG:4513 = zone 25 with prefix … EPSG:4533 = zone 45
_CM_BASE = 4534  # EPSG:4534 = CM 75E (zone 25) … EPSG:4554 = CM 135E (zone 45)


def check_zone(zone: int) -> int:
    if isinstance(zone, bool) or not isinstance(zone, int) or not GK_ZONE_MIN <= zone <= GK_ZONE_MAX:
        raise CRSError(
            f"zone {zone!r} is not a CGCS2000 3-degree Gauss-Krüger zone ({GK_ZONE_MIN}–{GK_ZONE_MAX})",
            zone=zone,
        )
    return zone


def gk_epsg(zone: int, *, prefixed: bool) -> int:
    """EPSG code of a CGCS2000 3-degree Gauss-Krüger zone.

    Parameters
    ----------
    zone : int
        Zone number, 25–45.
    prefixed : bool
        ``True`` for the family with the zone number in front of the easting (EPSG:4513–4533,
        false easting zone×1,000,000 + 500,000); ``False`` for the family named by central
        meridian (EPSG:4534–4554, false easting 500,000).

    Returns
    -------
    int
        The EPSG code.

    Raises
    ------
    CRSError
        If the zone is out of range.
    """
    check_zone(zone)
    return (_PREFIXED_BASE if prefixed else _CM_BASE) + zone - GK_ZONE_MIN


def gk_zone_of_epsg(epsg: int) -> tuple[int, bool] | None:
    """Inverse of :func:`gk_epsg`.

    Returns
    -------
    tuple of (int, bool) or None
        ``(zone, prefixed)``, or ``None`` when *epsg* is not a CGCS2000 3-degree GK code.
    """
    span = GK_ZONE_MAX - GK_ZONE_MIN
    if _PREFIXED_BASE <= epsg <= _PREFIXED_BASE + span:
        return epsg - _PREFIXED_BASE + GK_ZONE_MIN, True
    if _CM_BASE <= epsg <= _CM_BASE + span:
        return epsg - _CM_BASE + GK_ZONE_MIN, False
    return None


def zone_for_longitude(lon: float) -> int:
    """3-degree zone containing longitude *lon* (degrees east): ``round(lon / 3)``.

    A longitude exactly on a zone boundary (an odd multiple of 1.5°) goes to the eastern zone,
    consistently, rather than following Python's round-half-to-even.

    Raises
    ------
    CRSError
        If the longitude is not finite or its zone is outside 25–45 (73.5°E–136.5°E).
    """
    if not math.isfinite(lon):
        raise CRSError(f"longitude {lon!r} is not a finite number", longitude=lon)
    zone = math.floor(lon / 3 + 0.5)
    if not GK_ZONE_MIN <= zone <= GK_ZONE_MAX:
        raise CRSError(
            f"longitude {lon}° lies in 3-degree zone {zone}, outside the CGCS2000 zones {GK_ZONE_MIN}–{GK_ZONE_MAX}",
            longitude=lon,
        )
    return zone


def central_meridian(zone: int) -> int:
    """Central meridian (degrees east) of a 3-degree zone: ``3 × zone``."""
    return 3 * check_zone(zone)


def easting_zone_prefix(easting: float) -> int | None:
    """Zone number carried in front of an easting, decided by the digit count of its integer part.

    * 8 digits (10,000,000 ≤ easting < 100,000,000): the prefix is ``easting // 1,000,000``;
    * 6 digits (100,000 ≤ easting < 1,000,000): no prefix, ``None``;
    * anything else (≤ 5 or 7 or ≥ 9 digits, negative, not finite) is not a Gauss-Krüger easting.

    Only apply this to eastings: a northing such as ``4012345.67`` has 7 digits and is no zone.

    Raises
    ------
    CRSError
        Naming the value, when it is not a 6- or 8-digit easting, or when an 8-digit easting carries
        a prefix outside 25–45 (for example a 6-degree zone number).
    """
    if not math.isfinite(easting) or easting < 0:
        raise CRSError(f"easting {easting!r} is not a Gauss-Krüger easting (negative or not finite)", easting=easting)
    digits = len(str(int(easting)))
    if digits == 6:
        return None
    if digits == 8:
        prefix = int(easting // 1_000_000)
        if not GK_ZONE_MIN <= prefix <= GK_ZONE_MAX:
            raise CRSError(
                f"easting {easting} carries prefix {prefix}, which is not a CGCS2000 3-degree zone "
                f"({GK_ZONE_MIN}–{GK_ZONE_MAX}); a 6-degree zone number?",
                easting=easting,
            )
        return prefix
    raise CRSError(
        f"easting {easting} has {digits} integer digits: a Gauss-Krüger easting has 6 (no zone prefix) "
        "or 8 (zone prefix + 6); is X/Y swapped or the unit not metres?",
        easting=easting,
    )


_ZONE_HEADER_RE = re.compile(
    r"^(?:第|东经|E)?\s*(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>带|°\s*E?|度|E|°E)?$",
    re.IGNORECASE,
)


def parse_zone_header(text: str) -> int:
    """Zone number from a header's 带号 value.

    Accepts a zone number (``"38"``, ``"38带"``, ``"第38带"``) or a central meridian in degrees
    (``"114"``, ``"114°"``, ``"114°E"``, ``"东经114度"``) which is turned into its zone (114 → 38).

    Raises
    ------
    CRSError
        If the value is neither a zone 25–45 nor a central meridian 75–135 that is a multiple of 3.
    """
    raw = text
    text = text.strip().replace("º", "°").replace("˚", "°")
    match = _ZONE_HEADER_RE.match(text)
    if match is None:
        raise CRSError(f"带号 {raw!r} is not a zone number (25–45) or central meridian (75–135)", value=raw)
    number = float(match.group("num"))
    if number != int(number):
        raise CRSError(f"带号 {raw!r} is not a whole number", value=raw)
    value = int(number)
    unit = (match.group("unit") or "").strip()
    if unit in ("带",):
        return _check_zone_header(value, raw)
    if GK_ZONE_MIN <= value <= GK_ZONE_MAX and not unit:
        return value
    if 3 * GK_ZONE_MIN <= value <= 3 * GK_ZONE_MAX and value % 3 == 0:
        return value // 3
    raise CRSError(
        f"带号 {raw!r} is neither a 3-degree zone ({GK_ZONE_MIN}–{GK_ZONE_MAX}) nor the central meridian "
        f"of one ({3 * GK_ZONE_MIN}–{3 * GK_ZONE_MAX}, a multiple of 3)",
        value=raw,
    )


def _check_zone_header(value: int, raw: str) -> int:
    if not GK_ZONE_MIN <= value <= GK_ZONE_MAX:
        raise CRSError(f"带号 {raw!r} is not a 3-degree zone ({GK_ZONE_MIN}–{GK_ZONE_MAX})", value=raw)
    return value
