"""Background jobs on real PostGIS: batch checks with downloads, conflict analysis, failure, stale re-queue.

Areas are verified independently with shapely + pyproj Geod (GRS80) on geometries built in code.
"""

from __future__ import annotations

import csv
import io
import json
import time
import types
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import openpyxl
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Transformer
from sqlalchemy import Engine, text

from api.app import create_app
from gis_platform import jobs
from gis_platform.analysis import batch
from gis_platform.catalog import Catalog
from gis_platform.errors import PlatformError
from gis_platform.ingest.pipeline import import_file
from gis_platform.rules import RuleSet, load_rules
from gis_platform.settings import Settings

from .helpers import (
    auth_headers,
    from_plane,
    geod_area,
    overlay,
    to_plane,
    union_in_plane,
    write_geojson,
    write_shapefile,
)

pytestmark = pytest.mark.db

TOWN_A = shapely.box(114.70, 34.70, 114.80, 34.90)
TOWN_B = shapely.box(114.80, 34.70, 114.90, 34.90)
TOWNS = {"410001001": TOWN_A, "410001002": TOWN_B}
FARMLAND = [
    shapely.box(114.780, 34.800, 114.790, 34.810),
    shapely.box(114.790, 34.800, 114.800, 34.810),
    shapely.box(114.795, 34.820, 114.805, 34.830),  # across the township line x = 114.80
]
ECOLOGY = [shapely.box(114.820, 34.820, 114.840, 34.840), shapely.box(114.830, 34.830, 114.850, 34.850)]
URBAN = [shapely.box(114.750, 34.750, 114.780, 34.780)]
# the township plan: (BSM, 用地用海 code, polygon); the polygons do not overlap each other
PLAN = [
    # housing inside the boundary: no conflict. Not on its edges: a parallel is curved in the survey plane, so a
    # lon/lat box sharing part of a boundary's parallel edge sticks out of the plane's straight edge (~0.1 m).
    ("P0", "0701", shapely.box(114.751, 34.751, 114.765, 34.779)),
    ("P1", "1001", shapely.box(114.770, 34.760, 114.790, 34.770)),  # industry half outside the boundary
    ("P2", "0701", shapely.box(114.785, 34.802, 114.797, 34.808)),  # housing on two farmland patches
    ("P3", "0701", shapely.box(114.797, 34.822, 114.803, 34.828)),  # on farmland across two townships
    ("P4", "0101", shapely.box(114.781, 34.801, 114.784, 34.804)),  # paddy field on farmland: not construction
    ("P5", "1202", shapely.box(114.821, 34.821, 114.829, 34.823)),  # a road in the ecological red line
    ("P6", "0701", shapely.box(114.825, 34.825, 114.845, 34.845)),  # housing on two overlapping STBHHX features
    ("P7", "0301", shapely.box(114.842, 34.822, 114.848, 34.828)),  # forest in the red line: not construction
]


@pytest.fixture
def rules(catalog: Catalog, settings: Settings) -> RuleSet:
    return load_rules(settings.layers_dir, catalog)


@pytest.fixture
def county(engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path) -> Iterator[Engine]:
    def load(code: str, geoms: list[Any], props: list[dict[str, Any]]) -> None:
        import_file(engine, catalog, settings, write_geojson(tmp_path / f"{code}.geojson", geoms, props), code)

    load("XZQ", [TOWN_A, TOWN_B], [{"XZQDM": c, "XZQMC": n} for c, n in zip(TOWNS, ("城关镇", "王庄乡"), strict=True)])
    load("YJJBNT", FARMLAND, [{"YJJBNTTBBH": f"JB{i}", "DLBM": "0101"} for i in range(len(FARMLAND))])
    load("STBHHX", ECOLOGY, [{"BSM": f"ST{i}", "HXMC": "黄河湿地"} for i in range(len(ECOLOGY))])
    load("CZKFBJ", URBAN, [{"BSM": "U1", "GHFQMC": "城镇集中建设区"}])
    load("YDYHGHFQ", [p for _b, _c, p in PLAN], [{"BSM": b, "YDYHFLDM": c} for b, c, _p in PLAN])
    yield engine
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE job CASCADE"))


@pytest.fixture
def client(settings: Settings, county: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings), headers=auth_headers(county)) as test_client:
        yield test_client


def run_jobs(client: TestClient, job_id: str) -> dict[str, Any]:
    """Run the queue here, then wait for the job (a runner started by the app may hold it)."""
    state = client.app.state  # type: ignore[attr-defined]
    jobs.run_pending_jobs(state.engine, state.catalog, state.rules, state.settings)
    deadline = time.monotonic() + 60
    while True:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def feature(geometry: shapely.Geometry | dict[str, Any], **properties: Any) -> dict[str, Any]:
    shape = geometry if isinstance(geometry, dict) else json.loads(shapely.to_geojson(geometry))
    return {"type": "Feature", "properties": properties, "geometry": shape}


BATCH = [
    feature(shapely.box(114.785, 34.803, 114.795, 34.807), DKBH="A-01", YDYHFLDM="0701"),  # on farmland: 禁止
    feature(shapely.box(114.870, 34.870, 114.872, 34.872), DKBH="A-02"),  # default 0703, nothing around: 通过
    feature(shapely.box(114.821, 34.821, 114.829, 34.823), DKBH="A-03", YDYHFLDM="1202"),  # road in STBHHX: 有条件
    feature({"type": "LineString", "coordinates": [[114.8, 34.8], [114.81, 34.81]]}, DKBH="A-04"),  # error row
    feature(shapely.box(100.0, 30.0, 100.01, 30.01), DKBH="A-05"),  # outside the county: error row
    feature(shapely.box(114.860, 34.860, 114.862, 34.862), DKBH="A-06", YDYHFLDM="0799"),  # unknown code: error
]


def submit_batch(client: TestClient) -> dict[str, Any]:
    body = {"parcels": {"type": "FeatureCollection", "features": BATCH}, "land_use": "0703", "project_number": "B-1"}
    response = client.post("/api/v1/checks/batch", json=body)
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"/api/v1/jobs/{job['id']}"
    assert job["status"] in ("queued", "running") and job["progress"]["total"] == 6  # an app's runner may be quick
    return job


def submit_batch_core(engine: Engine, catalog: Catalog, *, runner_active: bool = False) -> str:
    collection = {"type": "FeatureCollection", "features": BATCH}
    options = batch.BatchOptions(land_use="0703")
    job = batch.submit_batch_geojson(engine, catalog, collection, crs=None, options=options)
    if not runner_active:
        assert job["status"] == "queued" and job["progress"] == {"done": 0, "total": 6, "percent": 0.0}
    return str(job["id"])


def run_core(engine: Engine, catalog: Catalog, rules: RuleSet, settings: Settings, job_id: str) -> Any:
    jobs.run_pending_jobs(engine, catalog, rules, settings)
    return job_row(engine, job_id)


def test_batch_check_end_to_end_with_downloads(client: TestClient, tmp_path: Path) -> None:
    job = run_jobs(client, submit_batch(client)["id"])
    assert job["status"] == "succeeded", job["error"]
    assert job["progress"]["done"] == job["progress"]["total"] == 6
    summary = job["summary"]
    assert summary["verdicts"] == {"禁止": 1, "需补充用途": 0, "有条件": 1, "通过": 1}
    assert (summary["checked"], summary["errors"]) == (3, 3)
    assert {e["label"]: e["seq"] for e in summary["first_errors"]} == {"A-04": 3, "A-05": 4, "A-06": 5}

    listed = client.get("/api/v1/checks", params={"job_id": job["id"]}).json()
    assert listed["total"] == 3 and {i["source"] for i in listed["items"]} == {"batch"}
    stored = {i["parcel_label"]: client.get(f"/api/v1/checks/{i['id']}").json() for i in listed["items"]}
    assert stored["A-02"]["land_use"]["code"] == "0703" and stored["A-03"]["land_use"]["code"] == "1202"

    raw = client.get(job["links"]["results"]["csv"])
    assert raw.status_code == 200 and raw.content.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(raw.content.decode("utf-8-sig"))))
    header, rows = table[0], table[1:]
    assert len(rows) == 6 and header[0] == "序号 No."
    by_label = {row[1]: dict(zip(header, row, strict=True)) for row in rows}
    for label, check in stored.items():
        row = by_label[label]
        assert row["结论 verdict"] == check["verdict"] and row["检查记录 check id"] == check["id"]
        assert float(row["地块面积(平方米) area m²"]) == check["parcel"]["area"]["m2"]
        assert float(row["地块面积(亩) area mu"]) == check["parcel"]["area"]["mu"]
        farmland = next(layer for layer in check["layers"] if layer["code"] == "YJJBNT")
        assert float(row["压盖永久基本农田(平方米) YJJBNT m²"]) == farmland["overlap"]["m2"]
    assert "farmland.construction" in by_label["A-01"]["问题摘要 findings"]
    assert by_label["A-04"]["结论 verdict"] == "错误" and "LineString" in by_label["A-04"]["错误 error"]
    assert "outside the county" in by_label["A-05"]["错误 error"] and "0799" in by_label["A-06"]["错误 error"]
    on_farmland = overlay(shapely.geometry.shape(BATCH[0]["geometry"]), union_in_plane(FARMLAND))
    assert float(by_label["A-01"]["压盖永久基本农田(平方米) YJJBNT m²"]) == pytest.approx(
        geod_area(on_farmland), abs=0.01
    )

    xlsx = client.get(job["links"]["results"]["xlsx"])
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content)).worksheets[0]
    cells = list(sheet.iter_rows(values_only=True))
    assert list(cells[0]) == header and len(cells) == 7
    for xrow, crow in zip(cells[1:], rows, strict=True):
        for value, text_value in zip(xrow, crow, strict=True):
            if isinstance(value, int | float):
                assert float(text_value) == value
            else:
                assert (value or "") == text_value

    gpkg = tmp_path / "batch.gpkg"
    gpkg.write_bytes(client.get(job["links"]["results"]["gpkg"]).content)
    frame = gpd.read_file(gpkg, engine="pyogrio")
    assert frame.crs.to_epsg() == 4490 and len(frame) == 6
    assert set(frame.geom_type.dropna()) == {"MultiPolygon"} and frame.geometry.isna().sum() == 3
    for _i, record in frame.iterrows():
        if record["label"] in stored:
            check = stored[record["label"]]
            assert record["verdict"] == check["verdict"] and record["check_id"] == check["id"]
            assert geod_area(record.geometry) == pytest.approx(check["parcel"]["area"]["m2"], abs=0.01)


def test_batch_from_a_zipped_shapefile_in_gauss_kruger(client: TestClient, tmp_path: Path) -> None:
    to_gk = Transformer.from_crs(4490, 4547, always_xy=True)
    boxes = [shapely.box(114.785, 34.803, 114.795, 34.807), shapely.box(114.870, 34.870, 114.872, 34.872)]
    gk = [shapely.transform(b.segmentize(0.0005), lambda xy: np.column_stack(to_gk.transform(*xy.T))) for b in boxes]
    write_shapefile(tmp_path / "parcels.shp", gk, {"DKBH": ["地块一", "地块二"], "YDYHFLDM": ["0701", ""]}, 4547, "GBK")
    archive = tmp_path / "parcels.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for part in tmp_path.glob("parcels.*"):
            if part.suffix != ".zip":
                zf.write(part, part.name)
    response = client.post(
        "/api/v1/checks/batch", files={"file": ("parcels.zip", archive.read_bytes())}, data={"land_use": "0703"}
    )
    assert response.status_code == 202, response.text
    assert response.json()["params"]["crs"] == "EPSG:4547"
    job = run_jobs(client, response.json()["id"])
    assert job["status"] == "succeeded"
    assert job["summary"]["verdicts"] == {"禁止": 1, "需补充用途": 0, "有条件": 0, "通过": 1}
    rows = list(csv.DictReader(io.StringIO(client.get(job["links"]["results"]["csv"]).content.decode("utf-8-sig"))))
    assert [(r["地块编号 parcel"], r["拟用地类型 land use"]) for r in rows] == [("地块一", "0701"), ("地块二", "0703")]


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"parcels": {"type": "Polygon", "coordinates": []}}, 422, "FeatureCollection"),
        ({"parcels": {"type": "FeatureCollection", "features": []}}, 422, "no parcels"),
        ({"parcels": {"type": "FeatureCollection", "features": BATCH[:1]}, "land_use": "9999"}, 422, "9999"),
        ({"parcels": {"type": "FeatureCollection", "features": BATCH[:1]}, "crs": "EPSG:99999"}, 422, "99999"),
        ({"parcels": {"type": "FeatureCollection", "features": BATCH[:1]}, "layers": ["NOPE"]}, 404, "NOPE"),
        ({"parcels": {"type": "FeatureCollection", "features": BATCH[:1]}, "buffer_m": -1}, 422, "buffer_m"),
    ],
)
def test_bad_batch_requests_are_refused_at_once(
    client: TestClient, body: dict[str, Any], status: int, fragment: str
) -> None:
    response = client.post("/api/v1/checks/batch", json=body)
    assert response.status_code == status, response.text
    assert fragment in response.text


def test_results_of_an_unfinished_or_unknown_job(client: TestClient) -> None:
    job = submit_batch(client)
    response = client.get(f"/api/v1/jobs/{job['id']}/results.csv")
    if client.get(f"/api/v1/jobs/{job['id']}").json()["status"] != "succeeded":  # an app's runner may be quick
        assert response.status_code == 400 and "once it has succeeded" in response.json()["message"]
    assert client.get("/api/v1/jobs/not-a-uuid").status_code == 404
    assert client.get("/api/v1/jobs/00000000-0000-0000-0000-000000000000").status_code == 404
    assert client.get(f"/api/v1/conflicts/{job['id']}").status_code == 404  # a batch job, not a conflicts job


# --------------------------------------------------------------------------------------------------
# Conflict analysis
# --------------------------------------------------------------------------------------------------


def expected_conflicts(catalog: Catalog) -> dict[tuple[str, str, str], float]:
    """(plan BSM, rule id, township code) → ellipsoidal m², computed with shapely in the survey plane + Geod."""
    out: dict[tuple[str, str, str], float] = {}
    farmland, ecology, urban = (shapely.union_all([to_plane(g) for g in gs]) for gs in (FARMLAND, ECOLOGY, URBAN))
    for bsm, code, plan_ll in PLAN:
        use = catalog.land_use(code)
        plan = to_plane(plan_ll)
        pieces: dict[str, shapely.Geometry] = {}
        if use.construction:
            pieces["farmland.construction"] = plan.intersection(farmland)
            rule = "ecology.linear_infrastructure" if use.linear_infrastructure else "ecology.construction"
            pieces[rule] = plan.intersection(ecology)
        if use.urban_construction:
            pieces["urban_boundary.urban_construction_outside"] = plan.difference(urban)
        for rule, piece in pieces.items():
            for town, boundary in TOWNS.items():
                area = geod_area(from_plane(piece.intersection(to_plane(boundary)))) if not piece.is_empty else 0.0
                if area > 0:
                    out[(bsm, rule, town)] = area
    return out


def test_conflict_analysis_end_to_end(client: TestClient, catalog: Catalog, tmp_path: Path) -> None:
    response = client.post("/api/v1/conflicts", json={})
    assert response.status_code == 202, response.text
    job = run_jobs(client, response.json()["id"])
    assert job["status"] == "succeeded", job["error"]
    summary = client.get(f"/api/v1/conflicts/{job['id']}").json()["summary"]
    versions = {
        v["code"]: v["current_version"]["id"] for v in client.get("/api/v1/layers").json() if v["current_version"]
    }
    assert {code: v["id"] for code, v in summary["data_versions"].items()} == versions

    expected = expected_conflicts(catalog)
    collection = client.get(f"/api/v1/conflicts/{job['id']}/features.geojson").json()
    assert collection["numberMatched"] == collection["numberReturned"] == summary["feature_count"] == len(expected)
    got = {}
    for f in collection["features"]:
        p = f["properties"]
        got[(p["plan_feature_key"], p["rule_id"], p["township_code"])] = p["area_m2"]
        shape = shapely.geometry.shape(f["geometry"])  # lon/lat rounded to 9 decimals (≤ 0.06 mm) for the map
        assert geod_area(shape) == pytest.approx(p["area_m2"], abs=0.01 + shape.length * 111_000 * 5.6e-5)
    assert got.keys() == expected.keys()
    for key, area in expected.items():
        assert got[key] == pytest.approx(area, abs=0.01), key
    # the plan polygon across the township line is split; non-construction uses give nothing
    assert {t for b, r, t in got if b == "P3" and r == "farmland.construction"} == set(TOWNS)
    assert not {b for b, _r, _t in got} & {"P0", "P4", "P7"}
    road = [f["properties"] for f in collection["features"] if f["properties"]["plan_feature_key"] == "P5"]
    assert [(p["rule_id"], p["level"]) for p in road] == [("ecology.linear_infrastructure", "有条件")]
    housing = next(
        f["properties"]
        for f in collection["features"]
        if f["properties"]["plan_feature_key"] == "P6" and f["properties"]["redline_layer"] == "STBHHX"
    )
    assert housing["level"] == "禁止" and housing["redline_ids"] == "ST0,ST1"

    # township × rule rows against the independent areas, and totals equal to the sum of the rows
    by_group: dict[tuple[str, str], float] = defaultdict(float)
    for (_bsm, rule, town), area in expected.items():
        by_group[(town, rule)] += area
    rows = {(r["township_code"], r["rule_id"]): r for r in summary["rows"]}
    assert rows.keys() == by_group.keys()
    for group, area in by_group.items():
        assert rows[group]["area"]["m2"] == pytest.approx(area, abs=0.02)
        assert rows[group]["area"]["mu"] == pytest.approx(area * 0.0015, abs=0.006)
    for total in summary["totals"]:
        parts = [r["area"]["m2"] for r in summary["rows"] if r["rule_id"] == total["rule_id"]]
        assert total["area"]["m2"] == pytest.approx(sum(parts), abs=0.01 * len(parts))
        assert total["area"]["hectare"] == pytest.approx(total["area"]["m2"] / 10_000, abs=0.00005)

    in_box = client.get(
        f"/api/v1/conflicts/{job['id']}/features.geojson", params={"bbox": "114.81,34.81,114.86,34.86"}
    ).json()
    assert {f["properties"]["plan_feature_key"] for f in in_box["features"]} == {"P5", "P6"}

    gpkg = tmp_path / "conflicts.gpkg"
    gpkg.write_bytes(client.get(f"/api/v1/conflicts/{job['id']}/features.gpkg").content)
    frame = gpd.read_file(gpkg, engine="pyogrio")
    assert frame.crs.to_epsg() == 4490 and len(frame) == len(expected)
    assert set(frame.geom_type) == {"MultiPolygon"}


def test_conflicts_against_one_red_line_and_bad_layers(client: TestClient) -> None:
    job = run_jobs(client, client.post("/api/v1/conflicts", json={"red_line_layers": ["yjjbnt"]}).json()["id"])
    assert {r["rule_id"] for r in job["summary"]["rows"]} == {"farmland.construction"}
    assert client.post("/api/v1/conflicts", json={"red_line_layers": ["NOPE"]}).status_code == 404
    assert client.post("/api/v1/conflicts", json={"red_line_layers": ["DLTB"]}).status_code == 404
    missing = client.post("/api/v1/conflicts", json={"plan_layer": "XZQ"})
    assert missing.status_code == 400 and "YDYHFLDM" in missing.json()["message"]


# --------------------------------------------------------------------------------------------------
# Listing jobs
# --------------------------------------------------------------------------------------------------


def seed_job(engine: Engine, kind: str, status: str, created_by: str, minutes_ago: int) -> str:
    """A job row as a runner would have left it, ``minutes_ago`` old (never queued: a runner would take it)."""
    assert status != "queued"
    with engine.begin() as conn:
        job_id = conn.execute(
            text(
                "INSERT INTO job (kind, status, created_by, created_at, started_at, heartbeat_at, finished_at,"
                " progress_done, progress_total, summary, error)"
                " VALUES (:kind, :status, :by, now() - make_interval(mins => :ago), now(), now(),"
                " CASE WHEN :status = 'running' THEN NULL ELSE now() END, 1, 2,"
                " CASE WHEN :status = 'succeeded' THEN CAST('{\"n\": 1}' AS jsonb) END,"
                " CASE WHEN :status = 'failed' THEN 'boom' END) RETURNING id"
            ),
            {"kind": kind, "status": status, "by": created_by, "ago": minutes_ago},
        ).scalar_one()
    return str(job_id)


def test_list_jobs_in_the_core_newest_first_with_filters_and_pages(engine: Engine) -> None:
    with engine.begin() as conn:  # no runner here: a queued job stays queued
        queued = str(jobs.create_job(conn, kind="batch_check", params={}, created_by="a", progress_total=3))
    older = [
        seed_job(engine, "conflicts", "succeeded", "a", 30),
        seed_job(engine, "batch_check", "failed", "b", 20),
        seed_job(engine, "conflicts", "running", "b", 10),
    ]
    everything = jobs.list_jobs(engine)
    assert [j["id"] for j in everything["items"]] == [queued, *reversed(older)]
    assert (everything["total"], everything["limit"], everything["offset"]) == (4, 50, 0)
    assert everything["items"][0] == jobs.get_job(engine, queued)  # the same document as one job gets

    assert [j["id"] for j in jobs.list_jobs(engine, kind="conflicts")["items"]] == [older[2], older[0]]
    assert [j["id"] for j in jobs.list_jobs(engine, status="queued")["items"]] == [queued]
    assert [j["id"] for j in jobs.list_jobs(engine, created_by="b")["items"]] == [older[2], older[1]]
    assert jobs.list_jobs(engine, kind="batch_check", status="failed", created_by="a")["total"] == 0
    assert jobs.list_jobs(engine, created_by="' OR TRUE --")["total"] == 0  # a bound value, not SQL

    page = jobs.list_jobs(engine, limit=3, offset=2)
    assert (page["total"], [j["id"] for j in page["items"]]) == (4, [older[1], older[0]])
    with pytest.raises(PlatformError, match="unknown job kind"):
        jobs.list_jobs(engine, kind="nope")
    with pytest.raises(PlatformError, match="unknown job status"):
        jobs.list_jobs(engine, status="done")
    with pytest.raises(PlatformError, match="limit"):
        jobs.list_jobs(engine, limit=0)


def test_list_jobs_over_http_with_links_filters_and_mine(client: TestClient, county: Engine) -> None:
    alice = auth_headers(county, "planner", "planner-alice")
    bob = auth_headers(county, "planner", "planner-bob")
    submitted = client.post("/api/v1/conflicts", json={}, headers=alice)
    assert submitted.status_code == 202, submitted.text
    run_jobs(client, submitted.json()["id"])
    mine = submitted.json()["id"]
    seeded = {
        "old-batch": seed_job(county, "batch_check", "succeeded", "key:审批系统", 60),
        "bob-failed": seed_job(county, "conflicts", "failed", "planner-bob", 50),
        "bob-running": seed_job(county, "conflicts", "running", "planner-bob", 40),
    }

    listed = client.get("/api/v1/jobs")
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["total"] == 4 and (body["limit"], body["offset"]) == (50, 0)
    assert [j["id"] for j in body["items"]] == [mine, seeded["bob-running"], seeded["bob-failed"], seeded["old-batch"]]
    assert body["items"][0]["created_by"] == "planner-alice"  # the principal name of whoever submitted it
    for item in body["items"]:
        assert item == client.get(f"/api/v1/jobs/{item['id']}").json()  # the single-job document, links included
    assert body["items"][-1]["links"]["checks"] == f"/api/v1/checks?job_id={seeded['old-batch']}"
    assert body["items"][0]["links"]["geojson"] == f"/api/v1/conflicts/{mine}/features.geojson"

    def ids(params: dict[str, Any], headers: dict[str, str] | None = None) -> list[str]:
        response = client.get("/api/v1/jobs", params=params, headers=headers)
        assert response.status_code == 200, response.text
        return [j["id"] for j in response.json()["items"]]

    assert ids({"kind": "batch_check"}) == [seeded["old-batch"]]
    assert ids({"kind": "conflicts", "status": "failed"}) == [seeded["bob-failed"]]
    assert ids({"status": "succeeded"}) == [mine, seeded["old-batch"]]
    assert ids({"mine": "true"}, alice) == [mine]
    assert ids({"mine": "true", "kind": "conflicts"}, bob) == [seeded["bob-running"], seeded["bob-failed"]]
    assert ids({"mine": "false"}, bob) == ids({})  # everyone's
    assert ids({"mine": "true"}) == []  # the admin of the client fixture submitted nothing

    page = client.get("/api/v1/jobs", params={"limit": 2, "offset": 1}).json()
    assert page["total"] == 4 and (page["limit"], page["offset"]) == (2, 1)
    assert [j["id"] for j in page["items"]] == [seeded["bob-running"], seeded["bob-failed"]]
    beyond = client.get("/api/v1/jobs", params={"offset": 2**31 - 1}).json()
    assert beyond["total"] == 4 and beyond["items"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"kind": "import"}, "kind"),
        ({"kind": "conflicts' OR '1'='1"}, "kind"),
        ({"status": "done"}, "status"),
        ({"mine": "perhaps"}, "mine"),
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"offset": -1}, "offset"),
        ({"offset": 2**31}, "offset"),
    ],
)
def test_bad_job_list_queries_are_422(client: TestClient, params: dict[str, Any], field: str) -> None:
    response = client.get("/api/v1/jobs", params=params)
    assert response.status_code == 422, response.text
    assert [d["loc"] for d in response.json()["detail"]] == [["query", field]]


def test_job_list_needs_checks_read(client: TestClient, county: Engine) -> None:
    anonymous = TestClient(client.app)  # the same app (and state), no credentials
    assert anonymous.get("/api/v1/jobs").status_code == 401
    assert client.get("/api/v1/jobs", headers=auth_headers(county, "viewer")).status_code == 403
    schema = client.get("/openapi.json").json()["paths"]["/api/v1/jobs"]["get"]
    enums = {p["name"]: p["schema"].get("anyOf", [{}])[0].get("enum") for p in schema["parameters"]}
    assert tuple(enums["kind"]) == jobs.JOB_KINDS and tuple(enums["status"]) == jobs.JOB_STATUSES
    assert "任务列表" in schema["summary"]


# --------------------------------------------------------------------------------------------------
# Failure, stale jobs, resuming, the background runner
# --------------------------------------------------------------------------------------------------


def job_row(engine: Engine, job_id: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(text("SELECT * FROM job WHERE id = :id"), {"id": job_id}).one()


def test_a_crashing_job_is_marked_failed_with_its_message(
    client: TestClient, county: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with county.begin() as conn:
        bad = jobs.create_job(conn, kind="conflicts", params={"plan_layer": "NOPE"}, created_by="test")
    failed = run_jobs(client, str(bad))
    assert failed["status"] == "failed" and "unknown layer 'NOPE'" in failed["error"]

    def boom(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("boom: the database went away")

    monkeypatch.setattr(batch, "run_check", boom)
    crashed = run_jobs(client, submit_batch(client)["id"])
    assert crashed["status"] == "failed" and crashed["error"] == "RuntimeError: boom: the database went away"
    assert crashed["finished_at"] is not None


def test_stale_running_jobs_are_requeued_then_abandoned(
    county: Engine, catalog: Catalog, rules: RuleSet, settings: Settings
) -> None:
    job_id = submit_batch_core(county, catalog)
    claimed = jobs.claim_next(county, worker="dead-worker")
    assert claimed is not None and str(claimed.id) == job_id
    assert jobs.requeue_stale(county) == []  # the heartbeat is fresh
    with county.begin() as conn:
        conn.execute(text("UPDATE job SET heartbeat_at = now() - interval '11 minutes' WHERE id = :id"), {"id": job_id})
    assert [str(i) for i in jobs.requeue_stale(county)] == [job_id]
    assert job_row(county, job_id).status == "queued"
    assert not jobs.heartbeat(county, claimed)  # the dead worker's claim no longer counts
    row = run_core(county, catalog, rules, settings, job_id)
    assert (row.status, row.attempts) == ("succeeded", 2)

    with county.begin() as conn:
        again = jobs.create_job(conn, kind="conflicts", params={}, created_by="test")
        conn.execute(
            text(
                "UPDATE job SET status = 'running', attempts = 3, heartbeat_at = now() - interval '1 hour'"
                " WHERE id = :id"
            ),
            {"id": again},
        )
    assert jobs.requeue_stale(county) == []
    row = job_row(county, again)
    assert row.status == "failed" and "abandoned" in row.error


def test_an_interrupted_batch_resumes_without_checking_twice(
    county: Engine, catalog: Catalog, rules: RuleSet, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch, "PROGRESS_EVERY", 2)
    job_id = submit_batch_core(county, catalog)
    calls = iter([False, True])
    handle = jobs.claim_next(county, worker="stopping", stop_requested=lambda: next(calls, True))
    assert handle is not None
    assert jobs.execute_job(county, catalog, rules, settings, handle) == "queued"
    row = job_row(county, job_id)
    assert (row.status, row.progress_done, row.claim_id) == ("queued", 2, None)
    row = run_core(county, catalog, rules, settings, job_id)
    assert row.status == "succeeded" and row.summary["parcels"] == 6 and row.summary["checked"] == 3
    with county.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM check_record WHERE job_id = :id"), {"id": job_id}).scalar()
    assert stored == 3


def test_background_runner_picks_up_a_job_at_once(
    county: Engine, catalog: Catalog, rules: RuleSet, settings: Settings
) -> None:
    state = types.SimpleNamespace(engine=county, catalog=catalog, rules=rules, settings=settings)
    runner = jobs.start_job_runner(state, poll_s=30)  # a long poll: only the NOTIFY can wake it in time
    try:
        time.sleep(0.5)
        job_id = submit_batch_core(county, catalog, runner_active=True)
        deadline = time.monotonic() + 20
        while job_row(county, job_id).status != "succeeded" and time.monotonic() < deadline:
            time.sleep(0.1)
        row = job_row(county, job_id)
        assert row.status == "succeeded" and row.worker == runner.worker
    finally:
        jobs.stop_job_runner(state)
    assert state.job_runner is None
