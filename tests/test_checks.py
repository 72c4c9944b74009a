"""Parcel compliance checks on real PostGIS, areas verified independently (shapely + pyproj Geod)."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Transformer
from sqlalchemy import Engine, text

from api.app import create_app
from gis_platform.catalog import Catalog
from gis_platform.ingest.pipeline import import_file
from gis_platform.settings import Settings

from .helpers import (
    audit_entries,
    audit_mark,
    auth_headers,
    from_plane,
    geod_area,
    overlay,
    to_plane,
    write_geojson,
    write_shapefile,
)

pytestmark = pytest.mark.db

# A small synthetic county near 114.8°E 34.8°N, in EPSG:4490.
TOWN_A = shapely.box(114.70, 34.70, 114.80, 34.90)
TOWN_B = shapely.box(114.80, 34.70, 114.90, 34.90)
FARMLAND = [shapely.box(114.780, 34.800, 114.790, 34.810), shapely.box(114.790, 34.800, 114.800, 34.810)]
# two ecological red-line features overlapping each other: the union must be used, never the sum
ECOLOGY = [shapely.box(114.820, 34.820, 114.840, 34.840), shapely.box(114.830, 34.830, 114.850, 34.850)]
URBAN = [shapely.box(114.750, 34.750, 114.780, 34.780)]
PLAN = [shapely.box(114.750, 34.750, 114.765, 34.780), shapely.box(114.765, 34.750, 114.780, 34.780)]
PLAN_USES = [("0701", "城镇住宅用地"), ("1001", "工业用地")]
DLTB = [shapely.box(114.780, 34.800, 114.790, 34.810), shapely.box(114.790, 34.800, 114.800, 34.810)]
DLTB_PROPS = [
    {"BSM": "1", "DLBM": "0103", "DLMC": "旱地", "KCXS": 0.1},
    {"BSM": "2", "DLBM": "0301", "DLMC": "乔木林地", "KCXS": 0.0},
]


@pytest.fixture
def county(engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path) -> Engine:
    return load_small_county(engine, catalog, settings, tmp_path)


def load_small_county(engine: Engine, catalog: Catalog, settings: Settings, folder: Path) -> Engine:
    """The small county above, imported through the bureau's import path (also used by test_parcel_use.py)."""

    def load(code: str, geoms: list[Any], props: list[dict[str, Any]]) -> None:
        import_file(engine, catalog, settings, write_geojson(folder / f"{code}.geojson", geoms, props), code)

    load(
        "XZQ", [TOWN_A, TOWN_B], [{"XZQDM": "410001001", "XZQMC": "城关镇"}, {"XZQDM": "410001002", "XZQMC": "王庄乡"}]
    )
    load("YJJBNT", FARMLAND, [{"YJJBNTTBBH": f"JB{i}", "DLBM": "0103"} for i in range(2)])
    load("STBHHX", ECOLOGY, [{"BSM": f"ST{i}", "HXMC": "黄河湿地"} for i in range(2)])
    load("CZKFBJ", URBAN, [{"BSM": "U1", "GHFQMC": "城镇集中建设区"}])
    load("YDYHGHFQ", PLAN, [{"BSM": f"P{i}", "YDYHFLDM": c, "YDYHFLMC": n} for i, (c, n) in enumerate(PLAN_USES)])
    load("DLTB", DLTB, DLTB_PROPS)
    return engine


@pytest.fixture
def client(settings: Settings, county: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings), headers=auth_headers(county)) as test_client:
        yield test_client


def geojson(geometry: shapely.Geometry) -> dict[str, Any]:
    return json.loads(shapely.to_geojson(geometry))


def check(client: TestClient, geometry: shapely.Geometry, **extra: Any) -> dict[str, Any]:
    response = client.post("/api/v1/checks", json={"geometry": geojson(geometry), **extra})
    assert response.status_code == 201, response.text
    return response.json()


def layer(result: dict[str, Any], code: str) -> dict[str, Any]:
    return next(entry for entry in result["layers"] if entry["code"] == code)


def test_farmland_overlap_areas_and_prohibited_verdict(client: TestClient) -> None:
    parcel = shapely.box(114.785, 34.803, 114.795, 34.807)  # across both farmland patches
    result = check(client, parcel, land_use="0701", project_number="2026-001")
    expected = [geod_area(overlay(parcel, f)) for f in FARMLAND]
    farmland = layer(result, "YJJBNT")
    assert farmland["overlap"]["m2"] == pytest.approx(sum(expected), abs=0.01)
    assert [f["overlap"]["m2"] for f in farmland["features"]] == pytest.approx(expected, abs=0.01)
    assert farmland["overlap"]["mu"] == pytest.approx(sum(expected) * 0.0015, abs=0.006)
    assert result["parcel"]["area"]["m2"] == pytest.approx(geod_area(parcel), abs=0.01)
    assert result["verdict"] == "禁止"
    finding = next(f for f in result["findings"] if f["rule_id"] == "farmland.construction")
    assert finding["level"] == "禁止" and finding["area"]["m2"] == pytest.approx(sum(expected), abs=0.01)
    assert result["data_versions"]["YJJBNT"] == farmland["version"]["id"]
    assert result["area_model"]["name"] == "ellipsoidal"


def test_overlapping_red_line_features_count_once(client: TestClient) -> None:
    parcel = shapely.box(114.825, 34.825, 114.845, 34.845)
    result = check(client, parcel, land_use="0701")
    ecology = layer(result, "STBHHX")
    union = from_plane(shapely.union_all([to_plane(parcel).intersection(to_plane(e)) for e in ECOLOGY]))
    per_feature_sum = sum(geod_area(overlay(parcel, e)) for e in ECOLOGY)
    assert ecology["overlap"]["m2"] == pytest.approx(geod_area(union), abs=0.01)
    assert ecology["overlap"]["m2"] < per_feature_sum - 1000  # the sum would double count
    assert result["verdict"] == "禁止"


def test_linear_infrastructure_in_ecological_red_line_is_conditional(client: TestClient) -> None:
    result = check(client, shapely.box(114.821, 34.821, 114.829, 34.823), land_use="1202")
    ecology = [f for f in result["findings"] if f["layer_code"] == "STBHHX"]
    assert [f["rule_id"] for f in ecology] == ["ecology.linear_infrastructure"]
    assert ecology[0]["level"] == "有条件"


def test_edge_only_contact_is_zero_and_passes(client: TestClient) -> None:
    parcel = shapely.box(114.800, 34.800, 114.805, 34.805)  # shares the eastern edge of the farmland patch
    result = check(client, parcel, land_use="0101")
    farmland = layer(result, "YJJBNT")
    assert farmland["overlap"]["m2"] == 0 and farmland["feature_count"] == 0
    assert not [f for f in result["findings"] if f["layer_code"] == "YJJBNT"]


def test_tiny_overlap_is_reported_as_minor(client: TestClient) -> None:
    eps = 0.000005  # ~0.46 m × 0.55 m inside the farmland patch edge
    parcel = shapely.box(114.800 - eps, 34.805, 114.803, 34.805 + eps)
    result = check(client, parcel, land_use="0701")
    farmland = layer(result, "YJJBNT")
    expected = geod_area(overlay(parcel, FARMLAND[1]))
    assert 0 < expected < 1
    assert farmland["overlap"]["m2"] == pytest.approx(expected, abs=0.01)
    assert farmland["minor"] is True
    finding = next(f for f in result["findings"] if f["rule_id"] == "farmland.construction")
    assert finding["minor"] is True and "微小压盖" in finding["message_zh"]


def test_urban_construction_outside_boundary_reports_area_outside(client: TestClient) -> None:
    parcel = shapely.box(114.775, 34.760, 114.785, 34.770)  # half inside the urban boundary
    result = check(client, parcel, land_use="1001")
    outside = geod_area(overlay(parcel, URBAN[0], "difference"))
    finding = next(f for f in result["findings"] if f["rule_id"] == "urban_boundary.urban_construction_outside")
    assert finding["level"] == "禁止"
    assert finding["area"]["m2"] == pytest.approx(outside, abs=0.02)


def test_rural_homestead_outside_boundary_is_not_an_urban_finding(client: TestClient) -> None:
    result = check(client, shapely.box(114.870, 34.870, 114.872, 34.872), land_use="0703")
    assert not [f for f in result["findings"] if f["layer_code"] == "CZKFBJ" and f["level"] != "通过"]


def test_plan_use_by_category_and_mismatch(client: TestClient) -> None:
    parcel = shapely.box(114.760, 34.760, 114.770, 34.770)  # across residential (0701) and industrial (1001) plan
    result = check(client, parcel, land_use="0701")
    plan = layer(result, "YDYHGHFQ")
    assert plan["categories"]["0701"]["m2"] == pytest.approx(geod_area(overlay(parcel, PLAN[0])), abs=0.01)
    assert plan["categories"]["1001"]["m2"] == pytest.approx(geod_area(overlay(parcel, PLAN[1])), abs=0.01)
    mismatch = [f for f in result["findings"] if f["layer_code"] == "YDYHGHFQ"]
    assert mismatch and mismatch[0]["level"] == "有条件"
    assert mismatch[0]["area"]["m2"] == pytest.approx(geod_area(overlay(parcel, PLAN[1])), abs=0.01)


def test_land_survey_statistics_deduct_tiankan(client: TestClient) -> None:
    parcel = shapely.box(114.785, 34.803, 114.795, 34.807)
    stats = check(client, parcel)["land_survey"]
    dryland = next(c for c in stats["classes"] if c["dlbm"] == "0103")
    gross = geod_area(overlay(parcel, DLTB[0]))
    assert dryland["area"]["m2"] == pytest.approx(gross, abs=0.01)
    assert dryland["tiankan"]["m2"] == pytest.approx(gross * 0.1, abs=0.01)
    assert dryland["net"]["m2"] == pytest.approx(gross * 0.9, abs=0.01)
    assert stats["cultivated_net"]["m2"] == pytest.approx(gross * 0.9, abs=0.01)


def test_parcel_across_townships_is_split(client: TestClient) -> None:
    parcel = shapely.box(114.795, 34.760, 114.805, 34.770)
    townships = {t["name"]: t["area"]["m2"] for t in check(client, parcel)["parcel"]["townships"]}
    assert townships["城关镇"] == pytest.approx(geod_area(overlay(parcel, TOWN_A)), abs=0.01)
    assert townships["王庄乡"] == pytest.approx(geod_area(overlay(parcel, TOWN_B)), abs=0.01)
    assert sum(townships.values()) == pytest.approx(geod_area(parcel), abs=0.02)


def test_gauss_kruger_input_gives_the_same_result(client: TestClient) -> None:
    parcel = shapely.box(114.785, 34.803, 114.795, 34.807)
    to_gk = Transformer.from_crs(4490, 4547, always_xy=True)
    gk = shapely.transform(
        parcel.segmentize(0.0005), lambda xy: __import__("numpy").column_stack(to_gk.transform(*xy.T))
    )
    lonlat = check(client, parcel, land_use="0701")
    projected = check(client, gk, land_use="0701", crs="EPSG:4547")
    assert projected["parcel"]["source_crs"] == "EPSG:4547"
    assert layer(projected, "YJJBNT")["overlap"]["m2"] == pytest.approx(
        layer(lonlat, "YJJBNT")["overlap"]["m2"], rel=1e-4
    )
    assert projected["verdict"] == lonlat["verdict"] == "禁止"


def test_planar_area_model_on_request(client: TestClient) -> None:
    parcel = shapely.box(114.785, 34.803, 114.795, 34.807)
    result = check(client, parcel, area_model="planar")
    to_gk = Transformer.from_crs(4490, 4547, always_xy=True)
    planar = shapely.transform(parcel, lambda xy: __import__("numpy").column_stack(to_gk.transform(*xy.T))).area
    assert result["area_model"]["name"] == "planar" and result["area_model"]["gk_epsg"] == 4547
    assert result["parcel"]["area"]["m2"] == pytest.approx(planar, abs=0.01)


def test_stored_result_is_unchanged_after_reimport(
    client: TestClient, county: Engine, catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    parcel = shapely.box(114.785, 34.803, 114.795, 34.807)
    first = check(client, parcel, land_use="0701")
    # the farmland layer is re-imported without the patches under the parcel
    import_file(county, catalog, settings, write_geojson(tmp_path / "new.geojson", [URBAN[0]]), "YJJBNT")
    stored = client.get(f"/api/v1/checks/{first['id']}").json()
    assert stored == first
    again = check(client, parcel, land_use="0701")
    assert layer(again, "YJJBNT")["overlap"]["m2"] == 0
    assert again["data_versions"]["YJJBNT"] != first["data_versions"]["YJJBNT"]


def test_list_checks_with_filters(client: TestClient) -> None:
    check(client, shapely.box(114.785, 34.803, 114.795, 34.807), land_use="0701", project_number="P-1")
    check(client, shapely.box(114.870, 34.870, 114.872, 34.872), land_use="0101", project_number="P-2")
    everything = client.get("/api/v1/checks").json()
    assert everything["total"] == 2
    prohibited = client.get("/api/v1/checks", params={"verdict": "禁止"}).json()
    assert [i["project_number"] for i in prohibited["items"]] == ["P-1"]
    by_number = client.get("/api/v1/checks", params={"project_number": "P-2"}).json()
    assert by_number["total"] == 1 and by_number["items"][0]["verdict"] == "通过"
    in_box = client.get("/api/v1/checks", params={"bbox": "114.86,34.86,114.88,34.88"}).json()
    assert [i["project_number"] for i in in_box["items"]] == ["P-2"]
    paged = client.get("/api/v1/checks", params={"limit": 1, "offset": 1}).json()
    assert paged["total"] == 2 and len(paged["items"]) == 1


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"geometry": {"type": "Polygon", "coordinates": []}}, "empty"),
        ({"geometry": {"type": "Point", "coordinates": [114.8, 34.8]}}, "Point"),
        ({"geometry": geojson(shapely.box(500_000, 3_850_000, 500_100, 3_850_100))}, "not degrees"),
        ({"geometry": geojson(shapely.box(100.0, 20.0, 100.01, 20.01))}, "outside the county"),
        ({"geometry": geojson(shapely.box(114.785, 34.803, 114.795, 34.807)), "land_use": "9999"}, "9999"),
        ({"geometry": geojson(shapely.box(114.785, 34.803, 114.795, 34.807)), "crs": "EPSG:99999"}, "99999"),
        (
            {
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[114.8, 34.8], ["x", 34.8], [114.81, 34.81], [114.8, 34.8]]],
                }
            },
            "not a number",
        ),
    ],
)
def test_bad_parcels_get_a_4xx_naming_the_problem(client: TestClient, body: dict[str, Any], fragment: str) -> None:
    response = client.post("/api/v1/checks", json=body)
    assert 400 <= response.status_code < 500, response.text
    assert fragment in json.dumps(response.json(), ensure_ascii=False)


def test_nan_coordinates_and_too_many_vertices_rejected(client: TestClient, settings: Settings) -> None:
    ring = "[[114.8, 34.8], [NaN, 34.8], [114.81, 34.81], [114.8, 34.8]]"
    nan_body = '{"geometry": {"type": "Polygon", "coordinates": [' + ring + "]}}"
    response = client.post("/api/v1/checks", content=nan_body, headers={"content-type": "application/json"})
    assert response.status_code == 422 and "NaN" in response.text
    many = shapely.Point(114.79, 34.80).buffer(0.002, quad_segs=settings.max_parcel_vertices // 4 + 10)
    response = client.post("/api/v1/checks", json={"geometry": geojson(many)})
    assert response.status_code == 422 and "vertices" in response.json()["message"]


def test_self_intersecting_parcel_is_repaired_and_reported(client: TestClient) -> None:
    bow_tie = shapely.Polygon([(114.785, 34.803), (114.795, 34.807), (114.795, 34.803), (114.785, 34.807)])
    result = check(client, bow_tie)
    assert result["parcel"]["repairs"] and "Self-intersection" in result["parcel"]["repairs"][0]
    assert result["parcel"]["area"]["m2"] == pytest.approx(geod_area(shapely.make_valid(bow_tie)), abs=0.01)


def test_failed_check_stores_nothing(client: TestClient, county: Engine) -> None:
    mark = audit_mark(county)
    client.post("/api/v1/checks", json={"geometry": geojson(shapely.box(100.0, 20.0, 100.01, 20.01))})
    assert client.get("/api/v1/checks").json()["total"] == 0
    assert audit_entries(county, "check.create", mark) == []  # nor an audit entry for it


def test_each_check_is_audited_with_its_caller(client: TestClient, county: Engine) -> None:
    mark = audit_mark(county)
    first = check(client, shapely.box(114.785, 34.803, 114.795, 34.807), project_number="XM-7")
    second = check(client, shapely.box(114.70, 34.70, 114.701, 34.701))
    rows = audit_entries(county, "check.create", mark)
    assert [r["target"] for r in rows] == [f"check:{first['id']}", f"check:{second['id']}"]
    assert {(r["actor"], r["actor_kind"], r["role"], r["ip"]) for r in rows} == {
        ("test-admin", "user", "admin", "testclient")
    }
    assert rows[0]["details"] == {"verdict": first["verdict"], "source": "api", "project_number": "XM-7"}
    assert first["created_by"] == "test-admin"


def test_unknown_check_id_is_404(client: TestClient) -> None:
    assert client.get("/api/v1/checks/00000000-0000-0000-0000-000000000000").status_code == 404
    assert client.get("/api/v1/checks/not-a-uuid").status_code == 404


TXT = """[属性描述]
坐标系=2000国家大地坐标系
几度分带=3
投影类型=高斯克吕格
计量单位=米
带号=38
[地块坐标]
{parcels}"""


def _txt_parcel(number: str, ring: list[tuple[float, float]], use: str = "0701", dlbm: str = "0701") -> str:
    lines = [f"{len(ring) + 1},0.1,{number},地块{number},面,,{use},{dlbm},@"]
    lines += [f"J{i + 1},1,{y:.3f},{x:.3f}" for i, (x, y) in enumerate([*ring, ring[0]])]
    return "\n".join(lines)


def _gk_ring(box: shapely.Polygon) -> list[tuple[float, float]]:
    to_gk = Transformer.from_crs(4490, 4526, always_xy=True)
    return [to_gk.transform(x, y) for x, y in list(box.exterior.coords)[:-1]]


def test_upload_boundary_txt_gives_one_check_per_parcel(client: TestClient, tmp_path: Path) -> None:
    boxes = [shapely.box(114.785, 34.803, 114.795, 34.807), shapely.box(114.870, 34.870, 114.872, 34.872)]
    text = TXT.format(parcels="\n".join(_txt_parcel(f"DK{i}", _gk_ring(b)) for i, b in enumerate(boxes)))
    response = client.post(
        "/api/v1/checks/upload",
        files={"file": ("界址.txt", text.encode("gbk"), "text/plain")},
        data={"land_use": "0701", "project_number": "TXT-1"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["count"] == 2
    assert [c["parcel"]["label"] for c in body["checks"]] == ["地块DK0", "地块DK1"]  # 地块名称
    assert body["checks"][0]["verdict"] == "禁止"
    assert body["checks"][0]["parcel"]["area"]["m2"] == pytest.approx(geod_area(boxes[0]), rel=1e-5)


def test_upload_zipped_shapefile_and_geojson(client: TestClient, tmp_path: Path) -> None:
    parcel = shapely.box(114.825, 34.825, 114.835, 34.835)
    folder = tmp_path / "shp"
    folder.mkdir()
    write_shapefile(folder / "parcel.shp", [parcel], {"DKBH": ["S1"]}, epsg=4490)
    archive = tmp_path / "parcel.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for part in folder.iterdir():
            zf.write(part, part.name)
    shp = client.post(
        "/api/v1/checks/upload", files={"file": ("parcel.zip", archive.read_bytes())}, data={"land_use": "0701"}
    )
    assert shp.status_code == 201, shp.text
    gj = write_geojson(tmp_path / "parcel.geojson", [parcel], [{"DKBH": "G1"}])
    geo = client.post(
        "/api/v1/checks/upload", files={"file": ("parcel.geojson", gj.read_bytes())}, data={"land_use": "0701"}
    )
    assert geo.status_code == 201, geo.text
    a, b = shp.json()["checks"][0], geo.json()["checks"][0]
    assert layer(a, "STBHHX")["overlap"] == layer(b, "STBHHX")["overlap"]
    assert a["verdict"] == b["verdict"] == "禁止"


def test_upload_of_a_bad_file_is_a_4xx(client: TestClient) -> None:
    response = client.post("/api/v1/checks/upload", files={"file": ("x.shp.zip", b"not a zip")})
    assert response.status_code == 422 and "zip" in response.json()["message"]


def test_identify_lists_every_layer_at_a_point(client: TestClient) -> None:
    body = client.get("/api/v1/identify", params={"lon": 114.785, "lat": 34.805}).json()
    codes = [entry["code"] for entry in body["layers"]]
    assert codes == ["XZQ", "DLTB", "YJJBNT"]
    township = body["layers"][0]["features"][0]
    assert {"name": "XZQMC", "label_zh": "行政区名称", "label_en": "Division name", "value": "城关镇"} in township[
        "fields"
    ]


def test_cli_check_prints_the_same_result_as_the_api(client: TestClient, settings: Settings, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    parcel = shapely.box(114.785, 34.803, 114.795, 34.807)
    path = tmp_path / "parcel.txt"
    path.write_text(TXT.format(parcels=_txt_parcel("CLI1", _gk_ring(parcel))), encoding="utf-8")
    env = {**os.environ, "GIS_DATABASE_URL": settings.database_url}
    cli = [sys.executable, "-m", "gis_platform.cli", "check", str(path), "--use", "0701"]
    as_json = subprocess.run([*cli, "--format", "json"], env=env, capture_output=True, text=True, timeout=120)
    assert as_json.returncode == 0, as_json.stderr
    result = json.loads(as_json.stdout)
    assert result["verdict"] == "禁止" and result["parcel"]["label"] == "地块CLI1"
    assert client.get(f"/api/v1/checks/{result['id']}").json() == result
    api = check(client, parcel, land_use="0701")
    assert layer(result, "YJJBNT")["overlap"]["m2"] == pytest.approx(layer(api, "YJJBNT")["overlap"]["m2"], rel=1e-5)
    table = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=120)
    assert table.returncode == 0 and "结论 verdict: 禁止" in table.stdout and "依据" in table.stdout
    bad = subprocess.run([*cli[:-2], "--use", "9999"], env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "9999" in bad.stderr and "Traceback" not in bad.stderr


def test_land_survey_code_missing_from_the_table_keeps_the_file_name(
    client: TestClient, county: Engine, catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    props = [{"BSM": "9", "DLBM": "0199X", "DLMC": "试验地类", "KCXS": 0.0}]
    import_file(county, catalog, settings, write_geojson(tmp_path / "dltb.geojson", DLTB[:1], props), "DLTB")
    parcel = shapely.box(114.785, 34.803, 114.789, 34.807)
    classes = check(client, parcel)["land_survey"]["classes"]
    assert [(c["dlbm"], c["dlmc"], c["cultivated"]) for c in classes] == [("0199X", "试验地类", True)]
    assert classes[0]["area"]["m2"] == pytest.approx(geod_area(overlay(parcel, DLTB[0])), abs=0.01)


def test_uploads_over_the_size_limit_are_refused(settings: Settings, county: Engine) -> None:
    small = settings.model_copy(update={"max_upload_bytes": 1000})
    with TestClient(create_app(small), headers=auth_headers(county)) as limited:
        payload = ("parcel.geojson", b" " * 5000)
        for url in ("/api/v1/checks/upload", "/api/v1/checks/batch"):
            response = limited.post(url, files={"file": payload})
            assert response.status_code == 422, (url, response.text)
            assert "upload limit of 1000 bytes" in response.json()["message"]
        assert limited.get("/api/v1/checks").json()["total"] == 0


def test_check_verdicts_are_counted_for_prometheus(client: TestClient) -> None:
    def count(verdict: str) -> float:
        line = next(
            (row for row in client.get("/metrics").text.splitlines()
             if row.startswith(f'gis_check_verdicts_total{{verdict="{verdict}"}}')),
            None,
        )  # fmt: skip
        return float(line.rsplit(" ", 1)[1]) if line else 0.0

    before = count("禁止")
    result = check(client, shapely.box(114.785, 34.803, 114.795, 34.807), land_use="0701")
    assert result["verdict"] == "禁止"
    assert count("禁止") == before + 1


def test_stored_check_documents_are_lz4_compressed(client: TestClient, county: Engine) -> None:
    result = check(client, shapely.box(114.785, 34.803, 114.795, 34.807), land_use="0701")
    with county.connect() as conn:
        row = conn.execute(
            text("SELECT pg_column_compression(result) AS method, octet_length(result::text) AS size"
                 " FROM check_record WHERE id = :id"),
            {"id": result["id"]},
        ).one()  # fmt: skip
    assert row.size > 2048  # large enough to be compressed at all (TOAST threshold)
    assert row.method == "lz4"
