"""The map's search box on real PostGIS: townships, feature codes, past checks; hostile input is just text."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from gis_platform.analysis.search import escape_like, search
from gis_platform.catalog import Catalog
from gis_platform.ingest.pipeline import import_file
from gis_platform.settings import Settings

from .helpers import auth_headers, write_geojson

pytestmark = pytest.mark.db

TOWN_A = shapely.box(114.70, 34.70, 114.80, 34.90)
TOWN_B = shapely.box(114.80, 34.70, 114.90, 34.90)
PATCHES = [shapely.box(114.78 + i * 0.003, 34.80, 114.782 + i * 0.003, 34.802) for i in range(4)]
DLTB_PROPS = [
    {"BSM": "4102990000000001", "TBBH": "17", "DLBM": "0103", "DLMC": "旱地"},
    {"BSM": "4102990000000002", "TBBH": "170", "DLBM": "0301", "DLMC": "乔木林地"},
    {"BSM": "A_1", "TBBH": "9", "DLBM": "0701", "DLMC": "城镇住宅用地"},
    {"BSM": "AB1", "TBBH": "8", "DLBM": "0701", "DLMC": "城镇住宅用地"},
]


@pytest.fixture
def client(engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    def load(code: str, geoms: list[Any], props: list[dict[str, Any]]) -> None:
        import_file(engine, catalog, settings, write_geojson(tmp_path / f"{code}.geojson", geoms, props), code)

    load(
        "XZQ", [TOWN_A, TOWN_B], [{"XZQDM": "410299100", "XZQMC": "城关镇"}, {"XZQDM": "410299200", "XZQMC": "何集乡"}]
    )
    load("DLTB", PATCHES, DLTB_PROPS)
    load("YJJBNT", PATCHES[:1], [{"YJJBNTTBBH": "JB-0042", "TBBH": "17"}])
    with TestClient(create_app(settings), headers=auth_headers(engine)) as test_client:
        for number in ("2026-XM-001", "2026-XM-002"):
            parcel = {"type": "Polygon", "coordinates": [[[114.85, 34.85], [114.851, 34.85], [114.851, 34.851],
                                                           [114.85, 34.851], [114.85, 34.85]]]}  # fmt: skip
            body = {"geometry": parcel, "land_use": "0701", "project_number": number, "project_name": "示范物流园"}
            assert test_client.post("/api/v1/checks", json=body).status_code == 201
        yield test_client


def find(client: TestClient, q: str, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/api/v1/search", params={"q": q, **params})
    assert response.status_code == 200, response.text
    return response.json()


def test_township_by_name_and_by_code(client: TestClient) -> None:
    [town] = find(client, "城关")
    assert town["kind"] == "township" and town["layer"] == "XZQ" and "城关镇" in town["label"]
    assert town["bbox"] == pytest.approx(list(TOWN_A.bounds))
    assert set(town) == {"kind", "label", "layer", "id", "bbox"}
    by_code = find(client, "410299200")
    assert by_code[0]["kind"] == "township" and "何集乡" in by_code[0]["label"]
    xzq = client.get("/api/v1/layers/XZQ/features.geojson").json()["features"]
    assert town["id"] == next(f["id"] for f in xzq if f["properties"]["XZQMC"] == "城关镇")


def test_feature_by_code_exact_match_first(client: TestClient) -> None:
    results = find(client, "4102990000000002")
    assert [(r["kind"], r["layer"]) for r in results] == [("feature", "DLTB")]
    assert "4102990000000002" in results[0]["label"] and "乔木林地" in results[0]["label"]
    assert results[0]["bbox"] == pytest.approx(list(PATCHES[1].bounds))
    by_prefix = find(client, "41029900000000")
    assert len(by_prefix) == 2
    # TBBH 17 matches exactly in DLTB and YJJBNT, TBBH 170 only by prefix: exact ones come first
    tbbh = find(client, "17")
    assert [r["layer"] for r in tbbh[:2]] == ["DLTB", "YJJBNT"] and "170" in tbbh[2]["label"]
    [farmland] = find(client, "jb-004")  # case-insensitive prefix of the layer's feature_id_field
    assert farmland["layer"] == "YJJBNT" and "JB-0042" in farmland["label"]


def test_check_by_project_number_or_name(client: TestClient, engine: Engine) -> None:
    results = find(client, "2026-XM")
    assert [r["kind"] for r in results] == ["check", "check"]
    assert all(r["layer"] is None and "示范物流园" in r["label"] for r in results)
    [exact] = find(client, "2026-XM-001", limit=1)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT id FROM check_record WHERE project_number = '2026-XM-001'")).scalar_one()
    assert exact["id"] == str(stored) and exact["bbox"] == pytest.approx([114.85, 34.85, 114.851, 34.851])
    assert [r["kind"] for r in find(client, "物流")] == ["check", "check"]


def test_limit_and_ordering(client: TestClient) -> None:
    assert len(find(client, "4", limit=1)) == 1
    assert client.get("/api/v1/search", params={"q": "4", "limit": 0}).status_code == 422
    assert client.get("/api/v1/search", params={"q": "x" * 101}).status_code == 422
    assert find(client, "   ") == []


@pytest.mark.parametrize(
    "hostile",
    ["'; DROP TABLE feature; --", "' OR '1'='1", "%", "_", "\\", "%%", "1' UNION SELECT 1,2,3 --", "城关%", "\x00"],
)
def test_injection_and_wildcards_find_nothing_and_break_nothing(client: TestClient, hostile: str) -> None:
    assert find(client, hostile) == []
    assert len(find(client, "城关")) == 1  # the tables are still there


def test_like_wildcards_are_literal(engine: Engine, catalog: Catalog, client: TestClient) -> None:
    assert escape_like("a%b_c\\") == "a\\%b\\_c\\\\"
    labels = [r["label"] for r in search(engine, catalog, "A_1")]
    assert len(labels) == 1 and "A_1" in labels[0]  # not AB1
    assert json.dumps(search(engine, catalog, "ab1"), ensure_ascii=False).count("AB1") == 1


def test_a_viewer_finds_places_but_not_past_checks(client: TestClient, engine: Engine) -> None:
    viewer = auth_headers(engine, "viewer")
    found = client.get("/api/v1/search", params={"q": "2026-XM"}, headers=viewer)
    assert found.status_code == 200 and found.json() == []  # an admin finds the two checks (test above)
    towns = client.get("/api/v1/search", params={"q": "城关"}, headers=viewer).json()
    assert [r["kind"] for r in towns] == ["township"]
