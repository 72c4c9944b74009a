"""CGCS2000 Gauss-Krüger zones, zone prefixes and the CRS decision an importer makes."""

from __future__ import annotations

import math

import pyproj
import pytest

from gis_platform.crs import STORAGE_EPSG, ResolvedCRS, resolve_crs, transformer_to_storage
from gis_platform.errors import CRSError, InputFileError
from gis_platform.gk_zones import (
    central_meridian,
    easting_zone_prefix,
    gk_epsg,
    gk_zone_of_epsg,
    parse_zone_header,
    zone_for_longitude,
)

ZONES = range(25, 46)

# ESRI-style .prj text as ArcGIS writes it for CGCS2000 3-degree GK zone 38 (prefixed) and CM 114E.
ESRI_ZONE_38 = (
    'PROJCS["CGCS2000_3_Degree_GK_Zone_38",GEOGCS["GCS_China_Geodetic_Coordinate_System_2000",'
    'DATUM["D_China_2000",SPHEROID["CGCS2000",6378137.0,298.257222101]],PRIMEM["Greenwich",0.0],'
    'UNIT["Degree",0.0174532925199433]],PROJECTION["Gauss_Kruger"],PARAMETER["False_Easting",38500000.0],'
    'PARAMETER["False_Northing",0.0],PARAMETER["Central_Meridian",114.0],PARAMETER["Scale_Factor",1.0],'
    'PARAMETER["Latitude_Of_Origin",0.0],UNIT["Meter",1.0]]'
)
ESRI_CM_114E = (
    'PROJCS["CGCS2000_3_Degree_GK_CM_114E",GEOGCS["GCS_China_Geodetic_Coordinate_System_2000",'
    'DATUM["D_China_2000",SPHEROID["CGCS2000",6378137.0,298.257222101]],PRIMEM["Greenwich",0.0],'
    'UNIT["Degree",0.0174532925199433]],PROJECTION["Gauss_Kruger"],PARAMETER["False_Easting",500000.0],'
    'PARAMETER["False_Northing",0.0],PARAMETER["Central_Meridian",114.0],PARAMETER["Scale_Factor",1.0],'
    'PARAMETER["Latitude_Of_Origin",0.0],UNIT["Meter",1.0]]'
)
ESRI_GCS_2000 = (
    'GEOGCS["GCS_China_Geodetic_Coordinate_System_2000",DATUM["D_China_2000",'
    'SPHEROID["CGCS2000",6378137.0,298.257222101]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]]'
)

# Coordinates of a 100 m square near 30.6°N 114.3°E in zone 38, with and without the zone prefix.
PREFIXED = (38_528_000.0, 3_385_000.0, 38_528_100.0, 3_385_100.0)
BARE = (528_000.0, 3_385_000.0, 528_100.0, 3_385_100.0)


def _param(crs: pyproj.CRS, code: str) -> float:
    op = crs.coordinate_operation
    assert op is not None
    return next(float(p.value) for p in op.params if str(p.code) == code)


# ----------------------------------------------------------------------------------------------
# Zone ↔ EPSG
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("zone", ZONES)
def test_prefixed_family_matches_pyproj_definition(zone: int) -> None:
    epsg = gk_epsg(zone, prefixed=True)
    assert epsg == 4513 + zone - 25
    assert gk_zone_of_epsg(epsg) == (zone, True)
    crs = pyproj.CRS.from_epsg(epsg)  # independent: the EPSG database's own definition
    assert _param(crs, "8806") == zone * 1_000_000 + 500_000  # false easting
    assert _param(crs, "8802") == 3 * zone  # central meridian
    assert _param(crs, "8805") == 1.0
    assert crs.geodetic_crs is not None and crs.geodetic_crs.to_epsg() == STORAGE_EPSG
    assert f"zone {zone}" in crs.name


@pytest.mark.parametrize("zone", ZONES)
def test_cm_family_matches_pyproj_definition(zone: int) -> None:
    epsg = gk_epsg(zone, prefixed=False)
    assert epsg == 4534 + zone - 25
    assert gk_zone_of_epsg(epsg) == (zone, False)
    crs = pyproj.CRS.from_epsg(epsg)
    assert _param(crs, "8806") == 500_000
    assert _param(crs, "8802") == 3 * zone
    assert crs.geodetic_crs is not None and crs.geodetic_crs.to_epsg() == STORAGE_EPSG
    assert f"CM {3 * zone}E" in crs.name


@pytest.mark.parametrize("zone", [24, 46, 0, -38, 13])
def test_gk_epsg_rejects_zones_out_of_range(zone: int) -> None:
    with pytest.raises(CRSError, match=str(zone)):
        gk_epsg(zone, prefixed=True)


@pytest.mark.parametrize("epsg", [4512, 4555, 4490, 4326, 2383, 32650])
def test_gk_zone_of_epsg_none_for_other_codes(epsg: int) -> None:
    assert gk_zone_of_epsg(epsg) is None


def test_crs_error_is_an_input_file_error() -> None:
    assert issubclass(CRSError, InputFileError)


@pytest.mark.parametrize(
    ("lon", "zone"),
    [(114.0, 38), (112.6, 38), (115.4, 38), (115.6, 39), (75.0, 25), (135.0, 45), (117.0, 39), (73.6, 25)],
)
def test_zone_for_longitude(lon: float, zone: int) -> None:
    assert zone_for_longitude(lon) == zone
    assert abs(lon - central_meridian(zone)) <= 1.5


def test_zone_for_longitude_out_of_range() -> None:
    with pytest.raises(CRSError):
        zone_for_longitude(10.0)
    with pytest.raises(CRSError):
        zone_for_longitude(math.nan)


def test_central_meridian() -> None:
    assert [central_meridian(z) for z in (25, 38, 45)] == [75, 114, 135]
    with pytest.raises(CRSError):
        central_meridian(46)


# ----------------------------------------------------------------------------------------------
# Zone prefix by digit count
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("easting", "prefix"),
    [
        (38_512_345.67, 38),
        (25_100_000.0, 25),
        (45_899_999.99, 45),
        (40_123_456.0, 40),
        (512_345.67, None),
        (100_000.0, None),
        (999_999.99, None),
    ],
)
def test_easting_zone_prefix(easting: float, prefix: int | None) -> None:
    assert easting_zone_prefix(easting) == prefix


@pytest.mark.parametrize("easting", [4_012_345.67, 1_234_567.0, 123_456_789.0, -512_345.0, 99_999.0, math.inf])
def test_easting_zone_prefix_rejects_other_digit_counts(easting: float) -> None:
    # 4012345.67 "starts with 40" but has 7 digits: it is no zone-40 easting (it looks like a northing)
    with pytest.raises(CRSError) as info:
        easting_zone_prefix(easting)
    assert str(easting).split(".")[0].lstrip("-")[:5] in str(info.value) or "inf" in str(info.value)


def test_easting_zone_prefix_rejects_six_degree_prefix() -> None:
    with pytest.raises(CRSError, match="19"):
        easting_zone_prefix(19_500_000.0)


@pytest.mark.parametrize(
    ("text", "zone"),
    [
        ("38", 38),
        ("38带", 38),
        (" 39 ", 39),
        ("第38带", 38),
        ("114", 38),
        ("114°", 38),
        ("117°E", 39),
        ("东经114度", 38),
        ("75", 25),
        ("135", 45),
    ],
)
def test_parse_zone_header(text: str, zone: int) -> None:
    assert parse_zone_header(text) == zone


@pytest.mark.parametrize("text", ["", "abc", "46", "113", "38°", "6", "114.5", "114带", "38,39"])
def test_parse_zone_header_rejects_nonsense(text: str) -> None:
    with pytest.raises(CRSError):
        parse_zone_header(text)


# ----------------------------------------------------------------------------------------------
# resolve_crs: declared CRS
# ----------------------------------------------------------------------------------------------


def test_esri_prj_zone_38_resolves_to_4526() -> None:
    resolved = resolve_crs(pyproj.CRS.from_wkt(ESRI_ZONE_38), PREFIXED)
    assert (resolved.epsg, resolved.zone, resolved.prefixed, resolved.source) == (4526, 38, True, "declared")
    assert resolved.crs.to_epsg() == 4526


def test_esri_prj_cm_114e_resolves_to_4547() -> None:
    resolved = resolve_crs(pyproj.CRS.from_wkt(ESRI_CM_114E), BARE)
    assert (resolved.epsg, resolved.zone, resolved.prefixed, resolved.source) == (4547, 38, False, "declared")


def test_esri_geographic_prj_resolves_to_4490() -> None:
    resolved = resolve_crs(pyproj.CRS.from_wkt(ESRI_GCS_2000), (114.1, 30.5, 114.2, 30.6))
    assert resolved.epsg == 4490
    assert resolved.source == "declared"


def test_proj_string_identified_by_parameters() -> None:
    crs = pyproj.CRS.from_proj4("+proj=tmerc +lat_0=0 +lon_0=114 +k=1 +x_0=38500000 +y_0=0 +ellps=GRS80 +units=m")
    assert crs.to_epsg() is None  # pyproj alone does not identify it: the parameter inspection must
    resolved = resolve_crs(crs, PREFIXED)
    assert resolved.epsg == 4526
    assert any("parameters" in note for note in resolved.notes)


def test_custom_central_meridian_is_not_taken_for_a_zone() -> None:
    crs = pyproj.CRS.from_proj4("+proj=tmerc +lat_0=0 +lon_0=114.5 +k=1 +x_0=500000 +y_0=0 +ellps=GRS80 +units=m")
    resolved = resolve_crs(crs, BARE)
    assert resolved.zone is None and resolved.prefixed is None
    assert resolved.crs.equals(crs)
    assert resolved.notes  # says it was accepted as is


def test_declared_prefixed_family_with_six_digit_eastings() -> None:
    with pytest.raises(CRSError, match="4547"):
        resolve_crs(pyproj.CRS.from_epsg(4526), BARE)


def test_declared_cm_family_with_eight_digit_eastings() -> None:
    with pytest.raises(CRSError, match="4526"):
        resolve_crs(pyproj.CRS.from_epsg(4547), PREFIXED)


def test_declared_zone_differs_from_easting_prefix() -> None:
    with pytest.raises(CRSError) as info:
        resolve_crs(pyproj.CRS.from_epsg(4527), PREFIXED)  # zone 39 declared, eastings carry 38
    assert "39" in str(info.value) and "38" in str(info.value)


def test_header_zone_disagrees_with_declared_zone() -> None:
    with pytest.raises(CRSError, match="带号 37"):
        resolve_crs(pyproj.CRS.from_epsg(4547), BARE, header_zone=37)


def test_declared_projected_crs_with_degree_coordinates() -> None:
    with pytest.raises(CRSError, match="degrees"):
        resolve_crs(pyproj.CRS.from_epsg(4547), (114.1, 30.5, 114.2, 30.6))


def test_declared_geographic_crs_with_metre_coordinates() -> None:
    with pytest.raises(CRSError, match="not degrees"):
        resolve_crs(pyproj.CRS.from_epsg(4490), BARE)


@pytest.mark.parametrize(
    "bounds",
    [
        (528_000.0, 7_100_000.0, 528_100.0, 7_100_100.0),  # northing beyond China
        (528_000.0, -10.0, 528_100.0, 100.0),  # negative northing
        (950_000.0, 3_385_000.0, 950_100.0, 3_385_100.0),  # easting too far from the central meridian
        (38_050_000.0, 3_385_000.0, 38_050_100.0, 3_385_100.0),  # 50 km east of the false origin
    ],
)
def test_implausible_gk_coordinates(bounds: tuple[float, float, float, float]) -> None:
    crs = pyproj.CRS.from_epsg(4526 if bounds[0] > 10_000_000 else 4547)
    with pytest.raises(CRSError, match="implausible"):
        resolve_crs(crs, bounds)


def test_mixed_prefixed_and_bare_eastings() -> None:
    with pytest.raises(CRSError, match="inconsistent"):
        resolve_crs(None, (528_000.0, 3_385_000.0, 38_528_100.0, 3_385_100.0), allow_prefix_inference=True)


def test_wgs84_declared_is_stored_as_4490_with_note() -> None:
    resolved = resolve_crs(pyproj.CRS.from_epsg(4326), (114.1, 30.5, 114.2, 30.6))
    assert resolved.epsg == 4490
    assert any("WGS 84" in note for note in resolved.notes)


def test_other_projected_crs_accepted_with_note() -> None:
    resolved = resolve_crs(pyproj.CRS.from_epsg(32650), (236_000.0, 3_390_000.0, 236_100.0, 3_390_100.0))
    assert resolved.epsg == 32650 and resolved.source == "declared"
    assert any("not CGCS2000" in note for note in resolved.notes)


def test_xian80_declared_is_refused() -> None:
    # Xian 1980 / 3-degree GK CM 114E: PROJ has only a ballpark (null) shift to CGCS2000
    with pytest.raises(CRSError, match="ballpark"):
        resolve_crs(pyproj.CRS.from_epsg(2383), BARE)


# ----------------------------------------------------------------------------------------------
# resolve_crs: override
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("override", [4547, "EPSG:4547", "4547", ESRI_CM_114E])
def test_override_wins_over_declared(override: str | int) -> None:
    resolved = resolve_crs(pyproj.CRS.from_epsg(4490), BARE, override=override)
    assert (resolved.epsg, resolved.source) == (4547, "override")
    assert any("replaces" in note for note in resolved.notes)


def test_override_must_still_fit_the_coordinates() -> None:
    with pytest.raises(CRSError, match="4526"):
        resolve_crs(None, PREFIXED, override="EPSG:4547")


def test_override_nonsense() -> None:
    with pytest.raises(CRSError, match="not-a-crs"):
        resolve_crs(None, BARE, override="not-a-crs")


# ----------------------------------------------------------------------------------------------
# resolve_crs: nothing declared
# ----------------------------------------------------------------------------------------------


def test_degree_coordinates_assumed_cgcs2000_with_note() -> None:
    resolved = resolve_crs(None, (114.1, 30.5, 114.2, 30.6))
    assert (resolved.epsg, resolved.source) == (4490, "assumed-geographic")
    assert resolved.crs.to_epsg() == 4490
    assert resolved.notes and "assumed" in resolved.notes[0]


def test_metre_coordinates_without_crs_rejected() -> None:
    with pytest.raises(CRSError) as info:
        resolve_crs(None, BARE)
    message = str(info.value)
    assert "give --crs" in message and "528000.000" in message and "3385100.000" in message


def test_prefix_not_inferred_unless_allowed() -> None:
    with pytest.raises(CRSError, match="give --crs") as info:
        resolve_crs(None, PREFIXED)
    assert "4526" in str(info.value)  # the hint


def test_prefix_inferred_when_allowed() -> None:
    resolved = resolve_crs(None, PREFIXED, allow_prefix_inference=True)
    assert (resolved.epsg, resolved.zone, resolved.prefixed, resolved.source) == (4526, 38, True, "prefix")


def test_header_zone_with_bare_eastings() -> None:
    resolved = resolve_crs(None, BARE, header_zone=38, allow_prefix_inference=True)
    assert (resolved.epsg, resolved.zone, resolved.prefixed, resolved.source) == (4547, 38, False, "header")


def test_header_zone_disagrees_with_prefix() -> None:
    with pytest.raises(CRSError) as info:
        resolve_crs(None, PREFIXED, header_zone=37, allow_prefix_inference=True)
    assert "带号 37 in the header but the eastings carry zone 38" in str(info.value)


def test_northing_starting_with_40_is_not_a_zone() -> None:
    bounds = (512_345.67, 4_012_345.67, 512_445.67, 4_012_445.67)
    resolved = resolve_crs(None, bounds, header_zone=38, allow_prefix_inference=True)
    assert (resolved.epsg, resolved.zone) == (4547, 38)


def test_resolved_crs_is_frozen() -> None:
    resolved = resolve_crs(None, PREFIXED, allow_prefix_inference=True)
    assert isinstance(resolved, ResolvedCRS)
    with pytest.raises(AttributeError):
        resolved.epsg = 4547  # type: ignore[misc]


# ----------------------------------------------------------------------------------------------
# Transformation to storage
# ----------------------------------------------------------------------------------------------


def test_transformer_to_storage_axis_order_and_cache() -> None:
    transformer = transformer_to_storage(4547)
    assert transformer is transformer_to_storage(4547)
    lon, lat = transformer.transform(500_000.0, 3_385_000.0)  # on the central meridian
    assert lon == pytest.approx(114.0, abs=1e-12)
    assert 30.0 < lat < 31.0
    # independent forward transformation of the result comes back to the input
    forward = pyproj.Transformer.from_crs("EPSG:4490", "EPSG:4547", always_xy=True)
    x, y = forward.transform(lon, lat)
    assert (x, y) == (pytest.approx(500_000.0, abs=1e-6), pytest.approx(3_385_000.0, abs=1e-6))


def test_transformer_to_storage_accepts_crs_objects() -> None:
    lon, lat = transformer_to_storage(pyproj.CRS.from_wkt(ESRI_ZONE_38)).transform(38_500_000.0, 3_385_000.0)
    assert lon == pytest.approx(114.0, abs=1e-12)
    reference = pyproj.Transformer.from_crs("EPSG:4526", "EPSG:4490", always_xy=True).transform(
        38_500_000.0, 3_385_000.0
    )
    assert (lon, lat) == (pytest.approx(reference[0], abs=1e-12), pytest.approx(reference[1], abs=1e-12))


def test_transformer_to_storage_rejects_nonsense() -> None:
    with pytest.raises(CRSError):
        transformer_to_storage("EPSG:999999")
