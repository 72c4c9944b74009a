"""Boundary TXT, DXF and GeoPackage through the whole import path into PostGIS."""

from __future__ import annotations

from pathlib import Path

import ezdxf
import geopandas as gpd
import pytest
import shapely
from sqlalchemy import Engine, text

from gis_platform.catalog import Catalog
from gis_platform.errors import CRSError
from gis_platform.ingest.pipeline import import_file
from gis_platform.settings import Settings

from .helpers import geod_area, gk_to_lonlat

pytestmark = pytest.mark.db

TXT = """[属性描述]
坐标系=2000国家大地坐标系
几度分带=3
投影类型=高斯克吕格
计量单位=米
带号=38
[地块坐标]
5,1.0000,DK-01,城关镇安置区,面,H50G001001,建设用地,0701,@
J1,1,3850000.000,38520000.000
J2,1,3850000.000,38520100.000
J3,1,3850100.000,38520100.000
J4,1,3850100.000,38520000.000
J1,1,3850000.000,38520000.000
10,0.8400,DK-02,李集工业园,面,H50G001001,工业用地,1001,@
J1,1,3851000.000,38521000.000
J2,1,3851000.000,38521100.000
J3,1,3851100.000,38521100.000
J4,1,3851100.000,38521000.000
J1,1,3851000.000,38521000.000
J5,2,3851040.000,38521040.000
J6,2,3851040.000,38521080.000
J7,2,3851080.000,38521080.000
J8,2,3851080.000,38521040.000
J5,2,3851040.000,38521040.000
"""


def test_boundary_txt_in_gbk_with_hole(engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "界址点.txt"
    path.write_bytes(TXT.replace("\n", "\r\n").encode("gbk"))
    report = import_file(engine, catalog, settings, path, "YDYHGHFQ")
    assert report.features_imported == 2 and report.source_crs == "EPSG:4526"
    # independent: (Y easting, X northing) rings, transformed by pyproj
    outer1 = shapely.box(38_520_000, 3_850_000, 38_520_100, 3_850_100)
    outer2 = shapely.Polygon(
        shapely.box(38_521_000, 3_851_000, 38_521_100, 3_851_100).exterior,
        [shapely.box(38_521_040, 3_851_040, 38_521_080, 3_851_080).exterior],
    )
    expected = [geod_area(gk_to_lonlat(g, 4526)) for g in (outer1, outer2)]
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT properties, area_m2 FROM feature ORDER BY source_fid")).all()
    assert [r.properties["DKMC"] for r in rows] == ["城关镇安置区", "李集工业园"]
    assert [r.area_m2 for r in rows] == pytest.approx(expected, abs=0.01)
    assert expected[1] < expected[0]  # the hole is subtracted


def test_boundary_txt_header_zone_mismatch_is_refused(
    engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "wrong_zone.txt"
    path.write_text(TXT.replace("带号=38", "带号=37"), encoding="utf-8")
    with pytest.raises(CRSError, match="37"):
        import_file(engine, catalog, settings, path, "YDYHGHFQ")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM layer_version")).scalar() == 0


def test_dxf_needs_crs_and_imports_with_it(
    engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    doc = ezdxf.new()
    msp = doc.modelspace()
    ring = [(520_000, 3_850_000), (520_200, 3_850_000), (520_200, 3_850_150), (520_000, 3_850_150)]
    msp.add_lwpolyline(ring, close=True, dxfattribs={"layer": "红线"})
    path = tmp_path / "parcel.dxf"
    doc.saveas(path)
    with pytest.raises(CRSError, match="--crs"):
        import_file(engine, catalog, settings, path, "CZKFBJ")
    report = import_file(engine, catalog, settings, path, "CZKFBJ", crs="EPSG:4547")
    assert report.area_total_m2 == pytest.approx(geod_area(gk_to_lonlat(shapely.Polygon(ring), 4547)), abs=0.01)


def test_geopackage_in_gauss_kruger(engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path) -> None:
    squares = [shapely.box(38_500_000 + i * 300, 3_850_000, 38_500_200 + i * 300, 3_850_200) for i in range(3)]
    frame = gpd.GeoDataFrame(
        {"dlbm": ["0101", "0103", "0301"], "DLMC": ["水田", "旱地", "乔木林地"], "TBMJ": [40000.0] * 3},
        geometry=squares,
        crs="EPSG:4526",
    )
    path = tmp_path / "dltb.gpkg"
    frame.to_file(path, layer="DLTB", engine="pyogrio")
    report = import_file(engine, catalog, settings, path, "DLTB")
    assert report.source_crs == "EPSG:4526" and report.features_imported == 3
    assert report.area_total_m2 == pytest.approx(sum(geod_area(gk_to_lonlat(s, 4526)) for s in squares), abs=0.03)
    with engine.connect() as conn:
        names = conn.execute(text("SELECT properties->>'DLMC' FROM feature ORDER BY source_fid")).scalars().all()
        codes = conn.execute(text("SELECT properties->>'DLBM' FROM feature ORDER BY source_fid")).scalars().all()
    assert names == ["水田", "旱地", "乔木林地"] and codes == ["0101", "0103", "0301"]
