"""The 国土 boundary-coordinate TXT reader (界址点坐标 exchange format)."""

from __future__ import annotations

import codecs
import math
from pathlib import Path

import numpy as np
import pyproj
import pytest
import shapely
from shapely.geometry import LineString, MultiPolygon, Polygon

from gis_platform.crs import transformer_to_storage
from gis_platform.errors import CRSError, EncodingDetectionError, InputFileError
from gis_platform.ingest.boundary_txt import read_boundary_txt
from gis_platform.ingest.source import SourceData

HEADER = {
    "格式版本号": "1.01版本",
    "数据产生单位": "某县自然资源局",
    "数据产生日期": "2024-05-20",
    "坐标系": "2000国家大地坐标系",
    "几度分带": "3",
    "投影类型": "高斯克吕格",
    "计量单位": "米",
    "带号": "38",
    "精度": "0.0001",
    "转换参数": ",,,,,,",
}

# A 100 m × 80 m rectangle as (X northing, Y easting) pairs, prefixed with zone 38.
N0, E0 = 3_385_000.0, 38_528_000.0
RECT = [(N0, E0), (N0, E0 + 100), (N0 + 80, E0 + 100), (N0 + 80, E0)]


def _shoelace(points: list[tuple[float, float]]) -> float:
    """Planar area of a ring given as (x, y) pairs, computed independently of shapely."""
    total = 0.0
    for (x1, y1), (x2, y2) in zip(points, points[1:] + points[:1], strict=True):
        total += x1 * y2 - x2 * y1
    return abs(total) / 2


def _points(ring: list[tuple[float, float]], number: int, *, start: int = 1, close: bool = True,
            sep: str = ",") -> list[str]:
    lines = [sep.join([f"J{start + i}", str(number), f"{x:.3f}", f"{y:.3f}"]) for i, (x, y) in enumerate(ring)]
    if close:
        x, y = ring[0]
        lines.append(sep.join([f"J{start}", str(number), f"{x:.3f}", f"{y:.3f}"]))
    return lines


def _parcel(count: int, area: str = "0.8000", dkbh: str = "DK-01", name: str = "城关镇安置区", kind: str = "面",
            tfh: str = "H50G001001", use: str = "建设用地", dlbm: str = "0701") -> str:
    return f"{count},{area},{dkbh},{name},{kind},{tfh},{use},{dlbm},@"


def _write(tmp_path: Path, body: list[str], *, header: dict[str, str] | None = None, encoding: str = "utf-8",
           bom: bool = False, newline: str = "\r\n", name: str = "红线.txt") -> Path:
    head = HEADER if header is None else header
    lines = ["[属性描述]", *(f"{k}={v}" for k, v in head.items()), "[地块坐标]", *body]
    data = (newline.join(lines) + newline).encode(encoding)
    path = tmp_path / name
    path.write_bytes((codecs.BOM_UTF8 if bom else b"") + data)
    return path


def _simple(tmp_path: Path, **kwargs: object) -> SourceData:
    return read_boundary_txt(_write(tmp_path, [_parcel(5), *_points(RECT, 1)], **kwargs))  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------
# Geometry and axis order
# ----------------------------------------------------------------------------------------------


def test_axis_order_x_is_northing(tmp_path: Path) -> None:
    data = _simple(tmp_path)
    assert data.format == "boundary-txt"
    assert len(data.geometries) == 1
    polygon = data.geometries[0]
    assert isinstance(polygon, Polygon)
    minx, miny, maxx, maxy = polygon.bounds
    # x of the output = Y column (easting), y = X column (northing)
    assert (minx, maxx) == (E0, E0 + 100)
    assert (miny, maxy) == (N0, N0 + 80)
    expected = {(e, n) for n, e in RECT}
    assert set(polygon.exterior.coords) == expected
    assert polygon.area == pytest.approx(_shoelace([(e, n) for n, e in RECT]))
    assert polygon.area == pytest.approx(8000.0)


def test_attributes_and_meta(tmp_path: Path) -> None:
    data = _simple(tmp_path)
    row = data.attributes.iloc[0]
    assert row["DKBH"] == "DK-01"
    assert row["DKMC"] == "城关镇安置区"
    assert row["TFH"] == "H50G001001"
    assert row["DKYT"] == "建设用地"
    assert row["DLBM"] == "0701"
    assert row["HEADER_AREA_HA"] == pytest.approx(0.8)
    assert row["JZDS"] == 5
    assert row["PLANAR_AREA_HA"] == pytest.approx(0.8)
    assert data.meta == HEADER
    assert data.source_name == "红线.txt"
    assert not any("公顷" in note for note in data.notes)  # areas agree: no note


def test_crs_from_prefix_and_header(tmp_path: Path) -> None:
    data = _simple(tmp_path)
    assert data.resolved_crs is not None
    assert (data.resolved_crs.epsg, data.resolved_crs.zone, data.resolved_crs.prefixed) == (4526, 38, True)
    assert data.crs is not None and data.crs.to_epsg() == 4526


def test_round_trip_to_storage_matches_independent_transform(tmp_path: Path) -> None:
    data = _simple(tmp_path)
    assert data.resolved_crs is not None
    transformed = shapely.transform(
        data.geometries, lambda xy: np.column_stack(transformer_to_storage(data.resolved_crs.crs).transform(
            xy[:, 0], xy[:, 1])),
    )[0]
    reference = pyproj.Transformer.from_crs("EPSG:4526", "EPSG:4490", always_xy=True)
    raw_y_east = [e for _, e in RECT]
    raw_x_north = [n for n, _ in RECT]
    lons, lats = reference.transform(raw_y_east, raw_x_north)
    expected = set(zip(np.round(lons, 10), np.round(lats, 10), strict=True))
    got = {(round(x, 10), round(y, 10)) for x, y in transformed.exterior.coords}
    assert got == expected
    lon, lat = transformed.centroid.x, transformed.centroid.y
    assert 112.5 < lon < 115.5 and 30 < lat < 31  # zone 38, about 30.6°N


def test_hole_ring(tmp_path: Path) -> None:
    outer = [(N0, E0), (N0, E0 + 200), (N0 + 200, E0 + 200), (N0 + 200, E0)]
    hole = [(N0 + 50, E0 + 50), (N0 + 50, E0 + 100), (N0 + 100, E0 + 100), (N0 + 100, E0 + 50)]
    body = [_parcel(10, area="3.7500"), *_points(outer, 1), *_points(hole, 2, start=5)]
    data = read_boundary_txt(_write(tmp_path, body))
    polygon = data.geometries[0]
    assert isinstance(polygon, Polygon)
    assert len(polygon.interiors) == 1
    assert set(polygon.interiors[0].coords) == {(e, n) for n, e in hole}
    expected = _shoelace([(e, n) for n, e in outer]) - _shoelace([(e, n) for n, e in hole])
    assert polygon.area == pytest.approx(expected) == pytest.approx(37_500.0)
    assert data.attributes.iloc[0]["PLANAR_AREA_HA"] == pytest.approx(3.75)


def test_missing_closing_point_is_accepted_with_note(tmp_path: Path) -> None:
    closed = _simple(tmp_path)
    open_path = _write(tmp_path, [_parcel(4), *_points(RECT, 1, close=False)], name="open.txt")
    unclosed = read_boundary_txt(open_path)
    assert unclosed.geometries[0].equals(closed.geometries[0])
    assert any("closed automatically" in note for note in unclosed.notes)


def test_point_count_differing_only_by_closing_point_is_a_note(tmp_path: Path) -> None:
    data = read_boundary_txt(_write(tmp_path, [_parcel(4), *_points(RECT, 1)]))  # 4 distinct, 5 lines
    assert len(data.geometries) == 1
    assert any("closing point" in note for note in data.notes)


def test_several_parcels(tmp_path: Path) -> None:
    body: list[str] = []
    for i in range(3):
        ring = [(n + i * 1000, e) for n, e in RECT]
        body += [_parcel(5, dkbh=f"DK-0{i + 1}", name=f"地块{i + 1}"), *_points(ring, 1)]
    data = read_boundary_txt(_write(tmp_path, body))
    assert list(data.attributes["DKBH"]) == ["DK-01", "DK-02", "DK-03"]
    assert list(data.attributes["DKMC"]) == ["地块1", "地块2", "地块3"]
    assert [g.bounds[1] for g in data.geometries] == [N0, N0 + 1000, N0 + 2000]
    assert all(g.area == pytest.approx(8000.0) for g in data.geometries)


def test_multipart_ring_outside_the_outer(tmp_path: Path) -> None:
    far = [(n + 500, e) for n, e in RECT]
    body = [_parcel(10, area="1.6000"), *_points(RECT, 1), *_points(far, 2, start=5)]
    data = read_boundary_txt(_write(tmp_path, body))
    assert isinstance(data.geometries[0], MultiPolygon)
    assert data.geometries[0].area == pytest.approx(16_000.0)
    assert any("not a hole" in note for note in data.notes)


def test_line_parcel(tmp_path: Path) -> None:
    body = [_parcel(3, area="", kind="线"), *_points(RECT[:3], 1, close=False)]
    data = read_boundary_txt(_write(tmp_path, body))
    assert isinstance(data.geometries[0], LineString)
    assert data.geometries[0].length == pytest.approx(180.0)


# ----------------------------------------------------------------------------------------------
# Encodings and separators
# ----------------------------------------------------------------------------------------------


def test_gbk_file(tmp_path: Path) -> None:
    data = _simple(tmp_path, encoding="gbk")
    assert data.encoding == "GB18030"
    assert data.attributes.iloc[0]["DKMC"] == "城关镇安置区"
    assert data.meta["坐标系"] == "2000国家大地坐标系"


def test_utf8_bom_file(tmp_path: Path) -> None:
    data = _simple(tmp_path, bom=True)
    assert data.encoding == "UTF-8-SIG"
    assert data.meta["格式版本号"] == "1.01版本"
    assert data.resolved_crs is not None and data.resolved_crs.epsg == 4526


def test_undecodable_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(b"[\x80\xff\xfe]\n\x81\x00")
    with pytest.raises(EncodingDetectionError, match=r"bad\.txt"):
        read_boundary_txt(path)


def test_full_width_commas_spaces_blank_lines_trailing_spaces(tmp_path: Path) -> None:
    n, e = RECT[0]
    body = [
        "",
        "5，0.8000，DK-01，城关镇安置区，面，H50G001001，建设用地，0701，@   ",
        f"J1，1，{n:.3f}，{e:.3f}",
        "",
        f"J2 1 {RECT[1][0]:.3f}   {RECT[1][1]:.3f}   ",
        f"J3, 1, {RECT[2][0]:.3f}, {RECT[2][1]:.3f}",
        f"J4\t1\t{RECT[3][0]:.3f}\t{RECT[3][1]:.3f}",
        f"J1 ,1 ,{n:.3f} ,{e:.3f}  ",
        "   ",
    ]
    data = read_boundary_txt(_write(tmp_path, body, newline="\r\n"))
    assert data.geometries[0].equals(Polygon([(e, n) for n, e in RECT]))
    assert len(data.geometries[0].exterior.coords) == 5
    assert data.attributes.iloc[0]["DKMC"] == "城关镇安置区"
    assert data.attributes.iloc[0]["DLBM"] == "0701"


def test_lf_and_cr_newlines(tmp_path: Path) -> None:
    for newline in ("\n", "\r"):
        data = _simple(tmp_path, newline=newline)
        assert data.geometries[0].area == pytest.approx(8000.0)


# ----------------------------------------------------------------------------------------------
# CRS from the header
# ----------------------------------------------------------------------------------------------


def test_bare_eastings_with_header_zone(tmp_path: Path) -> None:
    ring = [(n, e - 38_000_000) for n, e in RECT]
    data = read_boundary_txt(_write(tmp_path, [_parcel(5), *_points(ring, 1)]))
    assert data.resolved_crs is not None
    assert (data.resolved_crs.epsg, data.resolved_crs.source) == (4547, "header")
    assert data.geometries[0].bounds[0] == 528_000.0


def test_header_zone_as_central_meridian(tmp_path: Path) -> None:
    ring = [(n, e - 38_000_000) for n, e in RECT]
    data = read_boundary_txt(_write(tmp_path, [_parcel(5), *_points(ring, 1)], header={**HEADER, "带号": "114°"}))
    assert data.resolved_crs is not None and data.resolved_crs.epsg == 4547


def test_northing_starting_with_40_is_not_a_zone(tmp_path: Path) -> None:
    ring = [(4_012_345.67 + dn, 512_345.67 + de) for dn, de in ((0, 0), (0, 100), (100, 100), (100, 0))]
    data = read_boundary_txt(_write(tmp_path, [_parcel(5, area="1.0000"), *_points(ring, 1)]))
    assert data.resolved_crs is not None
    assert (data.resolved_crs.epsg, data.resolved_crs.zone) == (4547, 38)


def test_prefixed_eastings_without_header_zone(tmp_path: Path) -> None:
    header = {k: v for k, v in HEADER.items() if k != "带号"}
    data = read_boundary_txt(_write(tmp_path, [_parcel(5), *_points(RECT, 1)], header=header))
    assert data.resolved_crs is not None
    assert (data.resolved_crs.epsg, data.resolved_crs.source) == (4526, "prefix")


def test_no_zone_anywhere_leaves_crs_to_the_importer(tmp_path: Path) -> None:
    header = {k: v for k, v in HEADER.items() if k != "带号"}
    ring = [(n, e - 38_000_000) for n, e in RECT]
    data = read_boundary_txt(_write(tmp_path, [_parcel(5), *_points(ring, 1)], header=header))
    assert data.resolved_crs is None and data.crs is None
    assert any("--crs" in note for note in data.notes)


def test_header_zone_mismatch(tmp_path: Path) -> None:
    path = _write(tmp_path, [_parcel(5), *_points(RECT, 1)], header={**HEADER, "带号": "37"})
    with pytest.raises(CRSError) as info:
        read_boundary_txt(path)
    message = str(info.value)
    assert "带号 37 in the header but the eastings carry zone 38" in message
    assert "红线.txt" in message and "line 9" in message  # 带号 is on line 9


def test_six_degree_zones_unsupported(tmp_path: Path) -> None:
    path = _write(tmp_path, [_parcel(5), *_points(RECT, 1)], header={**HEADER, "几度分带": "6"})
    with pytest.raises(CRSError, match="6-degree"):
        read_boundary_txt(path)


@pytest.mark.parametrize(("datum", "named"), [("1980西安坐标系", "西安80"), ("北京54", "北京54")])
def test_legacy_datums_unsupported(tmp_path: Path, datum: str, named: str) -> None:
    path = _write(tmp_path, [_parcel(5), *_points(RECT, 1)], header={**HEADER, "坐标系": datum})
    with pytest.raises(CRSError, match=named):
        read_boundary_txt(path)


def test_degree_coordinates_rejected(tmp_path: Path) -> None:
    ring = [(30.5, 114.1), (30.5, 114.2), (30.6, 114.2), (30.6, 114.1)]
    with pytest.raises(CRSError, match="degrees"):
        read_boundary_txt(_write(tmp_path, [_parcel(5), *_points(ring, 1)]))


# ----------------------------------------------------------------------------------------------
# Validation errors
# ----------------------------------------------------------------------------------------------


def test_wrong_unit(tmp_path: Path) -> None:
    path = _write(tmp_path, [_parcel(5), *_points(RECT, 1)], header={**HEADER, "计量单位": "千米"})
    with pytest.raises(InputFileError) as info:
        read_boundary_txt(path)
    assert "计量单位" in str(info.value) and "line 8" in str(info.value)


def test_truncated_file(tmp_path: Path) -> None:
    lines = _points(RECT, 1)[:3]  # 3 of the 5 declared points, then the file ends
    path = _write(tmp_path, [_parcel(5), *lines])
    with pytest.raises(InputFileError) as info:
        read_boundary_txt(path)
    message = str(info.value)
    assert "line 13" in message  # the parcel line: 1 + 10 header lines + [地块坐标] + 1
    assert "界址点数 5" in message and "3 point lines" in message and "truncated" in message


def test_point_count_mismatch_between_parcels(tmp_path: Path) -> None:
    body = [_parcel(9), *_points(RECT, 1), _parcel(5, dkbh="DK-02"), *_points(RECT, 1)]
    with pytest.raises(InputFileError, match=r"line 13.*界址点数 9"):
        read_boundary_txt(_write(tmp_path, body))


def test_non_numeric_coordinate(tmp_path: Path) -> None:
    lines = _points(RECT, 1)
    lines[2] = lines[2].replace("3385080.000", "3385O80.000")  # letter O typed for a zero
    with pytest.raises(InputFileError) as info:
        read_boundary_txt(_write(tmp_path, [_parcel(5), *lines]))
    assert "line 16" in str(info.value) and "3385O80.000" in str(info.value)


def test_ring_with_too_few_points(tmp_path: Path) -> None:
    body = [_parcel(3), *_points(RECT[:2], 1)]
    with pytest.raises(InputFileError, match="2 distinct points"):
        read_boundary_txt(_write(tmp_path, body))


def test_missing_coordinate_section(tmp_path: Path) -> None:
    path = tmp_path / "header_only.txt"
    path.write_text("[属性描述]\n坐标系=2000国家大地坐标系\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=r"\[地块坐标\]"):
        read_boundary_txt(path)


def test_area_mismatch_is_noted(tmp_path: Path) -> None:
    data = read_boundary_txt(_write(tmp_path, [_parcel(5, area="0.9000"), *_points(RECT, 1)]))
    row = data.attributes.iloc[0]
    assert row["HEADER_AREA_HA"] == pytest.approx(0.9)
    assert row["PLANAR_AREA_HA"] == pytest.approx(0.8)
    assert row["AREA_DIFF_PCT"] == pytest.approx((0.8 - 0.9) / 0.9 * 100)
    assert any("0.9000 公顷" in note and "0.8000 公顷" in note for note in data.notes)


def test_area_within_tolerance_is_not_noted(tmp_path: Path) -> None:
    data = read_boundary_txt(_write(tmp_path, [_parcel(5, area="0.8050"), *_points(RECT, 1)]))  # 0.6 %
    assert not any("公顷" in note for note in data.notes)
    assert math.isfinite(data.attributes.iloc[0]["AREA_DIFF_PCT"])


@pytest.mark.parametrize(
    "name", ["2000国家大地坐标系", "CGCS2000", "国家2000坐标系", "China Geodetic Coordinate System 2000"]
)
def test_cgcs2000_names_accepted(tmp_path: Path, name: str) -> None:
    data = read_boundary_txt(_write(tmp_path, [_parcel(5), *_points(RECT, 1)], header={**HEADER, "坐标系": name}))
    assert data.resolved_crs is not None and data.resolved_crs.epsg == 4526


@pytest.mark.parametrize(("key", "value", "line"), [("坐标系", "WGS84", 5), ("带号", "带号三十八", 9)])
def test_nonsense_header_values(tmp_path: Path, key: str, value: str, line: int) -> None:
    path = _write(tmp_path, [_parcel(5), *_points(RECT, 1)], header={**HEADER, key: value})
    with pytest.raises(CRSError) as info:
        read_boundary_txt(path)
    assert value in str(info.value) and f"line {line}" in str(info.value)
