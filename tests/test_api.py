"""The HTTP service on the real test database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from gis_platform import migrate
from gis_platform.catalog import Catalog
from gis_platform.ingest.pipeline import import_file
from gis_platform.settings import Settings

from .helpers import audit_entries, audit_mark, auth_headers, farmland_patches, geod_area, write_geojson

pytestmark = pytest.mark.db


@pytest.fixture
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings), headers=auth_headers(engine)) as test_client:
        yield test_client


def test_health_reports_database_and_postgis(client: TestClient, settings: Settings) -> None:
    body = client.get("/api/v1/health").json()
    assert body["status"] == "ok"
    assert body["database"]["postgis"].startswith("3.")
    assert body["database"]["migration"] == migrate.head_revision(settings)


def test_layers_list_shows_current_version_after_import(
    client: TestClient, engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    patches = farmland_patches(3)
    import_file(engine, catalog, settings, write_geojson(tmp_path / "f.geojson", patches), "YJJBNT")
    layers = {layer["code"]: layer for layer in client.get("/api/v1/layers").json()}
    assert list(layers) == [layer.code for layer in catalog.layers]
    farmland = layers["YJJBNT"]
    assert farmland["name_zh"] == "永久基本农田" and farmland["group"] == "规划"
    assert farmland["current_version"]["feature_count"] == 3
    assert farmland["current_version"]["area_total_m2"] == pytest.approx(sum(geod_area(p) for p in patches), abs=0.05)
    xmin, ymin, xmax, _ymax = farmland["current_version"]["extent"]
    assert (xmin, ymin) == pytest.approx((114.80, 34.80)) and xmax == pytest.approx(114.80 + 2 * 0.003 + 0.002)
    assert layers["STBHHX"]["current_version"] is None

    versions = client.get("/api/v1/layers/yjjbnt/versions").json()
    assert [v["version_no"] for v in versions] == [1] and versions[0]["status"] == "current"


def test_unknown_layer_is_a_404_with_a_json_body(client: TestClient) -> None:
    response = client.get("/api/v1/layers/NOPE/versions")
    assert response.status_code == 404
    body = response.json()
    assert body["error"] == "unknown_layer" and "NOPE" in body["message"]


def test_land_use_classification_with_flags(client: TestClient) -> None:
    uses = {u["code"]: u for u in client.get("/api/v1/land-uses").json()}
    assert uses["0701"]["name_zh"] == "城镇住宅用地" and uses["0701"]["construction"] is True
    assert uses["0101"]["construction"] is False and uses["1202"]["linear_infrastructure"] is True


def test_responses_are_gzip_compressed(client: TestClient) -> None:
    response = client.get("/api/v1/land-uses", headers={"accept-encoding": "gzip"})
    assert response.headers.get("content-encoding") == "gzip"


def test_admin_imports_a_layer_version_over_http(client: TestClient, engine: Engine, tmp_path: Path) -> None:
    mark = audit_mark(engine)
    patches = farmland_patches(3)
    path = write_geojson(tmp_path / "永久基本农田.geojson", patches, [{"YJJBNTTBBH": f"JB{i}"} for i in range(3)])
    with path.open("rb") as handle:
        response = client.post("/api/v1/layers/YJJBNT/versions", files={"file": (path.name, handle)})
    assert response.status_code == 201, response.text
    report = response.json()
    assert report["version_no"] == 1 and report["features_imported"] == 3
    assert report["area_total_m2"] == pytest.approx(sum(geod_area(p) for p in patches), abs=0.01)
    entry = audit_entries(engine, "layer.import", mark)[-1]
    assert (entry["actor"], entry["actor_kind"], entry["target"]) == ("test-admin", "user", "layer:YJJBNT")
    assert entry["details"]["version_no"] == 1 and entry["details"]["source"] == "永久基本农田.geojson"

    # a broken file leaves version 1 current; a planner may not import; an unknown layer is a 404
    broken = client.post("/api/v1/layers/YJJBNT/versions", files={"file": ("bad.geojson", b"{not json")})
    assert broken.status_code == 422 and "bad.geojson" in broken.json()["message"]
    versions = client.get("/api/v1/layers/YJJBNT/versions").json()
    assert [(v["version_no"], v["status"]) for v in versions] == [(1, "current")]
    planner = auth_headers(engine, "planner")
    refused = client.post("/api/v1/layers/YJJBNT/versions", files={"file": ("x.geojson", b"{}")}, headers=planner)
    assert refused.status_code == 403
    assert client.post("/api/v1/layers/NOPE/versions", files={"file": ("x.geojson", b"{}")}).status_code == 404
