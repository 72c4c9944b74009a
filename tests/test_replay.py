"""Replayable checks (issue 12, part 5): replay a stored check exactly as recorded, recheck it against today.

Replays run on a representative check of every kind (single JSON check, file upload, batch job item) and every
verdict; the recheck's expected figures come from shapely in the survey plane + pyproj Geod, not the platform.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Transformer
from sqlalchemy import Engine, text

from api.app import create_app
from gis_platform import accounts
from gis_platform.audit import cli_actor
from gis_platform.catalog import Catalog
from gis_platform.ingest.pipeline import import_file
from gis_platform.settings import Settings
from gis_platform.units import area_figures

from . import test_checks
from .helpers import audit_entries, audit_mark, auth_headers, geod_area, overlay, write_geojson
from .test_checks import FARMLAND, TXT, _gk_ring, _txt_parcel, check
from .test_jobs import run_jobs

pytestmark = pytest.mark.db
county, client = test_checks.county, test_checks.client  # the small county of the check tests, and its API client

ON_FARMLAND = shapely.box(114.785, 34.803, 114.795, 34.807)  # across both farmland patches
ROAD_IN_ECOLOGY = shapely.box(114.821, 34.821, 114.829, 34.823)
AWAY = shapely.box(114.870, 34.870, 114.872, 34.872)  # nothing around it


def replay(client: TestClient, check_id: str, **headers: str) -> Any:
    return client.post(f"/api/v1/checks/{check_id}/replay", headers=headers or None)


def recheck(client: TestClient, check_id: str) -> dict[str, Any]:
    response = client.post(f"/api/v1/checks/{check_id}/recheck")
    assert response.status_code == 201, response.text
    return response.json()


def stored_rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM check_record")).scalar_one())


def to_gk(geometry: shapely.Geometry) -> shapely.Geometry:
    transformer = Transformer.from_crs(4490, 4547, always_xy=True)
    return shapely.transform(geometry.segmentize(0.0005), lambda xy: np.column_stack(transformer.transform(*xy.T)))


def every_kind_of_check(client: TestClient, tmp_path: Path) -> list[dict[str, Any]]:
    """A stored check of every kind and verdict: single (JSON, lon/lat and GK with buffer and planar area), upload
    (boundary TXT with zone prefix, GBK), batch job items (a GeoJSON file in GK)."""
    single = [
        check(client, ON_FARMLAND, land_use="0701", project_name="安置小区", project_number="R-1"),
        check(client, to_gk(ROAD_IN_ECOLOGY), crs="EPSG:4547", land_use="1202", buffer_m=15, area_model="planar"),
        check(client, AWAY, land_use="0101"),
    ]
    txt = TXT.format(parcels="\n".join(_txt_parcel(f"DK{i}", _gk_ring(b)) for i, b in enumerate([ON_FARMLAND, AWAY])))
    upload = client.post(
        "/api/v1/checks/upload",
        files={"file": ("界址.txt", txt.encode("gbk"), "text/plain")},
        data={"land_use": "0703", "project_number": "R-2"},
    )
    assert upload.status_code == 201, upload.text
    parcels = write_geojson(
        tmp_path / "batch.geojson",
        [to_gk(ROAD_IN_ECOLOGY), to_gk(AWAY)],
        [{"DKBH": "B-1", "YDYHFLDM": "1202"}, {"DKBH": "B-2", "YDYHFLDM": "0703"}],
    )
    submitted = client.post(
        "/api/v1/checks/batch", files={"file": ("batch.geojson", parcels.read_bytes())}, data={"crs": "EPSG:4547"}
    )
    assert submitted.status_code == 202, submitted.text
    job = run_jobs(client, submitted.json()["id"])
    assert job["status"] == "succeeded", job["error"]
    batch_items = client.get("/api/v1/checks", params={"job_id": job["id"]}).json()["items"]
    batch = [client.get(f"/api/v1/checks/{item['id']}").json() for item in batch_items]
    checks = [*single, *upload.json()["checks"], *batch]
    assert {c["verdict"] for c in checks} == {"禁止", "有条件", "通过"}
    assert {c["source"] for c in checks} == {"api", "upload:界址.txt", "batch"}
    return checks


def test_every_kind_of_stored_check_replays_identically(client: TestClient, county: Engine, tmp_path: Path) -> None:
    checks = every_kind_of_check(client, tmp_path)
    stored, mark = stored_rows(county), audit_mark(county)
    for document in checks:
        response = replay(client, document["id"])
        assert response.status_code == 200, response.text
        answer = response.json()
        assert (answer["status"], answer["identical"], answer["differences"]) == ("identical", True, []), (
            document["source"],
            answer["differences"][:5],
        )
        assert answer["method"] == answer["current_method"] == document["overlay_method"] == "survey-plane/2"
        assert answer["data_versions"] == document["data_versions"] and "XZQ" in document["data_versions"]
        assert not answer["changes"]["verdict"]["changed"] and answer["changes"]["versions"] == []
    assert stored_rows(county) == stored  # a replay stores nothing …
    entries = audit_entries(county, "check.replay", mark)  # … but is audited
    assert [e["target"] for e in entries] == [f"check:{c['id']}" for c in checks]
    assert {(e["actor"], e["outcome"], e["details"]["status"]) for e in entries} == {("test-admin", "ok", "identical")}


def test_recheck_after_a_reimport_reports_the_expected_changes(
    client: TestClient, county: Engine, catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    original = check(client, ON_FARMLAND, land_use="0703", project_number="R-3")  # rural housing on farmland
    assert original["verdict"] == "禁止"
    before_m2 = sum(geod_area(overlay(ON_FARMLAND, patch)) for patch in FARMLAND)

    # the farmland layer is re-imported with only the eastern patch: the finding stays, its area shrinks
    import_file(county, catalog, settings, write_geojson(tmp_path / "v2.geojson", FARMLAND[1:]), "YJJBNT")
    first = recheck(client, original["id"])
    after_m2 = geod_area(overlay(ON_FARMLAND, FARMLAND[1]))
    changes = first["changes"]
    assert changes["verdict"] == {"before": "禁止", "after": "禁止", "changed": False}
    assert changes["findings"]["added"] == changes["findings"]["removed"] == []
    [changed] = changes["findings"]["changed"]
    assert changed["rule_id"] == "farmland.construction" and "area" in changed["fields"]
    assert changed["after"]["area"]["m2"] == pytest.approx(after_m2, abs=0.01)
    farmland = next(layer for layer in changes["layers"] if layer["code"] == "YJJBNT")
    assert farmland["before"]["m2"] == pytest.approx(before_m2, abs=0.01)
    assert farmland["after"]["m2"] == pytest.approx(after_m2, abs=0.01)
    expected = area_figures(after_m2 - before_m2)
    assert farmland["delta"]["m2"] == pytest.approx(expected["m2"], abs=0.02)
    assert farmland["delta"]["hectare"] == pytest.approx(expected["hectare"], abs=0.0002)
    assert farmland["delta"]["mu"] == pytest.approx(expected["mu"], abs=0.02)
    assert [layer["code"] for layer in changes["layers"] if layer["changed"]] == ["YJJBNT"]
    [version] = changes["versions"]
    assert (version["code"], version["before"]["version_no"], version["after"]["version_no"]) == ("YJJBNT", 1, 2)
    assert not (changes["catalog_changed"] or changes["rules_changed"])

    # … and again with no patch under the parcel: the prohibition goes, the verdict becomes a pass
    import_file(county, catalog, settings, write_geojson(tmp_path / "v3.geojson", [shapely.box(114.70, 34.70,
                114.71, 34.71)]), "YJJBNT")  # fmt: skip
    second = recheck(client, original["id"])["changes"]
    assert second["verdict"] == {"before": "禁止", "after": "通过", "changed": True}
    assert [f["rule_id"] for f in second["findings"]["removed"]] == ["farmland.construction"]
    farmland = next(layer for layer in second["layers"] if layer["code"] == "YJJBNT")
    assert farmland["after"]["m2"] == 0 and farmland["delta"]["mu"] == pytest.approx(-before_m2 * 0.0015, abs=0.01)

    # the new check is stored with the link; the old one is untouched and still replays identically
    new = first["check"]
    assert new["rechecked_from"] == original["id"] and new["source"] == "recheck"
    assert client.get(f"/api/v1/checks/{new['id']}").json() == new
    assert client.get(f"/api/v1/checks/{original['id']}").json() == original
    listed = {i["id"]: i for i in client.get("/api/v1/checks").json()["items"]}
    assert listed[new["id"]]["rechecked_from"] == original["id"] and listed[original["id"]]["rechecked_from"] is None
    for check_id in (original["id"], new["id"]):
        assert replay(client, check_id).json()["status"] == "identical"


def test_rechecks_are_audited_and_left_out_of_the_statistics(client: TestClient, county: Engine) -> None:
    def counted() -> tuple[int, float]:
        checks = {i["code"]: i for i in client.get("/api/v1/dashboard").json()["indicators"]}["checks"]
        metric = next(
            (row for row in client.get("/metrics").text.splitlines()
             if row.startswith('gis_check_verdicts_total{verdict="禁止"}')),
            "x 0",
        )  # fmt: skip
        return checks["value"], float(metric.rsplit(" ", 1)[1])

    original = check(client, ON_FARMLAND, land_use="0701")
    before, mark = counted(), audit_mark(county)
    rechecked = recheck(client, original["id"])["check"]
    assert counted() == before and stored_rows(county) == 2
    [entry] = audit_entries(county, "check.recheck", mark)
    assert entry["target"] == f"check:{rechecked['id']}" and entry["details"]["rechecked_from"] == original["id"]
    assert audit_entries(county, "check.create", mark) == []


def test_a_check_stored_the_old_way_answers_earlier_method(client: TestClient, county: Engine) -> None:
    document = check(client, ON_FARMLAND, land_use="0701")
    with county.begin() as conn:  # as rows written before migration 0010 are
        conn.execute(
            text("UPDATE check_record SET method = NULL, request = NULL WHERE id = :id"), {"id": document["id"]}
        )
    answer = replay(client, document["id"])
    assert answer.status_code == 200
    body = answer.json()
    assert (body["status"], body["identical"], body["method"]) == ("earlier_method", None, None)
    assert "早期方法" in body["message"] and "earlier method" in body["message"] and "differences" not in body
    refused = client.post(f"/api/v1/checks/{document['id']}/recheck")
    assert refused.status_code == 409 and refused.json()["error"] == "replay_unavailable"
    assert "早期方法" in refused.json()["message"] and stored_rows(county) == 1


def test_a_missing_version_or_snapshot_is_named(client: TestClient, county: Engine) -> None:
    document = check(client, ON_FARMLAND, land_use="0701")

    def damage(path: str, value: str) -> None:
        with county.begin() as conn:
            conn.execute(
                text("UPDATE check_record SET result = jsonb_set(result, :path, CAST(:v AS jsonb)) WHERE id = :id"),
                {"path": path.split(","), "v": value, "id": document["id"]},
            )

    damage("verdict", json.dumps("通过"))  # a stored figure that no longer agrees: a diff, not "identical"
    damage("findings,0,area,m2", "1.5")
    different = replay(client, document["id"]).json()
    assert (different["status"], different["identical"]) == ("different", False)
    assert {"path": "verdict", "before": "通过", "after": "禁止"} in different["differences"]
    paths = [d["path"] for d in different["differences"]]
    assert paths == ["verdict", f"findings[{document['findings'][0]['rule_id']}].area.m2"]
    assert different["changes"]["verdict"] == {"before": "通过", "after": "禁止", "changed": True}

    damage("data_versions,YJJBNT", "99999")
    missing = replay(client, document["id"])
    assert missing.status_code == 409, missing.text
    assert "YJJBNT 版本 id 99999" in missing.json()["message"] and "no longer exist" in missing.json()["message"]
    damage("rules_fingerprint", json.dumps("ab" * 32))
    unknown = replay(client, document["id"])
    assert unknown.status_code == 409 and unknown.json()["error"] == "snapshot_missing"
    assert "abababababab" in unknown.json()["message"] and "rules" in unknown.json()["message"]


def test_an_older_rule_set_is_loaded_from_its_snapshot(
    county: Engine, settings: Settings, catalog: Catalog, tmp_path: Path
) -> None:
    layers = tmp_path / "layers"
    shutil.copytree(settings.layers_dir, layers)
    rules_file = layers / "rules.yaml"
    rules_file.write_text(rules_file.read_text(encoding="utf-8") + "\n# an older wording of the rules\n", "utf-8")
    older = settings.model_copy(update={"layers_dir": layers})
    with TestClient(create_app(older), headers=auth_headers(county)) as old_service:
        document = check(old_service, ON_FARMLAND, land_use="0701")
    with TestClient(create_app(settings), headers=auth_headers(county)) as today:
        assert today.app.state.rules.fingerprint != document["rules_fingerprint"]  # type: ignore[attr-defined]
        answer = replay(today, document["id"]).json()
    assert answer["status"] == "identical", answer.get("differences")
    assert answer["rules_fingerprint"] == document["rules_fingerprint"]


def test_access_and_unknown_ids(client: TestClient, county: Engine) -> None:
    document = check(client, AWAY, land_use="0101")
    for action in ("replay", "recheck"):
        assert client.post(f"/api/v1/checks/00000000-0000-0000-0000-000000000000/{action}").status_code == 404
        assert client.post(f"/api/v1/checks/not-a-uuid/{action}").status_code == 404
        viewer = client.post(f"/api/v1/checks/{document['id']}/{action}", headers=auth_headers(county, "viewer"))
        assert viewer.status_code == 403
    _record, secret = accounts.create_api_key(county, name="只读审批系统", actor=cli_actor(), scopes=["checks:read"])
    key = {"Authorization": f"Bearer {secret}"}  # in place of the client's own login
    assert replay(client, document["id"], **key).status_code == 200  # reading checks is enough to replay
    assert client.post(f"/api/v1/checks/{document['id']}/recheck", headers=key).status_code == 403
    assert stored_rows(county) == 1


def test_cli_replay_and_recheck(client: TestClient, county: Engine, settings: Settings) -> None:
    document = check(client, ON_FARMLAND, land_use="0701")
    env = {**os.environ, "GIS_DATABASE_URL": settings.database_url}
    cli = [sys.executable, "-m", "gis_platform.cli"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cli, *args], env=env, capture_output=True, text=True, timeout=120)

    replayed = run("replay", document["id"], "--json")
    assert replayed.returncode == 0, replayed.stderr
    assert json.loads(replayed.stdout)["status"] == "identical"
    rechecked = run("recheck", document["id"])
    assert rechecked.returncode == 0, rechecked.stderr
    assert "重新核验 recheck" in rechecked.stdout and "结论 verdict: 禁止 → 禁止" in rechecked.stdout
    assert "YJJBNT" in rechecked.stdout and stored_rows(county) == 2
    bad = run("replay", "00000000-0000-0000-0000-000000000000")
    assert bad.returncode == 2 and "没有该检查记录" in bad.stderr and "Traceback" not in bad.stderr
