"""Property tests (hypothesis) on the geometry inputs: request parcels and the boundary-coordinate TXT.

Whatever arrives, the parsers either succeed or raise a :class:`PlatformError` subclass whose message names the
problem; valid polygons keep their area through validation and reprojection; NaN/infinite coordinates, empty
and oversized geometries and coordinates that do not fit the declared CRS are refused by name.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
import shapely
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pyproj import Transformer

from gis_platform.analysis.parcel import parcels_from_geojson, prepare_parcel
from gis_platform.errors import CRSError, InputFileError, ParcelError, PlatformError
from gis_platform.ingest.boundary_txt import read_boundary_txt
from gis_platform.survey_plane import SurveyPlane

from .helpers import geod_area

MAX_VERTICES = 500
PLANE = SurveyPlane(4547)  # the demo county's survey plane (CGCS2000 GK, CM 114°E)
PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------------------------------------------

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-200, max_value=200),
    st.integers(min_value=-(10**20), max_value=10**20),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=8))
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(st.text(max_size=6), children, max_size=5)
    ),
    max_leaves=40,
)
positions = st.lists(numbers, min_size=0, max_size=4)
rings = st.lists(st.one_of(positions, scalars), min_size=0, max_size=8)
geometry_types = st.sampled_from(
    ["Polygon", "MultiPolygon", "Point", "LineString", "GeometryCollection", "Feature", "polygon", ""]
)
coordinates = st.one_of(
    scalars, st.lists(rings, max_size=3), st.lists(st.lists(rings, max_size=3), max_size=3), json_values
)
geometry_like = st.builds(
    lambda kind, coords, extra: {"type": kind, "coordinates": coords, **extra},
    geometry_types,
    coordinates,
    st.dictionaries(st.sampled_from(["crs", "bbox", "geometries", "properties"]), json_values, max_size=2),
)
geojson_like = st.one_of(
    json_values,
    geometry_like,
    st.builds(
        lambda g, p: {"type": "Feature", "geometry": g, "properties": p}, geometry_like | json_values, json_values
    ),
    st.builds(
        lambda fs: {"type": "FeatureCollection", "features": fs},
        st.lists(st.builds(lambda g: {"type": "Feature", "geometry": g}, geometry_like), max_size=3) | json_values,
    ),
)
crs_values = st.one_of(
    st.none(),
    st.sampled_from(["EPSG:4490", "EPSG:4326", "EPSG:4527", "EPSG:4547", "EPSG:3857", "EPSG:2000", "", "4490"]),
    st.text(max_size=12),
)

# a plausible parcel in the county region, in degrees: a convex polygon from a centre, radius and angles
centres = st.tuples(st.floats(min_value=110.0, max_value=118.0), st.floats(min_value=25.0, max_value=40.0))


@st.composite
def convex_polygons(draw: st.DrawFn) -> shapely.Polygon:
    lon, lat = draw(centres)
    radius = draw(st.floats(min_value=1e-4, max_value=0.05))
    angles = sorted(set(draw(st.lists(st.floats(min_value=0, max_value=2 * math.pi - 1e-3), min_size=3, max_size=30))))
    assume(len(angles) >= 3)
    points = [(lon + radius * math.cos(a), lat + radius * math.sin(a)) for a in angles]
    polygon = shapely.Polygon(points)
    assume(polygon.is_valid and polygon.area > radius * radius * 0.05)
    return polygon


def _geojson(geometry: shapely.Geometry) -> dict[str, Any]:
    import json

    return json.loads(shapely.to_geojson(geometry))


# ---------------------------------------------------------------------------------------------------------------
# Request parcels (gis_platform/analysis/parcel.py)
# ---------------------------------------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(data=geojson_like, crs=crs_values)
def test_any_json_is_a_parcel_or_a_platform_error(data: Any, crs: Any) -> None:
    try:
        parcels = parcels_from_geojson(data, crs, plane=PLANE, max_vertices=MAX_VERTICES, max_parcels=5)
    except PlatformError as exc:
        assert str(exc).strip(), "a refusal must say why"
        return
    for parcel in parcels:  # anything accepted is a usable polygon in EPSG:4490 with finite coordinates
        assert parcel.geometry.geom_type in ("Polygon", "MultiPolygon")
        assert parcel.geometry.is_valid and parcel.geometry.area > 0
        assert all(math.isfinite(v) for v in parcel.geometry.bounds)


@PROPERTY_SETTINGS
@given(polygon=convex_polygons())
def test_valid_polygon_keeps_its_area(polygon: shapely.Polygon) -> None:
    (parcel,) = parcels_from_geojson(_geojson(polygon), "EPSG:4490", plane=PLANE, max_vertices=MAX_VERTICES)
    assert parcel.repairs == []
    assert geod_area(parcel.geometry) == pytest.approx(geod_area(polygon), rel=1e-9, abs=1e-6)


@PROPERTY_SETTINGS
@given(polygon=convex_polygons())
def test_reversed_ring_and_self_intersection_repairs_are_consistent(polygon: shapely.Polygon) -> None:
    # the same ring clockwise: the same parcel
    reversed_ring = shapely.Polygon(list(polygon.exterior.coords)[::-1])
    (parcel,) = parcels_from_geojson(_geojson(reversed_ring), None, plane=PLANE, max_vertices=MAX_VERTICES)
    assert geod_area(parcel.geometry) == pytest.approx(geod_area(polygon), rel=1e-9)
    # a bow-tie of the bounding box: repaired into valid parts whose area is at most the box's, never zero
    minx, miny, maxx, maxy = polygon.bounds
    bowtie = shapely.Polygon([(minx, miny), (maxx, maxy), (maxx, miny), (minx, maxy)])
    (fixed,) = parcels_from_geojson(_geojson(bowtie), "EPSG:4490", plane=PLANE, max_vertices=MAX_VERTICES)
    assert fixed.repairs and fixed.geometry.is_valid
    assert 0 < geod_area(fixed.geometry) <= geod_area(shapely.box(minx, miny, maxx, maxy)) * (1 + 1e-9)
    assert geod_area(fixed.geometry) == pytest.approx(geod_area(shapely.box(minx, miny, maxx, maxy)) / 2, rel=1e-3)


@PROPERTY_SETTINGS
@given(
    easting=st.floats(min_value=420_000, max_value=580_000),
    northing=st.floats(min_value=3_000_000, max_value=4_400_000),
    width=st.floats(min_value=5, max_value=2000),
    height=st.floats(min_value=5, max_value=2000),
    zone_prefix=st.booleans(),
)
def test_gauss_krueger_parcel_keeps_its_area(
    easting: float, northing: float, width: float, height: float, zone_prefix: bool
) -> None:
    # zone 38 (central meridian 114°E): EPSG:4526 carries the zone in front of the easting, EPSG:4547 does not
    epsg, x0 = (4526, 38_000_000 + easting) if zone_prefix else (4547, easting)
    box = shapely.box(x0, northing, x0 + width, northing + height)
    (parcel,) = parcels_from_geojson(_geojson(box), f"EPSG:{epsg}", plane=PLANE, max_vertices=MAX_VERTICES)
    planar = width * height
    # Gauss-Krüger scale at ≤ 80 km from the central meridian is within 1e-4 of 1 (area within 2e-4)
    assert geod_area(parcel.geometry) == pytest.approx(planar, rel=3e-4)
    back = Transformer.from_crs(4490, epsg, always_xy=True)
    xs, ys = back.transform(*parcel.geometry.exterior.xy)
    assert shapely.Polygon(zip(xs, ys, strict=True)).hausdorff_distance(box) < 0.01


bad_numbers = st.sampled_from([math.nan, math.inf, -math.inf])


@PROPERTY_SETTINGS
@given(
    polygon=convex_polygons(), bad=bad_numbers, where=st.integers(min_value=0, max_value=100), axis=st.integers(0, 1)
)
def test_non_finite_coordinates_are_refused_by_name(
    polygon: shapely.Polygon, bad: float, where: int, axis: int
) -> None:
    coords = [list(c) for c in polygon.exterior.coords]
    coords[1 + where % (len(coords) - 2)][axis] = bad  # not the first (closing) position
    data = {"type": "Polygon", "coordinates": [coords]}
    with pytest.raises(ParcelError, match="non-finite"):
        parcels_from_geojson(data, "EPSG:4490", plane=PLANE, max_vertices=MAX_VERTICES)
    shape = shapely.Polygon(coords)
    with pytest.raises(PlatformError, match=r"non-finite|not finite"):
        prepare_parcel(shape, None, plane=PLANE, max_vertices=MAX_VERTICES)


@pytest.mark.parametrize(
    "data",
    [
        {"type": "Polygon", "coordinates": []},
        {"type": "Polygon", "coordinates": [[]]},
        {"type": "MultiPolygon", "coordinates": [[[]]]},
        {"type": "Polygon"},
        {"type": "Feature", "geometry": None},
        {"type": "FeatureCollection", "features": []},
    ],
)
def test_empty_geometries_are_refused_by_name(data: dict[str, Any]) -> None:
    with pytest.raises(ParcelError, match=r"empty|no features|no geometry|malformed"):
        parcels_from_geojson(data, "EPSG:4490", plane=PLANE, max_vertices=MAX_VERTICES)
    with pytest.raises(ParcelError, match="empty"):
        prepare_parcel(shapely.Polygon(), None, plane=PLANE, max_vertices=MAX_VERTICES)


@settings(max_examples=25, deadline=None)
@given(polygon=convex_polygons(), extra=st.integers(min_value=1, max_value=5000))
def test_huge_geometries_are_refused_by_vertex_count(polygon: shapely.Polygon, extra: int) -> None:
    dense = shapely.segmentize(polygon, max_segment_length=polygon.length / (MAX_VERTICES + extra))
    vertices = shapely.get_num_coordinates(dense)
    assume(vertices > MAX_VERTICES)
    with pytest.raises(ParcelError, match=f"{vertices} vertices, more than the limit of {MAX_VERTICES}"):
        parcels_from_geojson(_geojson(dense), "EPSG:4490", plane=PLANE, max_vertices=MAX_VERTICES)


@PROPERTY_SETTINGS
@given(polygon=convex_polygons(), crs=st.sampled_from(["EPSG:4527", "EPSG:4547", "EPSG:4513", "EPSG:4554"]))
def test_degrees_under_a_metre_crs_are_refused_by_name(polygon: shapely.Polygon, crs: str) -> None:
    with pytest.raises(CRSError) as refused:
        parcels_from_geojson(_geojson(polygon), crs, plane=PLANE, max_vertices=MAX_VERTICES)
    assert refused.value.message


@PROPERTY_SETTINGS
@given(
    x=st.floats(min_value=300_000, max_value=40_000_000),
    y=st.floats(min_value=2_000_000, max_value=6_000_000),
    crs=st.sampled_from([None, "EPSG:4490", "EPSG:4326"]),
)
def test_metres_under_a_degree_crs_are_refused_by_name(x: float, y: float, crs: str | None) -> None:
    box = shapely.box(x, y, x + 100, y + 100)
    with pytest.raises(CRSError):
        parcels_from_geojson(_geojson(box), crs, plane=PLANE, max_vertices=MAX_VERTICES)


@pytest.mark.parametrize("crs", ["EPSG:999999", "not a crs", "+proj=nonsense", "EPSG:", "ESRI:0"])
def test_unknown_or_foreign_crs_is_refused_by_name(crs: str) -> None:
    data = {"type": "Polygon", "coordinates": [[[114.8, 34.8], [114.81, 34.8], [114.81, 34.81], [114.8, 34.8]]]}
    with pytest.raises(CRSError):
        parcels_from_geojson(data, crs, plane=PLANE, max_vertices=MAX_VERTICES)


# ---------------------------------------------------------------------------------------------------------------
# Boundary-coordinate TXT (gis_platform/ingest/boundary_txt.py)
# ---------------------------------------------------------------------------------------------------------------

HEADER_LINES = [
    "[属性描述]",
    "格式版本号=1.01版本",
    "坐标系=2000国家大地坐标系",
    "几度分带=3",
    "投影类型=高斯克吕格",
    "计量单位=米",
    "带号=38",
    "精度=0.0001",
    "转换参数=,,,,,,",
    "[地块坐标]",
]
tokens = st.one_of(
    st.sampled_from(["1", "2", "5", "0", "-1", "面", "线", "点", "@", "", "nan", "inf", "1e309", "３８", "J1", "DK"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(min_value=3_000_000, max_value=40_000_000).map(lambda v: f"{v:.3f}"),
    st.text(max_size=6),
)
txt_lines = st.one_of(
    st.sampled_from([*HEADER_LINES, "[地块坐标]", "[属性描述]", "带号=39", "带号=abc", "坐标系=北京54", "计量单位=度"]),
    st.lists(tokens, min_size=1, max_size=10).map(",".join),
    st.builds(
        lambda n, ring, x, y: f"J{n},{ring},{x},{y}",
        st.integers(0, 9),
        st.sampled_from(["1", "2", "0", "x"]),
        st.floats(min_value=3_380_000, max_value=3_390_000, allow_nan=False) | tokens,
        st.floats(min_value=38_527_000, max_value=38_529_000, allow_nan=False) | tokens,
    ),
    st.text(max_size=30),
)


def _read_txt(text: str, encoding: str = "utf-8") -> Any:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "界址点.txt"
        path.write_bytes(text.encode(encoding, errors="replace"))
        return read_boundary_txt(path)


@PROPERTY_SETTINGS
@given(body=st.lists(txt_lines, max_size=25), keep_header=st.booleans(), newline=st.sampled_from(["\n", "\r\n", "\r"]))
def test_any_boundary_txt_is_read_or_refused_with_an_input_error(
    body: list[str], keep_header: bool, newline: str
) -> None:
    lines = (HEADER_LINES if keep_header else []) + body
    try:
        data = _read_txt(newline.join(lines))
    except InputFileError as exc:
        assert str(exc).strip()
        return
    assert len(data.geometries) == len(data.attributes)


@PROPERTY_SETTINGS
@given(raw=st.binary(max_size=400))
def test_any_bytes_as_boundary_txt_are_read_or_refused(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "parcel.txt"
        path.write_bytes(raw)
        try:
            read_boundary_txt(path)
        except InputFileError as exc:
            assert str(exc).strip()


@PROPERTY_SETTINGS
@given(
    n0=st.floats(min_value=3_000_000, max_value=4_000_000),
    e0=st.floats(min_value=430_000, max_value=570_000),
    width=st.floats(min_value=1, max_value=1000),
    height=st.floats(min_value=1, max_value=1000),
)
def test_boundary_txt_rectangle_keeps_its_area(n0: float, e0: float, width: float, height: float) -> None:
    e0 += 38_000_000
    corners = [(n0, e0), (n0, e0 + width), (n0 + height, e0 + width), (n0 + height, e0), (n0, e0)]
    corners = [(round(x, 4), round(y, 4)) for x, y in corners]
    points = [f"J{i + 1},1,{x:.4f},{y:.4f}" for i, (x, y) in enumerate(corners)]
    data = _read_txt("\r\n".join([*HEADER_LINES, "5,,DK-01,地块,面,,,,@", *points]))
    (geometry,) = data.geometries
    expected = shapely.Polygon([(y, x) for x, y in corners]).area  # x is the northing, y the easting
    assert geometry.area == pytest.approx(expected, rel=1e-9)
    parcel = prepare_parcel(geometry, data.crs, plane=PLANE, max_vertices=MAX_VERTICES, allow_prefix_inference=True)
    assert geod_area(parcel.geometry) == pytest.approx(geometry.area, rel=3e-4)


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "1e400"])
def test_boundary_txt_non_finite_coordinates_are_refused_by_name(bad: str) -> None:
    points = [
        "J1,1,3385000.000,38528000.000",
        f"J2,1,{bad},38528100.000",
        "J3,1,3385080.000,38528100.000",
        "J1,1,3385000.000,38528000.000",
    ]
    with pytest.raises(InputFileError, match=r"not a number|not finite|non-finite"):
        _read_txt("\r\n".join([*HEADER_LINES, "4,,DK-01,地块,面,,,,@", *points]))
