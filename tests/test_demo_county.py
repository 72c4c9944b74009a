"""Tests of the demo county generator (data/generate_demo_county.py), normal mode, no database needed."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import ezdxf
import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import pytest
import rasterio
import shapely
from shapely import STRtree

ROOT = Path(__file__).resolve().parents[1]
GEOD = pyproj.Geod(ellps="GRS80")
TO_GK = pyproj.Transformer.from_crs(4490, 4547, always_xy=True)
GK_TO_LONLAT = pyproj.Transformer.from_crs(4547, 4490, always_xy=True)


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_demo_county", ROOT / "data" / "generate_demo_county.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


generator = _load_generator()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo county generated once for the whole module."""
    return generator.generate(tmp_path_factory.mktemp("demo"), seed=42).parent


@pytest.fixture(scope="module")
def manifest(demo: Path) -> dict:
    return json.loads((demo / "manifest.json").read_text(encoding="utf-8"))


def layer_file(manifest: dict, code: str) -> str:
    return next(item["file"] for item in manifest["layers"] if item["code"] == code)


def read_layer(demo: Path, manifest: dict, code: str, **kwargs: Any) -> gpd.GeoDataFrame:
    return pyogrio.read_dataframe(demo / layer_file(manifest, code), **kwargs)


def in_gk(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """A layer reprojected to EPSG:4547 (planar metres) with pyproj, independently of the generator."""
    return frame.to_crs(4547)


def geodesic_area(lonlat_geom: shapely.Geometry) -> float:
    return abs(GEOD.geometry_area_perimeter(lonlat_geom)[0])


def gk_geodesic_area(gk_geom: shapely.Geometry) -> float:
    lonlat = shapely.transform(gk_geom, lambda c: np.column_stack(GK_TO_LONLAT.transform(c[:, 0], c[:, 1])))
    return geodesic_area(lonlat)


@pytest.fixture(scope="module")
def county(demo: Path) -> shapely.Geometry:
    return pyogrio.read_dataframe(demo / "county.geojson").geometry.iloc[0]


@pytest.fixture(scope="module")
def dltb(demo: Path, manifest: dict) -> gpd.GeoDataFrame:
    return read_layer(demo, manifest, "DLTB")


@pytest.fixture(scope="module")
def yjjbnt(demo: Path, manifest: dict) -> gpd.GeoDataFrame:
    return read_layer(demo, manifest, "YJJBNT", encoding="GBK")


# ---------------------------------------------------------------------------------------------------------------
# Manifest, files, determinism
# ---------------------------------------------------------------------------------------------------------------
def test_manifest_describes_every_layer_file(demo: Path, manifest: dict) -> None:
    codes = [item["code"] for item in manifest["layers"]]
    assert codes == ["XZQ", "DLTB", "YJJBNT", "STBHHX", "CZKFBJ", "GHFQ", "YDYHGHFQ", "DZZHYFQ", "DZZHD"]
    for item in manifest["layers"]:
        info = pyogrio.read_info(demo / item["file"])
        assert info["features"] == item["features"], item["code"]
        assert pyproj.CRS.from_user_input(info["crs"]).to_epsg() == int(item["crs"].split(":")[1]), item["code"]
    assert manifest["county"]["name"] == "示范县" and manifest["seed"] == 42 and manifest["scale"] is False
    assert 1.0e9 <= manifest["county"]["area_m2"] <= 2.0e9
    lon0, lat0, lon1, lat1 = manifest["county"]["bbox"]
    assert lon0 < 114.8 < lon1 and lat0 < 34.8 < lat1
    assert (demo / manifest["dem"]).is_file()


def test_same_seed_gives_identical_output(demo: Path, manifest: dict, tmp_path: Path) -> None:
    again = generator.generate(tmp_path / "again", seed=42).parent
    assert json.loads((again / "manifest.json").read_text(encoding="utf-8")) == manifest
    first = pyogrio.read_dataframe(demo / "dltb.gpkg")
    second = pyogrio.read_dataframe(again / "dltb.gpkg")
    assert np.array_equal(shapely.to_wkb(first.geometry.to_numpy()), shapely.to_wkb(second.geometry.to_numpy()))
    pd.testing.assert_frame_equal(first.drop(columns="geometry"), second.drop(columns="geometry"))
    for name in ("yjjbnt/yjjbnt.dbf", "yjjbnt/yjjbnt.shp", "stbhhx.zip", "xzq.geojson",
                 "parcels/jzd_two_parcels_gbk.txt", "dem.tif"):
        assert (demo / name).read_bytes() == (again / name).read_bytes(), name


def test_the_seed_drives_the_county() -> None:
    def outline(seed: int) -> shapely.Polygon:
        return generator.make_county_outline(np.random.default_rng(seed), 573_000.0, 3_852_000.0, 1.5e9)

    assert shapely.equals_exact(outline(42), outline(42), tolerance=0.0)
    assert not shapely.equals_exact(outline(42), outline(7), tolerance=1.0)
    assert outline(7).area == pytest.approx(1.5e9, rel=1e-9) and outline(7).is_valid


# ---------------------------------------------------------------------------------------------------------------
# Townships and survey patches
# ---------------------------------------------------------------------------------------------------------------
def test_townships_tessellate_the_county(demo: Path, manifest: dict, county: shapely.Geometry) -> None:
    xzq = read_layer(demo, manifest, "XZQ")
    assert 12 <= len(xzq) <= 20 and xzq["XZQMC"].is_unique and "城关镇" in set(xzq["XZQMC"])
    assert all(re.fullmatch(r"410299[12]\d\d", code) for code in xzq["XZQDM"])
    assert xzq["XZQMC"].str[-1].isin(["镇", "乡"]).all()
    geoms = xzq.geometry.to_numpy()
    union_area = geodesic_area(shapely.union_all(geoms))
    county_area = geodesic_area(county)
    assert union_area == pytest.approx(county_area, rel=1e-6)
    assert county_area == pytest.approx(manifest["county"]["area_m2"], abs=0.01)
    assert sum(geodesic_area(g) for g in geoms) == pytest.approx(county_area, rel=1e-6)
    left, right = STRtree(geoms).query(geoms, predicate="intersects")
    pairs = left < right
    overlaps = shapely.intersection(geoms[left[pairs]], geoms[right[pairs]])
    overlap_m2 = sum(geodesic_area(g) for g in overlaps if g.area > 0)
    assert overlap_m2 < 0.01
    assert xzq["MJ"].to_numpy() == pytest.approx([geodesic_area(g) for g in geoms], abs=0.01)


def test_dltb_patches_tessellate_the_county(dltb: gpd.GeoDataFrame, manifest: dict) -> None:
    assert 3_000 <= len(dltb) <= 30_000
    assert dltb["TBMJ"].sum() == pytest.approx(manifest["county"]["area_m2"], rel=1e-6)
    invalid = set(manifest["invalid_on_purpose"]["DLTB"])
    valid = dltb[~dltb["BSM"].isin(invalid)]
    geoms = shapely.transform(valid.geometry.to_numpy(), lambda c: c - [38_000_000.0, 0.0])
    left, right = STRtree(geoms).query(geoms, predicate="intersects")
    pairs = left < right
    overlap = shapely.area(shapely.intersection(geoms[left[pairs]], geoms[right[pairs]]))
    assert overlap.sum() < 1.0  # only the 0.1 mm snapping noise of shared edges


def test_dltb_codes_and_landscape_are_plausible(dltb: gpd.GeoDataFrame) -> None:
    assert set(dltb["DLBM"]) <= set(generator.DLTB_NAMES)
    assert (dltb["DLMC"] == dltb["DLBM"].map(generator.DLTB_NAMES)).all()
    assert "1203" not in set(dltb["DLBM"])  # 田坎 is a deduction (KCXS), not a patch, in 三调
    share = dltb.groupby(dltb["DLBM"].str[:2])["TBMJ"].sum() / dltb["TBMJ"].sum()
    assert share["01"] > 0.5  # farmland is the majority
    assert share["03"] > 0.03 and share["11"] > 0.005 and share["07"] > 0.01
    for column, width in (("ZLDWDM", 19), ("QSDWDM", 19)):
        assert dltb[column].str.fullmatch(rf"\d{{{width}}}").all()
    assert not dltb.duplicated(["ZLDWDM", "TBBH"]).any() and dltb["BSM"].is_unique
    assert (shapely.get_num_interior_rings(dltb.geometry.to_numpy()) > 0).any()  # ponds leave holes (岛)


def test_dltb_is_zone_prefixed_gauss_kruger(demo: Path) -> None:
    info = pyogrio.read_info(demo / "dltb.gpkg")
    assert pyproj.CRS.from_user_input(info["crs"]).to_epsg() == 4526
    xmin, _, xmax, _ = info["total_bounds"]
    assert 38_400_000 < xmin < xmax < 38_700_000


def test_kcxs_and_tbdlmj(dltb: gpd.GeoDataFrame) -> None:
    tbmj, kcxs = dltb["TBMJ"].to_numpy(), dltb["KCXS"].to_numpy()
    assert np.abs(dltb["TBDLMJ"].to_numpy() - (tbmj - tbmj * kcxs)).max() <= 0.01 + 1e-9
    assert np.abs(dltb["KCMJ"].to_numpy() - tbmj * kcxs).max() <= 0.005 + 1e-9
    dry = dltb["DLBM"].isin(["0102", "0103"]).to_numpy()
    assert ((kcxs[dry] >= 0.02) & (kcxs[dry] <= 0.15)).all()
    assert (kcxs[~dry] == 0.0).all()
    assert len(np.unique(kcxs[dry])) >= 2  # the hills have steeper grades than the plain


def test_tbmj_is_the_ellipsoidal_area(dltb: gpd.GeoDataFrame, manifest: dict) -> None:
    valid = dltb[~dltb["BSM"].isin(manifest["invalid_on_purpose"]["DLTB"])]
    lonlat = valid.to_crs(4490)
    areas = np.array([geodesic_area(g) for g in lonlat.geometry])
    assert np.abs(areas - valid["TBMJ"].to_numpy()).max() <= 0.011
    planar = shapely.area(valid.geometry.to_numpy())
    assert np.abs(planar - areas).max() > 0.5  # the planar Gauss-Krüger area would not have matched


def test_invalid_patches_are_exactly_the_announced_ones(dltb: gpd.GeoDataFrame, manifest: dict) -> None:
    announced = manifest["invalid_on_purpose"]["DLTB"]
    assert 2 <= len(announced) <= 3
    invalid = dltb.loc[~shapely.is_valid(dltb.geometry.to_numpy()), "BSM"]
    assert sorted(invalid) == sorted(announced)
    repaired = shapely.make_valid(dltb.loc[dltb["BSM"].isin(announced)].geometry.to_numpy())
    assert shapely.is_valid(repaired).all()
    assert {d["defect"] for d in manifest["invalid_defects"]} == {"bow-tie", "spike"}


# ---------------------------------------------------------------------------------------------------------------
# Permanent basic farmland shapefile (GBK)
# ---------------------------------------------------------------------------------------------------------------
def test_yjjbnt_is_a_subset_of_cultivated_dltb(yjjbnt: gpd.GeoDataFrame, dltb: gpd.GeoDataFrame) -> None:
    cultivated = dltb[dltb["DLBM"].isin(["0101", "0102", "0103"])]
    joined = yjjbnt.merge(cultivated, on=["ZLDWDM", "TBBH"], suffixes=("", "_dltb"), how="left")
    assert joined["DLBM_dltb"].notna().all()
    assert (joined["DLBM"] == joined["DLBM_dltb"]).all()
    assert 0.6 <= len(yjjbnt) / len(cultivated) <= 0.8
    patch = shapely.transform(joined["geometry_dltb"].to_numpy(), lambda c: c - [38_000_000.0, 0.0])
    assert shapely.equals_exact(patch, yjjbnt.geometry.to_numpy(), tolerance=1e-6).all()
    assert joined["YJJBNTTBMJ"].to_numpy() == pytest.approx(joined["TBMJ"].to_numpy(), abs=0.01)
    assert yjjbnt["GDPDJB"].between(1, 5).all() and yjjbnt["GDDB"].between(1, 15).all()
    assert yjjbnt["YJJBNTTBBH"].is_unique


def test_yjjbnt_prj_declares_epsg_4547(demo: Path) -> None:
    prj = (demo / "yjjbnt" / "yjjbnt.prj").read_text(encoding="ascii")
    assert pyproj.CRS.from_wkt(prj).to_epsg() == 4547
    assert (demo / "yjjbnt" / "yjjbnt.cpg").read_text(encoding="ascii").strip() == "GBK"
    for suffix in (".shp", ".shx", ".dbf"):
        assert (demo / "yjjbnt" / f"yjjbnt{suffix}").is_file()


def test_yjjbnt_dbf_is_gbk(demo: Path, yjjbnt: gpd.GeoDataFrame) -> None:
    assert set(yjjbnt["DLMC"]) <= {"水田", "水浇地", "旱地"}
    assert yjjbnt["ZLDWMC"].str.fullmatch(r"[\u4e00-\u9fff]+(村|社区)").all()
    raw = (demo / "yjjbnt" / "yjjbnt.dbf").read_bytes()
    name = yjjbnt["ZLDWMC"].iloc[0]
    assert name.encode("gbk") in raw and name.encode("utf-8") not in raw
    with pytest.raises(UnicodeDecodeError):
        raw[raw.index(name.encode("gbk")):][:40].decode("utf-8")


# ---------------------------------------------------------------------------------------------------------------
# Red line, urban boundary, zoning
# ---------------------------------------------------------------------------------------------------------------
def test_stbhhx_zip_and_overlapping_features(demo: Path, manifest: dict) -> None:
    with zipfile.ZipFile(demo / "stbhhx.zip") as zf:
        names = set(zf.namelist())
        prj = zf.read("stbhhx.prj").decode("ascii")
        assert zf.read("stbhhx.cpg").decode("ascii").strip() == "UTF-8"
    assert {"stbhhx.shp", "stbhhx.shx", "stbhhx.dbf", "stbhhx.prj"} <= names
    assert pyproj.CRS.from_wkt(prj).to_epsg() == 4526
    red = read_layer(demo, manifest, "STBHHX")
    assert 5 <= len(red) <= 15 and (red["XJXZQDM"] == "410299").all()
    geoms = shapely.transform(red.geometry.to_numpy(), lambda c: c - [38_000_000.0, 0.0])
    union_m2 = gk_geodesic_area(shapely.union_all(geoms))
    sum_m2 = red["MJ"].sum()
    assert sum_m2 > union_m2 + 1000.0  # the features overlap each other: totals must union
    entry = next(item for item in manifest["layers"] if item["code"] == "STBHHX")
    assert union_m2 == pytest.approx(entry["area_union_m2"], abs=0.05)
    assert sum_m2 == pytest.approx(entry["area_sum_m2"], abs=0.05)


def test_czkfbj_sub_zones(demo: Path, manifest: dict) -> None:
    udb = read_layer(demo, manifest, "CZKFBJ")
    assert set(udb["GHFQMC"]) == {"城镇集中建设区", "城镇弹性发展区", "特别用途区"}
    assert (udb["GHFQDM"] == udb["GHFQMC"].map(generator.GHFQ_CODES)).all()
    seat = udb[udb["XZQMC"] == "城关镇"]
    assert seat["MJ"].sum() > 3 * udb[udb["XZQMC"] != "城关镇"].groupby("XZQMC")["MJ"].sum().max()


def test_ghfq_covers_the_county(demo: Path, manifest: dict) -> None:
    zones = read_layer(demo, manifest, "GHFQ")
    assert {"生态保护区", "城镇发展区", "农田保护区", "乡村发展区"} <= set(zones["GHFQMC"])
    assert zones["MJ"].sum() == pytest.approx(manifest["county"]["area_m2"], rel=1e-5)


def test_every_layer_lies_inside_the_county(demo: Path, manifest: dict, county: shapely.Geometry) -> None:
    envelope = county.buffer(1e-7)  # ~1 cm
    shapely.prepare(envelope)
    for item in manifest["layers"]:
        frame = pyogrio.read_dataframe(demo / item["file"]).to_crs(4490)
        geoms = frame.geometry.to_numpy()
        if item["code"] == "DLTB":
            geoms = geoms[~frame["BSM"].isin(manifest["invalid_on_purpose"]["DLTB"]).to_numpy()]
        assert shapely.covers(envelope, geoms).all(), item["code"]
        assert shapely.is_valid(geoms).all(), item["code"]


# ---------------------------------------------------------------------------------------------------------------
# Planted conflicts of the township plan
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def plan_layers(demo: Path, manifest: dict) -> dict[str, gpd.GeoDataFrame]:
    return {code: in_gk(read_layer(demo, manifest, code)) for code in ("YDYHGHFQ", "YJJBNT", "STBHHX", "CZKFBJ")}


def test_deliberate_conflicts_really_conflict(plan_layers: dict[str, gpd.GeoDataFrame], manifest: dict) -> None:
    conflicts = manifest["deliberate_conflicts"]
    assert {c["planted_against"] for c in conflicts} == {"YJJBNT", "STBHHX", "CZKFBJ"}
    assert {c["layer"] for c in conflicts} == {"YJJBNT", "STBHHX", "CZKFBJ"}
    plan = plan_layers["YDYHGHFQ"].set_index("DKBH")
    for c in conflicts:
        polygon = plan.loc[c["dkbh"], "geometry"]
        assert plan.loc[c["dkbh"], "YDYHFLDM"] == c["ydyhfldm"]
        layer = plan_layers[c["layer"]].geometry.to_numpy()
        if c["relation"] == "overlaps":
            piece = shapely.union_all(shapely.intersection(polygon, layer))
        else:
            piece = polygon.difference(shapely.union_all(layer))
        area = gk_geodesic_area(piece)
        assert area > 1.0, c
        assert area == pytest.approx(c["area_m2"], rel=1e-6, abs=0.05), c


def test_no_conflicts_besides_the_planted_ones(plan_layers: dict[str, gpd.GeoDataFrame], manifest: dict) -> None:
    rules = manifest["conflict_rules"]
    plan = plan_layers["YDYHGHFQ"]
    plan = plan[~plan["DKBH"].isin({c["dkbh"] for c in manifest["deliberate_conflicts"]})]
    code = plan["YDYHFLDM"]
    construction = code.str[:2].isin(rules["construction_prefixes"]) & ~code.isin(
        rules["linear_infrastructure_codes"])
    geoms = plan.geometry.to_numpy()[construction.to_numpy()]
    for layer_code in ("YJJBNT", "STBHHX"):
        layer = plan_layers[layer_code].geometry.to_numpy()
        g, l_idx = STRtree(layer).query(geoms, predicate="intersects")
        overlap = shapely.area(shapely.intersection(geoms[g], layer[l_idx]))
        assert overlap.max(initial=0.0) < rules["min_area_m2"], layer_code
    urban = plan.geometry.to_numpy()[code.str.startswith(tuple(rules["urban_construction_prefixes"])).to_numpy()]
    udb = shapely.union_all(plan_layers["CZKFBJ"].geometry.to_numpy())
    outside = shapely.area(shapely.difference(urban, udb))
    assert len(urban) > 100 and outside.max() < rules["min_area_m2"]


# ---------------------------------------------------------------------------------------------------------------
# Geological hazards, DEM
# ---------------------------------------------------------------------------------------------------------------
def test_hazard_points(demo: Path, manifest: dict, county: shapely.Geometry) -> None:
    points = read_layer(demo, manifest, "DZZHD")
    assert 30 <= len(points) <= 60
    assert set(points["ZHLX"]) <= {"滑坡", "崩塌", "泥石流", "地面塌陷"} and len(set(points["ZHLX"])) >= 3
    assert points["WXRS"].dtype.kind == "i" and points["WXCC"].dtype.kind == "f"
    assert points["YHDBH"].is_unique and shapely.contains(county, points.geometry.to_numpy()).all()
    xzq = read_layer(demo, manifest, "XZQ")
    joined = gpd.sjoin(points, xzq[["XZQDM", "geometry"]], predicate="within", lsuffix="pt", rsuffix="xzq")
    assert (joined["XZQDM_pt"] == joined["XZQDM_xzq"]).all() and len(joined) == len(points)
    zones = read_layer(demo, manifest, "DZZHYFQ")
    assert set(zones["YFCD"]) == {"高易发", "中易发", "低易发"}


def test_dem(demo: Path, manifest: dict) -> None:
    path = demo / manifest["dem"]
    assert path.stat().st_size <= 5 * 1024 * 1024
    with rasterio.open(path) as dem:
        assert dem.crs.to_epsg() == 4490
        assert abs(dem.res[0]) <= 0.001
        band = dem.read(1, masked=True)
        assert band.mask[0, 0]  # outside the county: nodata
        red = read_layer(demo, manifest, "STBHHX").to_crs(4490)
        hills = red[red["HXMC"].str.contains("山地")].geometry.representative_point()
        river = red[red["HXMC"].str.contains("河")].geometry.representative_point()
        hill_z = [v[0] for v in dem.sample([(p.x, p.y) for p in hills])]
        river_z = [v[0] for v in dem.sample([(p.x, p.y) for p in river])]
    assert float(band.max()) > 300 and float(band.min()) < 90
    assert min(hill_z) > max(river_z)


# ---------------------------------------------------------------------------------------------------------------
# Sample parcels
# ---------------------------------------------------------------------------------------------------------------
def parse_boundary_txt(path: Path, encoding: str) -> tuple[dict[str, str], list[dict]]:
    """A minimal 界址点坐标 reader for the round trip: header dict and parcels with their rings (X=northing)."""
    header: dict[str, str] = {}
    parcels: list[dict] = []
    section = None
    for line in path.read_text(encoding=encoding).splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[属性描述]":
            key, _, value = line.partition("=")
            header[key] = value
        elif line.endswith("@"):
            fields = line.split(",")
            parcels.append({"points": int(fields[0]), "area_ha": float(fields[1]), "dkbh": fields[2],
                            "name": fields[3], "dlbm": fields[7], "rings": {}})
        else:
            name, ring, x, y = line.split(",")
            parcels[-1]["rings"].setdefault(int(ring), []).append((name, float(y), float(x)))
    return header, parcels


def test_txt_parcels_round_trip(demo: Path, manifest: dict) -> None:
    txt_files = [f for f in manifest["parcels"] if f["format"] == "txt"]
    assert {f["encoding"] for f in txt_files} == {"GBK", "UTF-8-BOM"}
    for entry in txt_files:
        path = demo / entry["file"]
        raw = path.read_bytes()
        if entry["encoding"] == "GBK":
            with pytest.raises(UnicodeDecodeError):
                raw.decode("utf-8")
            header, parcels = parse_boundary_txt(path, "gbk")
        else:
            assert raw.startswith(b"\xef\xbb\xbf")
            header, parcels = parse_boundary_txt(path, "utf-8-sig")
        assert header["坐标系"] == "2000国家大地坐标系" and header["带号"] == "38" and header["几度分带"] == "3"
        assert header["投影类型"] == "高斯克吕格" and header["计量单位"] == "米"
        assert len(parcels) == len(entry["parcels"])
        for parsed, expected in zip(parcels, entry["parcels"], strict=True):
            rings = []
            for ring in parsed["rings"].values():
                assert ring[0] == ring[-1]  # the closing point repeats the first one
                assert all(38_000_000 < east < 39_000_000 for _, east, _ in ring)
                rings.append([(east - 38_000_000.0, north) for _, east, north in ring])
            polygon = shapely.Polygon(rings[0], rings[1:])
            reference = shapely.from_wkt(expected["geometry_wkt_4547"])
            assert shapely.equals_exact(shapely.normalize(polygon), shapely.normalize(reference), tolerance=1e-6)
            assert parsed["points"] == expected["points"] == sum(len(r) for r in parsed["rings"].values())
            assert len(parsed["rings"]) == expected["rings"]
            assert parsed["area_ha"] == pytest.approx(polygon.area / 10_000, abs=5e-5)
            assert gk_geodesic_area(polygon) == pytest.approx(expected["expected"]["area_m2"], abs=0.01)
    assert any(p["rings"] == 2 for f in txt_files for p in f["parcels"])


def test_other_parcel_formats(demo: Path, manifest: dict) -> None:
    by_format = {f["format"]: f for f in manifest["parcels"]}
    gj = by_format["geojson"]
    data = json.loads((demo / gj["file"]).read_text(encoding="utf-8"))
    assert "crs" not in data  # RFC 7946: lon/lat without a crs member
    lonlat = shapely.geometry.shape(data["features"][0]["geometry"])
    gk = shapely.transform(lonlat, lambda c: np.column_stack(TO_GK.transform(c[:, 0], c[:, 1])))
    assert shapely.equals_exact(gk, shapely.from_wkt(gj["parcels"][0]["geometry_wkt_4547"]), tolerance=1e-4)

    dxf = by_format["dxf"]
    doc = ezdxf.readfile(demo / dxf["file"])
    polylines = doc.modelspace().query("LWPOLYLINE")
    assert len(polylines) == 1 and polylines[0].closed
    points = [(x, y) for x, y, *_ in polylines[0].get_points()]
    assert all(100_000 < x < 900_000 for x, _ in points)  # eastings without the zone prefix (EPSG:4547)
    reference = shapely.from_wkt(dxf["parcels"][0]["geometry_wkt_4547"])
    assert shapely.equals_exact(shapely.Polygon(points), reference, tolerance=1e-6)


def test_parcel_expectations_hold(demo: Path, manifest: dict, plan_layers: dict[str, gpd.GeoDataFrame]) -> None:
    parcels = [p for f in manifest["parcels"] for p in f["parcels"]]
    assert len(parcels) == 5
    yj = plan_layers["YJJBNT"].geometry.to_numpy()
    red = shapely.union_all(plan_layers["STBHHX"].geometry.to_numpy())
    udb = shapely.union_all(plan_layers["CZKFBJ"].geometry.to_numpy())
    for parcel in parcels:
        geom = shapely.from_wkt(parcel["geometry_wkt_4547"])
        expected = parcel["expected"]
        farmland = gk_geodesic_area(shapely.union_all(shapely.intersection(geom, yj)))
        assert farmland == pytest.approx(expected["YJJBNT_overlap_m2"], abs=0.05)
        assert gk_geodesic_area(geom.intersection(red)) == pytest.approx(expected["STBHHX_overlap_m2"], abs=0.05)
        assert gk_geodesic_area(geom.difference(udb)) == pytest.approx(expected["CZKFBJ_outside_m2"], abs=0.05)
    clean = [p for p in parcels if p["purpose"].startswith("clean")]
    assert len(clean) == 1 and clean[0]["expected"]["YJJBNT_overlap_m2"] == 0.0
    assert clean[0]["expected"]["STBHHX_overlap_m2"] == 0.0 and clean[0]["expected"]["CZKFBJ_outside_m2"] == 0.0
    assert sum(p["expected"]["YJJBNT_overlap_m2"] > 1000 for p in parcels) >= 1
    assert sum(p["expected"]["STBHHX_overlap_m2"] > 1000 for p in parcels) >= 2
