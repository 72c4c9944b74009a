"""Land use per parcel: each parcel of an uploaded file is checked with its own use and named by its own name
(boundary TXT 地块用途 / 地块名称, a Shapefile or GeoJSON field), through the API, the CLI and the batch job;
values that do not map are refused by parcel and value; no use at all gives 需补充用途.

On real PostGIS with the small county of test_checks.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from gis_platform.catalog import Catalog
from gis_platform.jobs import run_pending_jobs
from gis_platform.settings import Settings

from .helpers import audit_entries, audit_mark, auth_headers, write_geojson, write_shapefile
from .test_checks import TXT, _gk_ring, layer, load_small_county

pytestmark = pytest.mark.db


@pytest.fixture
def county(engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path) -> Engine:
    return load_small_county(engine, catalog, settings, tmp_path)


@pytest.fixture
def client(settings: Settings, county: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings), headers=auth_headers(county)) as test_client:
        yield test_client

INDUSTRY = shapely.box(114.768, 34.755, 114.776, 34.765)  # inside the urban boundary, on plan 1001 工业用地
SHOP = shapely.box(114.870, 34.870, 114.872, 34.872)  # outside the boundary, nothing else around
ON_FARMLAND = shapely.box(114.782, 34.802, 114.788, 34.808)  # wholly in 永久基本农田, outside the boundary


def txt_line(number: str, name: str, box: shapely.Polygon, use: str = "", dlbm: str = "") -> str:
    ring = _gk_ring(box)
    lines = [f"{len(ring) + 1},0.1,{number},{name},面,,{use},{dlbm},@"]
    lines += [f"J{i + 1},1,{y:.3f},{x:.3f}" for i, (x, y) in enumerate([*ring, ring[0]])]
    return "\n".join(lines)


def txt(*parcels: str) -> str:
    return TXT.format(parcels="\n".join(parcels))


def upload(client: TestClient, name: str, content: bytes, **data: str) -> Any:
    return client.post("/api/v1/checks/upload", files={"file": (name, content)}, data=data)


def inspect(client: TestClient, name: str, content: bytes, **data: str) -> dict[str, Any]:
    response = client.post("/api/v1/checks/inspect", files={"file": (name, content)}, data=data)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def stored_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM check_record")).scalar_one())


def pdf_text(client: TestClient, check_id: str, tmp_path: Path) -> str:
    response = client.get(f"/api/v1/checks/{check_id}/report.pdf")
    assert response.status_code == 200, response.text
    path = tmp_path / f"{check_id}.pdf"
    path.write_bytes(response.content)
    out = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return re.sub(r"\s+", "", out)  # pdftotext drops and inserts spaces between CJK and digits


TWO_PARCELS = txt(
    txt_line("DK-01", "城关镇东区厂房", INDUSTRY, use="1001", dlbm="0601"),
    txt_line("DK-02", "王庄商业综合体", SHOP, use="0901", dlbm="05H1"),
)


# --------------------------------------------------------------------------------------------------
# The two-parcel TXT: each parcel its own use and name, in the result, the history and the PDF
# --------------------------------------------------------------------------------------------------


def test_two_parcel_txt_checks_each_parcel_with_its_own_use_and_name(
    client: TestClient, county: Engine, tmp_path: Path
) -> None:
    response = upload(client, "两地块.txt", TWO_PARCELS.encode("gbk"), land_use="0701", project_number="XM-2")
    assert response.status_code == 201, response.text
    first, second = response.json()["checks"]
    assert [first["land_use"]["code"], second["land_use"]["code"]] == ["1001", "0901"]  # not the form's 0701
    assert [first["parcel"]["label"], second["parcel"]["label"]] == ["城关镇东区厂房", "王庄商业综合体"]
    for check in (first, second):
        source = check["land_use"]["source"]
        assert source["from"] == "file" and source["field"] == "DKYT" and source["field_label_zh"] == "地块用途"
        assert source["classification"] == "land_use" and source["read_as"] == "code"
    assert first["land_use"]["source"]["value"] == "1001"
    # the factory inside the boundary on industrial plan land passes; the shop outside the boundary does not
    assert first["verdict"] == "通过" and first["findings"] == []
    assert second["verdict"] == "禁止"
    assert [f["rule_id"] for f in second["findings"]] == ["urban_boundary.urban_construction_outside"]
    assert "0901 商业用地" in second["findings"][0]["message_zh"]

    history = client.get("/api/v1/checks", params={"project_number": "XM-2"}).json()["items"]
    assert {(i["parcel_label"], i["land_use_code"], i["verdict"]) for i in history} == {
        ("城关镇东区厂房", "1001", "通过"),
        ("王庄商业综合体", "0901", "禁止"),
    }
    report = pdf_text(client, second["id"], tmp_path)
    assert "地块名称王庄商业综合体" in report and "未命名项目" not in report
    assert "0901商业用地" in report and "取自上传文件：地块用途（DKYT）“0901”，按用地用海分类读取" in report
    html = client.get(f"/api/v1/checks/{first['id']}/report.html").text
    assert "城关镇东区厂房" in html


def test_the_same_file_with_one_use_for_all_when_asked(client: TestClient) -> None:
    response = upload(client, "两地块.txt", TWO_PARCELS.encode("gbk"), land_use="0701", land_use_field="none")
    assert response.status_code == 201, response.text
    checks = response.json()["checks"]
    assert [c["land_use"]["code"] for c in checks] == ["0701", "0701"]
    assert all(c["land_use"]["source"] == {"from": "given"} for c in checks)
    assert [c["parcel"]["label"] for c in checks] == ["城关镇东区厂房", "王庄商业综合体"]


@pytest.mark.parametrize(
    ("fields", "uses", "read_as"),
    [
        ({}, ["1001", "0901"], "name"),  # 地块用途 as names, in GBK
        ({"land_use_field": "DLBM"}, ["1001", "09"], "crosswalk"),  # 地类编码 as 三调 codes: 0601 → 1001, 05H1 → 09
    ],
    ids=["names", "三调 codes"],
)
def test_names_and_land_survey_codes(
    client: TestClient, fields: dict[str, str], uses: list[str], read_as: str
) -> None:
    content = txt(
        txt_line("DK-01", "厂房", INDUSTRY, use="工业用地", dlbm="0601"),
        txt_line("DK-02", "商场", SHOP, use="0901 商业用地", dlbm="05H1"),
    ).encode("gbk")
    response = upload(client, "名称.txt", content, **fields)
    assert response.status_code == 201, response.text
    checks = response.json()["checks"]
    assert [c["land_use"]["code"] for c in checks] == uses
    assert checks[0]["land_use"]["source"]["read_as"] == read_as
    if read_as == "crosswalk":
        source = checks[0]["land_use"]["source"]
        assert source["classification"] == "land_survey" and source["survey_code"] == "0601"
        assert source["field_label_zh"] == "地类编码" and len(source["crosswalk_fingerprint"]) == 64


def test_a_land_survey_code_is_never_read_as_a_land_use_code(client: TestClient) -> None:
    # 三调 1001 is 铁路用地 (用地用海 1201); read as 用地用海 it would be checked as a factory
    content = txt(txt_line("R-1", "铁路专用线", SHOP, dlbm="1001")).encode("utf-8")
    response = upload(client, "铁路.txt", content)
    assert response.status_code == 201, response.text
    (check,) = response.json()["checks"]
    assert check["land_use"]["code"] == "1201" and check["land_use"]["source"]["survey_code"] == "1001"
    assert check["verdict"] == "通过"  # a railway outside the urban boundary is not urban construction
    forced = upload(client, "铁路.txt", content, land_use_field="DLBM", land_use_classification="land_use")
    assert forced.status_code == 201 and forced.json()["checks"][0]["land_use"]["code"] == "1001"


@pytest.mark.parametrize(
    ("use", "dlbm", "data", "value", "reason"),
    [
        ("建设用地", "", {}, "建设用地", "too_general"),
        ("9999", "", {}, "9999", "unknown_code"),
        ("厂房", "", {}, "厂房", "unknown_name"),
        ("0701 工业用地", "", {}, "0701 工业用地", "name_mismatch"),
        ("", "1004", {}, "1004", "ambiguous"),  # 城镇村道路用地: 1207 or 060101, not guessed
        ("", "05H1", {"land_use_classification": "land_use"}, "05H1", "unknown_code"),
    ],
)
def test_a_value_that_does_not_map_is_refused_naming_parcel_and_value(
    client: TestClient, county: Engine, use: str, dlbm: str, data: dict[str, str], value: str, reason: str
) -> None:
    content = txt(
        txt_line("DK-01", "城关镇东区厂房", INDUSTRY, use="1001"),
        txt_line("DK-02", "王庄商业综合体", SHOP, use=use, dlbm=dlbm),
    ).encode("gbk")
    mark = audit_mark(county)
    before = stored_count(county)
    field = {"land_use_field": "DLBM"} if dlbm and not use else {}
    response = upload(client, "错误.txt", content, land_use="0701", **field, **data)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "land_use_unmapped"
    assert "王庄商业综合体" in body["message"] and value in body["message"]
    (problem,) = body["details"]["problems"]
    assert (problem["parcel"], problem["label"], problem["value"], problem["reason"]) == (
        2,
        "王庄商业综合体",
        value,
        reason,
    )
    if reason == "ambiguous":
        assert problem["candidates"] == ["1207", "060101"] and "1207 城镇道路用地" in problem["message_zh"]
    if data:
        assert problem["hint"] == "land_survey" and "三调" in problem["message_zh"]
    assert stored_count(county) == before and audit_entries(county, "check.create", mark) == []  # nothing stored


def test_a_named_field_the_file_lacks(client: TestClient) -> None:
    response = upload(client, "两地块.txt", TWO_PARCELS.encode("gbk"), land_use_field="YDYT")
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "field_not_found" and "YDYT" in body["message"]
    assert "DKYT" in body["details"]["fields"] and "PLANAR_AREA_HA" not in body["details"]["fields"]


# --------------------------------------------------------------------------------------------------
# Shapefile and GeoJSON fields: detected from the usual names, or picked
# --------------------------------------------------------------------------------------------------


def zipped_shapefile(tmp_path: Path, properties: dict[str, list[Any]], encoding: str = "GBK") -> bytes:
    folder = tmp_path / "shp"
    folder.mkdir()
    write_shapefile(folder / "parcels.shp", [INDUSTRY, SHOP], properties, epsg=4490, encoding=encoding)
    archive = tmp_path / "parcels.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for part in folder.iterdir():
            zf.write(part, part.name)
    return archive.read_bytes()


def test_shapefile_use_field_detected_numeric_codes_keep_their_zero(client: TestClient, tmp_path: Path) -> None:
    # YDYHFLDM as a numeric DBF field: 701 must read as 0701, not as an unknown 701
    content = zipped_shapefile(tmp_path, {"DKMC": ["一号地", "二号地"], "YDYHFLDM": [1001, 701]})
    response = upload(client, "parcels.zip", content)
    assert response.status_code == 201, response.text
    checks = response.json()["checks"]
    assert [c["land_use"]["code"] for c in checks] == ["1001", "0701"]
    assert [c["parcel"]["label"] for c in checks] == ["一号地", "二号地"]
    assert checks[1]["land_use"]["source"]["field"] == "YDYHFLDM"


def test_shapefile_use_field_picked_by_the_user(client: TestClient, tmp_path: Path) -> None:
    props = {"MC": ["甲地块", "乙地块"], "GHYT": ["工业用地", "商业用地"], "YDYHFLDM": ["0701", "0701"]}
    content = zipped_shapefile(tmp_path, props)
    looked = inspect(client, "parcels.zip", content)
    assert looked["use_field"]["detected"] == "YDYHFLDM" and looked["label_field"]["detected"] is None
    response = upload(client, "parcels.zip", content, land_use_field="ghyt", label_field="MC")  # any case
    assert response.status_code == 201, response.text
    checks = response.json()["checks"]
    assert [c["land_use"]["code"] for c in checks] == ["1001", "0901"]
    assert [c["parcel"]["label"] for c in checks] == ["甲地块", "乙地块"]
    assert checks[0]["land_use"]["source"]["field"] == "GHYT"


def test_geojson_use_field_detected_and_empty_values_fall_back_to_the_form(client: TestClient, tmp_path: Path) -> None:
    path = write_geojson(
        tmp_path / "p.geojson", [INDUSTRY, SHOP], [{"name": "A", "land_use": "1001"}, {"name": "B", "land_use": ""}]
    )
    response = upload(client, "p.geojson", path.read_bytes(), land_use="0703")
    assert response.status_code == 201, response.text
    first, second = response.json()["checks"]
    assert first["land_use"]["code"] == "1001" and first["land_use"]["source"]["from"] == "file"
    assert second["land_use"]["code"] == "0703" and second["land_use"]["source"] == {"from": "given"}
    assert [first["parcel"]["label"], second["parcel"]["label"]] == ["A", "B"]


# --------------------------------------------------------------------------------------------------
# Inspecting a file before the check
# --------------------------------------------------------------------------------------------------


def test_inspect_lists_fields_samples_detected_fields_and_each_parcels_use(
    client: TestClient, county: Engine
) -> None:
    before = stored_count(county)
    body = inspect(client, "两地块.txt", TWO_PARCELS.encode("gbk"), land_use="0701")
    assert (body["file"], body["format"], body["count"]) == ("两地块.txt", "boundary-txt", 2)
    assert body["encoding"].upper() in ("GB18030", "GBK") and body["source_crs"] == "EPSG:4526"
    by_name = {f["name"]: f for f in body["fields"]}
    assert list(by_name) == ["DKBH", "DKMC", "TFH", "DKYT", "DLBM", "HEADER_AREA_HA", "JZDS"]
    assert by_name["DKYT"]["samples"] == ["1001", "0901"] and by_name["DKYT"]["label_zh"] == "地块用途"
    assert by_name["DLBM"]["classification"] == "land_survey" and by_name["TFH"]["filled"] == 0
    assert body["use_field"] == {
        "chosen": "DKYT",
        "detected": "DKYT",
        "classification": "land_use",
        "classification_zh": "用地用海分类",
        "classification_en": "land and sea use (2023 guide)",
    }
    assert body["label_field"] == {"chosen": "DKMC", "detected": "DKMC"}
    assert [(p["label"], p["value"], p["land_use"]["code"], p["from"]) for p in body["parcels"]] == [
        ("城关镇东区厂房", "1001", "1001", "file"),
        ("王庄商业综合体", "0901", "0901", "file"),
    ]
    assert body["problems"] == 0 and body["default_use"]["code"] == "0701"
    # choosing 地类编码 shows the crosswalk, and 05H1 → the first-level class 09
    survey = inspect(client, "两地块.txt", TWO_PARCELS.encode("gbk"), land_use_field="DLBM")
    read = [(p["land_use"]["code"], p["read_as"]) for p in survey["parcels"]]
    assert read == [("1001", "crosswalk"), ("09", "crosswalk")]
    assert survey["use_field"]["classification"] == "land_survey"
    # a value that does not map is listed, not raised: the user picks another field
    bad = txt(txt_line("DK-01", "甲", INDUSTRY, use="建设用地", dlbm="1004"), txt_line("DK-02", "乙", SHOP))
    listed = inspect(client, "bad.txt", bad.encode("gbk"))
    assert listed["problems"] == 1 and listed["without_use"] == 1
    problem = listed["parcels"][0]["problem"]
    assert problem["reason"] == "too_general" and problem["value"] == "建设用地"
    assert listed["parcels"][1]["land_use"] is None and listed["parcels"][1]["from"] is None
    assert stored_count(county) == before


def test_inspect_refuses_a_bad_file_in_words(client: TestClient) -> None:
    response = client.post("/api/v1/checks/inspect", files={"file": ("x.zip", b"not a zip")})
    assert response.status_code == 422 and "zip" in response.json()["message"]


# --------------------------------------------------------------------------------------------------
# No land use: 需补充用途
# --------------------------------------------------------------------------------------------------


def use_required_count(client: TestClient) -> float:
    prefix = 'gis_check_verdicts_total{verdict="需补充用途"} '
    line = next((row for row in client.get("/metrics").text.splitlines() if row.startswith(prefix)), None)
    return float(line.removeprefix(prefix)) if line else 0.0


def test_no_land_use_on_farmland_is_use_required_with_badges_agreeing_with_text(client: TestClient) -> None:
    content = txt(txt_line("DK-9", "农田地块", ON_FARMLAND)).encode("gbk")
    counted = use_required_count(client)
    response = upload(client, "无用途.txt", content)
    assert response.status_code == 201, response.text
    (check,) = response.json()["checks"]
    assert check["verdict"] == "需补充用途" and check["land_use"] is None
    levels = {f["rule_id"]: f["level"] for f in check["findings"]}
    # use-independent facts are still listed: the farmland overlap and the area outside the urban boundary
    assert levels == {"farmland.use_not_given": "需补充用途", "urban_boundary.use_not_given": "需补充用途"}
    for finding in check["findings"]:
        assert finding["level_en"] == "use_required" and "请补充拟用地类型后复核" in finding["message_zh"]
    farmland = next(f for f in check["findings"] if f["rule_id"] == "farmland.use_not_given")
    assert farmland["area"]["m2"] == layer(check, "YJJBNT")["overlap"]["m2"] > 0
    listed = client.get("/api/v1/checks", params={"verdict": "需补充用途"}).json()
    assert [i["id"] for i in listed["items"]] == [check["id"]]
    assert use_required_count(client) == counted + 1


def test_the_verdict_constraint_takes_the_new_outcome(county: Engine) -> None:
    with county.connect() as conn:
        (constraint,) = conn.execute(
            text(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'check_record'::regclass"
                " AND contype = 'c' AND pg_get_constraintdef(oid) LIKE '%verdict%'"
            )
        ).scalars()  # one constraint: the old one was replaced, not joined by a second
    assert all(level in constraint for level in ("禁止", "需补充用途", "有条件", "通过"))


# --------------------------------------------------------------------------------------------------
# Batch and CLI: the same resolver
# --------------------------------------------------------------------------------------------------


def test_batch_of_a_txt_reads_each_parcels_use_and_name(
    client: TestClient, county: Engine, catalog: Catalog, settings: Settings
) -> None:
    content = txt(
        txt_line("DK-01", "城关镇东区厂房", INDUSTRY, use="1001"),
        txt_line("DK-02", "王庄商业综合体", SHOP, use="0901"),
        txt_line("DK-03", "道路", SHOP, use="", dlbm=""),
        txt_line("DK-04", "含糊地块", SHOP, use="工矿仓储用地"),
    ).encode("gbk")
    response = client.post("/api/v1/checks/batch", files={"file": ("batch.txt", content)}, data={"land_use": "1202"})
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["params"]["fields"]["use_field"] == "DKYT" and job["params"]["fields"]["label_field"] == "DKMC"
    run_pending_jobs(county, catalog, client.app.state.rules, settings)  # type: ignore[attr-defined]
    deadline = time.monotonic() + 60  # the app's own runner may hold the job
    while (done := client.get(f"/api/v1/jobs/{job['id']}").json())["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, done
        time.sleep(0.1)
    assert done["status"] == "succeeded", done
    assert done["summary"]["verdicts"] == {"禁止": 1, "需补充用途": 0, "有条件": 0, "通过": 2}
    (error,) = done["summary"]["first_errors"]
    assert error["label"] == "含糊地块" and "工矿仓储用地" in error["error"] and "10 工矿用地" in error["error"]
    items = client.get("/api/v1/checks", params={"job_id": job["id"]}).json()["items"]
    assert {(i["parcel_label"], i["land_use_code"]) for i in items} == {
        ("城关镇东区厂房", "1001"),
        ("王庄商业综合体", "0901"),
        ("道路", "1202"),  # empty 地块用途: the form value
    }


def test_cli_reads_the_fields_and_inspects(client: TestClient, settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "两地块.txt"
    path.write_bytes(TWO_PARCELS.encode("gbk"))
    env = {**os.environ, "GIS_DATABASE_URL": settings.database_url}
    cli = [sys.executable, "-m", "gis_platform.cli", "check", str(path)]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cli, *args], env=env, capture_output=True, text=True, timeout=120)

    looked = run("--inspect")
    assert looked.returncode == 0, looked.stderr
    assert "用途字段 use field: DKYT (用地用海分类)" in looked.stdout and "王庄商业综合体" in looked.stdout
    as_json = run("--format", "json", "--use", "0701")
    assert as_json.returncode == 0, as_json.stderr
    results = json.loads(as_json.stdout)
    assert [(r["parcel"]["label"], r["land_use"]["code"]) for r in results] == [
        ("城关镇东区厂房", "1001"),
        ("王庄商业综合体", "0901"),
    ]
    table = run("--use-field", "none", "--use", "0701")
    assert table.returncode == 0 and "拟用地类型 land use: 0701 城镇住宅用地  ← --use" in table.stdout
    survey = run("--use-field", "DLBM", "--format", "json")
    assert [r["land_use"]["code"] for r in json.loads(survey.stdout)] == ["1001", "09"]
    bad = run("--use-field", "DLBM", "--use-classification", "land_use")
    assert bad.returncode == 2 and "05H1" in bad.stderr and "Traceback" not in bad.stderr
