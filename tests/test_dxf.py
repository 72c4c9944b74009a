"""The DXF reader: closed polylines and hatches as polygons, holes by containment."""

from __future__ import annotations

import math
from pathlib import Path

import ezdxf
import pytest
from ezdxf.document import Drawing
from ezdxf.layouts import Modelspace
from shapely.geometry import Polygon

from gis_platform.errors import GeometryError, InputFileError
from gis_platform.ingest.dxf import read_dxf

E0, N0 = 528_000.0, 3_385_000.0


def _square(x: float, y: float, size: float) -> list[tuple[float, float]]:
    return [(x, y), (x + size, y), (x + size, y + size), (x, y + size)]


def _new(version: str = "R2010") -> tuple[Drawing, Modelspace]:
    doc = ezdxf.new(version)
    return doc, doc.modelspace()


def _save(doc: Drawing, tmp_path: Path, name: str = "红线.dxf") -> Path:
    path = tmp_path / name
    doc.saveas(path)
    return path


def test_square_with_hole(tmp_path: Path) -> None:
    doc, msp = _new()
    doc.layers.add("用地红线")
    outer = msp.add_lwpolyline(_square(E0, N0, 100), close=True, dxfattribs={"layer": "用地红线"})
    hole = msp.add_lwpolyline(_square(E0 + 40, N0 + 40, 20), close=True, dxfattribs={"layer": "用地红线"})
    data = read_dxf(_save(doc, tmp_path))
    assert data.format == "dxf" and data.crs is None and data.resolved_crs is None
    assert len(data.geometries) == 1
    polygon = data.geometries[0]
    assert isinstance(polygon, Polygon)
    assert polygon.area == pytest.approx(100 * 100 - 20 * 20)
    assert len(polygon.interiors) == 1
    assert set(polygon.interiors[0].coords) == set(_square(E0 + 40, N0 + 40, 20))
    assert set(polygon.exterior.coords) == set(_square(E0, N0, 100))
    row = data.attributes.iloc[0]
    assert row["DXF_LAYER"] == "用地红线"
    assert row["DXF_HANDLE"] == outer.dxf.handle
    assert row["DXF_HOLE_HANDLES"] == hole.dxf.handle
    assert row["DXF_ENTITY"] == "LWPOLYLINE"


def test_island_inside_hole_is_a_new_polygon(tmp_path: Path) -> None:
    doc, msp = _new()
    msp.add_lwpolyline(_square(E0, N0, 100), close=True)
    msp.add_lwpolyline(_square(E0 + 20, N0 + 20, 60), close=True)
    msp.add_lwpolyline(_square(E0 + 40, N0 + 40, 20), close=True)
    data = read_dxf(_save(doc, tmp_path))
    areas = sorted(g.area for g in data.geometries)
    assert areas == [pytest.approx(400.0), pytest.approx(10_000 - 3_600)]


def test_outlines_on_other_layers_are_not_holes(tmp_path: Path) -> None:
    doc, msp = _new()
    msp.add_lwpolyline(_square(E0 - 1000, N0 - 1000, 5000), close=True, dxfattribs={"layer": "图框"})
    msp.add_lwpolyline(_square(E0, N0, 100), close=True, dxfattribs={"layer": "红线"})
    data = read_dxf(_save(doc, tmp_path))
    assert sorted(g.area for g in data.geometries) == [pytest.approx(10_000.0), pytest.approx(25_000_000.0)]
    assert all(len(g.interiors) == 0 for g in data.geometries)


def test_open_polyline_ignored_and_counted(tmp_path: Path) -> None:
    doc, msp = _new()
    msp.add_lwpolyline(_square(E0, N0, 100), close=True)
    msp.add_lwpolyline(_square(E0 + 200, N0, 100))  # not closed
    msp.add_lwpolyline([(E0, N0 + 300), (E0 + 50, N0 + 350)])
    msp.add_line((E0, N0), (E0 + 1, N0 + 1))
    data = read_dxf(_save(doc, tmp_path))
    assert len(data.geometries) == 1
    assert any(note.startswith("2 open polyline") for note in data.notes)
    assert any("1 LINE" in note for note in data.notes)


def test_polyline_closed_by_repeating_its_first_vertex(tmp_path: Path) -> None:
    doc, msp = _new()
    msp.add_lwpolyline([*_square(E0, N0, 100), (E0, N0)])  # flag not set, last vertex = first
    data = read_dxf(_save(doc, tmp_path))
    assert data.geometries[0].area == pytest.approx(10_000.0)


def test_polyline_2d_and_3d(tmp_path: Path) -> None:
    doc, msp = _new()
    msp.add_polyline2d(_square(E0, N0, 100), close=True)
    msp.add_polyline3d([(x, y, 12.5) for x, y in _square(E0 + 500, N0, 50)], close=True)
    data = read_dxf(_save(doc, tmp_path))
    assert sorted(g.area for g in data.geometries) == [pytest.approx(2_500.0), pytest.approx(10_000.0)]
    assert set(data.attributes["DXF_ENTITY"]) == {"POLYLINE"}
    assert not any(g.has_z for g in data.geometries)


def test_bulge_arc_is_flattened_accurately(tmp_path: Path) -> None:
    doc, msp = _new()
    # triangle with a semicircle (bulge 1) on its east side: 5000 + π·50²/2 m²
    msp.add_lwpolyline([(E0, N0, 0), (E0 + 100, N0, 1), (E0 + 100, N0 + 100, 0)], format="xyb", close=True)
    data = read_dxf(_save(doc, tmp_path))
    polygon = data.geometries[0]
    assert polygon.area == pytest.approx(5_000 + math.pi * 50**2 / 2, abs=0.01)
    assert polygon.bounds[2] == pytest.approx(E0 + 150, abs=1e-3)  # bulges east, radius 50


def test_hatch_with_hole(tmp_path: Path) -> None:
    doc, msp = _new()
    hatch = msp.add_hatch(dxfattribs={"layer": "填充"})
    hatch.paths.add_polyline_path(_square(E0, N0, 100), is_closed=True)
    hatch.paths.add_polyline_path(_square(E0 + 10, N0 + 10, 30), is_closed=True)
    data = read_dxf(_save(doc, tmp_path))
    assert len(data.geometries) == 1
    assert data.geometries[0].area == pytest.approx(10_000 - 900)
    assert data.attributes.iloc[0]["DXF_ENTITY"] == "HATCH"
    assert data.attributes.iloc[0]["DXF_HANDLE"] == hatch.dxf.handle


def test_hatch_edge_path_with_arc(tmp_path: Path) -> None:
    doc, msp = _new()
    hatch = msp.add_hatch()
    edges = hatch.paths.add_edge_path()
    edges.add_line((0, 0), (10, 0))
    edges.add_arc((10, 5), 5, -90, 90)  # half circle to the east
    edges.add_line((10, 10), (0, 10))
    edges.add_line((0, 10), (0, 0))
    data = read_dxf(_save(doc, tmp_path))
    assert data.geometries[0].area == pytest.approx(100 + math.pi * 25 / 2, abs=1e-4)


def test_hatch_repeating_a_polyline_is_skipped(tmp_path: Path) -> None:
    doc, msp = _new()
    polyline = msp.add_lwpolyline(_square(E0, N0, 100), close=True)
    hatch = msp.add_hatch()
    hatch.paths.add_polyline_path(list(reversed(_square(E0, N0, 100))), is_closed=True)
    data = read_dxf(_save(doc, tmp_path))
    assert list(data.attributes["DXF_HANDLE"]) == [polyline.dxf.handle]
    assert any(hatch.dxf.handle in note and "skipped" in note for note in data.notes)


def test_mirrored_polyline_extrusion(tmp_path: Path) -> None:
    doc, msp = _new()
    # extrusion (0, 0, -1): OCS x runs west, so OCS x 0…10 is WCS x −10…0
    msp.add_lwpolyline(_square(0, 0, 10), close=True, dxfattribs={"extrusion": (0, 0, -1)})
    data = read_dxf(_save(doc, tmp_path))
    assert data.geometries[0].bounds == pytest.approx((-10.0, 0.0, 0.0, 10.0))


@pytest.mark.parametrize("declared", ["ANSI_936", "ANSI_1252"])
def test_gbk_layer_names_in_r2000(tmp_path: Path, declared: str) -> None:
    """Pre-2007 DXF stores text in a code page; Chinese CAD often writes GBK but declares ANSI_1252."""
    doc, msp = _new("R2000")
    doc.encoding = "cp936"
    doc.layers.add("永久基本农田")
    msp.add_lwpolyline(_square(E0, N0, 100), close=True, dxfattribs={"layer": "永久基本农田"})
    path = _save(doc, tmp_path, "r2000.dxf")
    raw = path.read_bytes().replace(b"ANSI_1252", declared.encode())
    path.write_bytes(raw)
    assert "永久基本农田".encode("gbk") in raw and f"$DWGCODEPAGE\n  3\n{declared}".encode() in raw
    data = read_dxf(path)
    assert data.attributes.iloc[0]["DXF_LAYER"] == "永久基本农田"
    assert any("GB18030" in note for note in data.notes) == (declared == "ANSI_1252")


def test_no_closed_outline(tmp_path: Path) -> None:
    doc, msp = _new()
    msp.add_lwpolyline(_square(E0, N0, 100))
    with pytest.raises(GeometryError, match="1 open polyline"):
        read_dxf(_save(doc, tmp_path))


@pytest.mark.parametrize(
    "content",
    [b"this is not a drawing\n\x00\xff", b"  0\nSECTION\n  2\nENTITIES\n  0\nLWPOLYLINE\n  8\n"],
)
def test_corrupt_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "corrupt.dxf"
    path.write_bytes(content)
    with pytest.raises(InputFileError, match=r"corrupt\.dxf"):
        read_dxf(path)


def test_truncated_file(tmp_path: Path) -> None:
    doc, msp = _new()
    for i in range(20):
        msp.add_lwpolyline(_square(E0 + i * 200, N0, 100), close=True)
    full = _save(doc, tmp_path)
    data = full.read_bytes()
    cut = tmp_path / "cut.dxf"
    cut.write_bytes(data[: len(data) * 3 // 4])
    assert len(read_dxf(full).geometries) == 20
    with pytest.raises(InputFileError, match=r"cut\.dxf"):
        read_dxf(cut)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match=r"nowhere\.dxf"):
        read_dxf(tmp_path / "nowhere.dxf")
