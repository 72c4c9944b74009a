"""Leadership dashboard on real PostGIS: township values sum to the county, areas checked against pyproj Geod."""

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
from gis_platform.analysis.dashboard import DashboardService, compute_indicators
from gis_platform.catalog import Catalog
from gis_platform.ingest.pipeline import import_file
from gis_platform.settings import Settings

from .helpers import (
    auth_headers,
    from_plane,
    geod_area,
    overlay,
    overlay_tolerance,
    to_plane,
    union_in_plane,
    write_geojson,
)

pytestmark = pytest.mark.db

TOWNS = {"410001001": shapely.box(114.70, 34.70, 114.80, 34.90), "410001002": shapely.box(114.80, 34.70, 114.90, 34.90)}
NAMES = {"410001001": "城关镇", "410001002": "王庄乡"}
# 三调 patches; several cross the township line x = 114.80, one sticks out of the county (x > 114.90)
DLTB = [
    (shapely.box(114.790, 34.800, 114.810, 34.810), {"BSM": "D1", "DLBM": "0103", "KCXS": 0.1}),
    (shapely.box(114.750, 34.750, 114.760, 34.760), {"BSM": "D2", "DLBM": "0301", "KCXS": 0}),
    (shapely.box(114.785, 34.785, 114.815, 34.795), {"BSM": "D3", "DLBM": "0701", "KCXS": 0, "CZCSXM": "201"}),
    (shapely.box(114.850, 34.850, 114.860, 34.860), {"BSM": "D4", "DLBM": "1106", "KCXS": 0}),
    (shapely.box(114.820, 34.720, 114.830, 34.730), {"BSM": "D5", "DLBM": "0101", "KCXS": "0.05"}),
    (shapely.box(114.820, 34.800, 114.825, 34.805), {"BSM": "D6", "DLBM": "0601", "KCXS": 0, "CZCSXM": "203"}),
    (shapely.box(114.780, 34.820, 114.790, 34.830), {"BSM": "D7", "DLBM": "9999", "KCXS": 0}),
    (shapely.box(114.890, 34.850, 114.910, 34.860), {"BSM": "D8", "DLBM": "0305", "KCXS": 0}),
    (shapely.box(114.770, 34.780, 114.775, 34.785), {"BSM": "D9", "DLBM": "1004", "KCXS": 0, "CZCSXM": "202"}),
]
FARMLAND = [shapely.box(114.790, 34.800, 114.810, 34.810), shapely.box(114.820, 34.720, 114.830, 34.730)]
# two ecological red-line features overlapping each other across the township line
ECOLOGY = [shapely.box(114.780, 34.840, 114.805, 34.860), shapely.box(114.795, 34.845, 114.820, 34.870)]
URBAN = [shapely.box(114.765, 34.775, 114.805, 34.800), shapely.box(114.800, 34.780, 114.830, 34.810)]
URBAN_CODES, CONSTRUCTION = ("201", "202"), {"0701", "0601", "1004"}
CULTIVATED, FOREST, WETLAND = {"0101", "0103"}, {"0301", "0305"}, {"1106"}


def piece_m2(geometry: shapely.Geometry, town: str) -> float:
    return geod_area(overlay(geometry, TOWNS[town]))


def expected_survey(codes: set[str], *, urban_only: bool = False) -> dict[str, float]:
    """Σ area(patch ∩ township) × (1 − KCXS) by township, independently of the platform."""
    out = dict.fromkeys(TOWNS, 0.0)
    for geometry, props in DLTB:
        if props["DLBM"] not in codes or (urban_only and props.get("CZCSXM") not in URBAN_CODES):
            continue
        for town in TOWNS:
            out[town] += piece_m2(geometry, town) * (1 - float(props["KCXS"]))
    return out


def expected_union(features: list[shapely.Geometry]) -> dict[str, float]:
    """Union area per township, computed in the survey plane (shapely) and measured with pyproj Geod."""
    return {
        town: geod_area(from_plane(shapely.union_all([to_plane(f).intersection(to_plane(t)) for f in features])))
        for town, t in TOWNS.items()
    }


def expected_construction_in_udb() -> dict[str, float]:
    udb = shapely.union_all([to_plane(u) for u in URBAN])
    out = dict.fromkeys(TOWNS, 0.0)
    for geometry, props in DLTB:
        if props["DLBM"] in CONSTRUCTION:
            for town in TOWNS:
                out[town] += geod_area(
                    from_plane(to_plane(geometry).intersection(udb).intersection(to_plane(TOWNS[town])))
                )
    return out


def load(engine: Engine, catalog: Catalog, settings: Settings, path: Path, code: str, rows: list[Any]) -> None:
    geoms, props = [g for g, _ in rows], [p for _, p in rows]
    import_file(engine, catalog, settings, write_geojson(path / f"{code}.geojson", geoms, props), code)


@pytest.fixture
def county(engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path) -> Engine:
    load(engine, catalog, settings, tmp_path, "XZQ", [(g, {"XZQDM": c, "XZQMC": NAMES[c]}) for c, g in TOWNS.items()])
    load(engine, catalog, settings, tmp_path, "DLTB", DLTB)
    load(engine, catalog, settings, tmp_path, "YJJBNT", [(g, {"YJJBNTTBBH": f"JB{i}"}) for i, g in enumerate(FARMLAND)])
    load(engine, catalog, settings, tmp_path, "STBHHX", [(g, {"BSM": f"ST{i}"}) for i, g in enumerate(ECOLOGY)])
    load(engine, catalog, settings, tmp_path, "CZKFBJ", [(g, {"BSM": f"U{i}"}) for i, g in enumerate(URBAN)])
    return engine


@pytest.fixture
def client(settings: Settings, county: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings), headers=auth_headers(county)) as test_client:
        yield test_client


def indicators(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["code"]: i for i in body["indicators"]}


def test_every_indicator_matches_geod_and_townships_sum_to_the_county(
    county: Engine, catalog: Catalog, settings: Settings
) -> None:
    with county.connect() as conn:
        data = compute_indicators(conn, catalog, settings)
    assert [(t.code, t.name) for t in data.townships] == list(NAMES.items())
    expected = {
        "cultivated_land": expected_survey(CULTIVATED),
        "construction_land": expected_survey(CONSTRUCTION),
        "forest_land": expected_survey(FOREST),
        "wetland": expected_survey(WETLAND),
        "permanent_farmland": expected_union(FARMLAND),
        "ecological_red_line": expected_union(ECOLOGY),
        "urban_development_boundary": expected_union(URBAN),
        "udb_expansion_ratio": expected_union(URBAN),  # the numerator
    }
    found = {i.code: i for i in data.indicators}
    for code, by_town in expected.items():
        indicator = found[code]
        assert indicator.available, code
        unions = code in (
            "permanent_farmland",
            "ecological_red_line",
            "urban_development_boundary",
            "udb_expansion_ratio",
        )
        for town, value in by_town.items():
            tolerance = overlay_tolerance(value) if unions else 0.01  # a union may drop collinear vertices
            assert indicator.by_township.get(town, 0.0) == pytest.approx(value, abs=tolerance), (code, town)
        assert indicator.total == pytest.approx(sum(indicator.by_township.values()), abs=0.01)
        total = sum(by_town.values())
        assert indicator.total == pytest.approx(total, abs=overlay_tolerance(total) if unions else 0.01), code
    # the patch sticking out of the county counts only inside it; the unknown code is reported, not counted
    assert found["forest_land"].total < sum(geod_area(g) for g, p in DLTB if p["DLBM"] in FOREST) - 1000
    assert any("9999" in note for note in data.notes)


def test_overlapping_red_line_features_count_once(county: Engine, catalog: Catalog, settings: Settings) -> None:
    with county.connect() as conn:
        ecology = next(
            i for i in compute_indicators(conn, catalog, settings).indicators if i.code == "ecological_red_line"
        )
    union = geod_area(union_in_plane(ECOLOGY))
    assert ecology.total == pytest.approx(union, abs=overlay_tolerance(union))
    assert ecology.total < sum(geod_area(e) for e in ECOLOGY) - 10_000


def test_dashboard_json_units_ratio_and_township_rows(client: TestClient, settings: Settings) -> None:
    body = client.get("/api/v1/dashboard").json()
    assert body["townships"] == [{"code": c, "name": n} for c, n in NAMES.items()]
    found = indicators(body)
    assert list(found) == [
        "cultivated_land", "permanent_farmland", "ecological_red_line", "urban_development_boundary",
        "udb_expansion_ratio", "construction_land", "forest_land", "wetland", "checks",
    ]  # fmt: skip
    farmland = found["permanent_farmland"]
    total_m2 = sum(expected_union(FARMLAND).values())
    assert farmland["unit"] == "wan_mu" and farmland["unit_zh"] == "万亩"
    assert farmland["value"] == pytest.approx(total_m2 * 0.0015 / 1e4, abs=1e-6)
    assert farmland["figures"]["hectare"] == pytest.approx(total_m2 / 1e4, abs=1e-4)
    assert farmland["figures"]["mu"] == pytest.approx(total_m2 * 0.0015, abs=0.01)
    assert set(farmland["layers"]) == {"XZQ", "YJJBNT"} and farmland["layers"]["YJJBNT"]["version_no"] == 1
    for indicator in found.values():
        if indicator.get("additive"):
            rows = indicator["by_township"]
            assert [r["code"] for r in rows] == list(NAMES)
            key = "m2" if "figures" in indicator else "value"
            total = indicator["figures"]["m2"] if "figures" in indicator else indicator["value"]
            assert sum(r[key] for r in rows) == pytest.approx(total, abs=0.01 * len(rows))
    union = geod_area(union_in_plane(ECOLOGY))
    assert found["ecological_red_line"]["value"] == pytest.approx(union / 1e6, abs=overlay_tolerance(union) / 1e6)
    # 扩展倍数 with CZCSXM: urban land = construction patches coded 201/202
    ratio = found["udb_expansion_ratio"]
    urban = expected_survey(CONSTRUCTION, urban_only=True)
    udb = expected_union(URBAN)
    assert ratio["additive"] is False and ratio["limit"] == settings.udb_expansion_limit
    assert "CZCSXM" in ratio["definition_zh"] and "201" in ratio["definition_en"]
    assert ratio["value"] == pytest.approx(sum(udb.values()) / sum(urban.values()), abs=1e-4)
    assert ratio["warning"] is (ratio["value"] > settings.udb_expansion_limit)
    for row in ratio["by_township"]:
        assert row["numerator_m2"] == pytest.approx(udb[row["code"]], abs=overlay_tolerance(udb[row["code"]]))
        assert row["denominator_m2"] == pytest.approx(urban[row["code"]], abs=0.01)
    assert body["versions"]["DLTB"]["version_no"] == 1


def test_expansion_ratio_without_czcsxm_uses_construction_inside_the_boundary(
    county: Engine, catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    plain = [(g, {k: v for k, v in p.items() if k != "CZCSXM"}) for g, p in DLTB]
    (tmp_path / "v2").mkdir()
    load(county, catalog, settings, tmp_path / "v2", "DLTB", plain)
    with county.connect() as conn:
        data = compute_indicators(conn, catalog, settings)
    ratio = next(i for i in data.indicators if i.code == "udb_expansion_ratio")
    assert ratio.denominator is not None
    for town, value in expected_construction_in_udb().items():
        assert ratio.denominator.get(town, 0.0) == pytest.approx(value, abs=0.01)
    document = ratio.to_dict(data.townships)
    assert document["value"] == pytest.approx(ratio.total / sum(ratio.denominator.values()), abs=1e-4)
    assert "CZCSXM" in document["definition_zh"] and "inside the boundary" in document["definition_en"]


def test_cached_per_version_set_and_recomputed_after_reimport(
    county: Engine, catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    service = DashboardService(county, catalog, settings)
    first = indicators(service.dashboard())
    indicators(service.dashboard())
    assert service.computations == 1
    (tmp_path / "v2").mkdir()
    load(county, catalog, settings, tmp_path / "v2", "YJJBNT", [(FARMLAND[0], {"YJJBNTTBBH": "JB0"})])
    after = indicators(service.dashboard())
    assert service.computations == 2
    assert after["permanent_farmland"]["figures"]["m2"] == pytest.approx(geod_area(FARMLAND[0]), abs=0.01)
    assert after["permanent_farmland"]["layers"]["YJJBNT"]["version_no"] == 2
    assert after["cultivated_land"] == first["cultivated_land"]


def test_missing_layers(engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path) -> None:
    service = DashboardService(engine, catalog, settings)
    with TestClient(create_app(settings), headers=auth_headers(engine)) as c:
        response = c.get("/api/v1/dashboard")
    assert response.status_code == 404 and "XZQ" in response.json()["message"]
    load(engine, catalog, settings, tmp_path, "XZQ", [(g, {"XZQDM": c, "XZQMC": NAMES[c]}) for c, g in TOWNS.items()])
    found = indicators(service.dashboard())
    assert found["ecological_red_line"]["available"] is False and "STBHHX" in found["ecological_red_line"]["note"]
    assert found["ecological_red_line"]["value"] is None
    assert found["udb_expansion_ratio"]["available"] is False
    assert found["checks"]["value"] == 0


def test_checks_per_month_by_verdict_and_township(client: TestClient, county: Engine) -> None:
    def check(geometry: shapely.Geometry, land_use: str, number: str) -> str:
        body = {"geometry": json.loads(shapely.to_geojson(geometry)), "land_use": land_use, "project_number": number}
        response = client.post("/api/v1/checks", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    prohibited = check(shapely.box(114.795, 34.802, 114.799, 34.806), "0701", "P-1")  # farmland, 城关镇
    passed = check(shapely.box(114.870, 34.870, 114.872, 34.872), "0101", "P-2")  # 王庄乡
    another = check(shapely.box(114.870, 34.870, 114.872, 34.872), "0101", "P-3")
    with county.begin() as conn:
        for check_id, created in ((prohibited, "2026-01-31 17:00:00+00"), (passed, "2026-01-31 15:59:00+00"),
                                  (another, "2025-12-05 08:00:00+00")):  # fmt: skip
            conn.execute(text("UPDATE check_record SET created_at = :t WHERE id = :i"), {"t": created, "i": check_id})
    checks = indicators(client.get("/api/v1/dashboard").json())["checks"]
    verdicts = {r: c for r, c in checks["by_verdict"].items() if c}
    assert checks["value"] == 3 and sum(verdicts.values()) == 3
    months = {m["month"]: m for m in checks["by_month"]}
    # 2026-01-31 17:00 UTC is 1 February in Beijing
    assert set(months) == {"2025-12", "2026-01", "2026-02"}
    assert months["2026-02"]["total"] == 1 and months["2026-02"]["counts"]["禁止"] == 1
    assert months["2026-01"]["total"] == 1 and months["2025-12"]["total"] == 1
    assert [y["total"] for y in checks["by_year"]] == [1, 2]
    assert {r["code"]: r["value"] for r in checks["by_township"]} == {"410001001": 1, "410001002": 2}
    assert checks["outside_townships"] == 0
