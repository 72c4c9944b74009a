"""What changed between two versions of a layer (变更比对), against areas computed independently with pyproj Geod."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from gis_platform.analysis.changes import ComparisonError, compare_versions
from gis_platform.catalog import Catalog
from gis_platform.errors import NotFoundError
from gis_platform.ingest.pipeline import import_file
from gis_platform.settings import Settings

from .helpers import auth_headers, geod_area, square, write_geojson

pytestmark = pytest.mark.db

# version 1 → version 2 of 永久基本农田
KEPT = square(114.780, 34.800)  # JB1: the same in both
GROWN_BEFORE, GROWN_AFTER = square(114.783, 34.800), square(114.783, 34.800, 0.003)  # JB2: larger
GONE = square(114.787, 34.800)  # JB3: removed
NEW = square(114.791, 34.800, 0.001)  # JB4: added
RENAMED = square(114.794, 34.800)  # JB5: same geometry, another 地类
UNNAMED = square(114.797, 34.800)  # no identifier: matched by its geometry, unchanged

V1 = [
    (KEPT, {"YJJBNTTBBH": "JB1", "DLBM": "0101"}),
    (GROWN_BEFORE, {"YJJBNTTBBH": "JB2", "DLBM": "0101"}),
    (GONE, {"YJJBNTTBBH": "JB3", "DLBM": "0102"}),
    (RENAMED, {"YJJBNTTBBH": "JB5", "DLBM": "0101"}),
    (UNNAMED, {"DLBM": "0103"}),
]
V2 = [
    (KEPT, {"YJJBNTTBBH": "JB1", "DLBM": "0101"}),
    (GROWN_AFTER, {"YJJBNTTBBH": "JB2", "DLBM": "0101"}),
    (NEW, {"YJJBNTTBBH": "JB4", "DLBM": "0101"}),
    (RENAMED, {"YJJBNTTBBH": "JB5", "DLBM": "0102"}),
    (UNNAMED, {"DLBM": "0103"}),
]


def load(engine: Engine, catalog: Catalog, settings: Settings, path: Path, rows: list[Any]) -> None:
    geoms, props = zip(*rows, strict=True)
    import_file(engine, catalog, settings, write_geojson(path, list(geoms), list(props)), "YJJBNT")


@pytest.fixture
def two_versions(engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path) -> Engine:
    load(engine, catalog, settings, tmp_path / "v1.geojson", V1)
    load(engine, catalog, settings, tmp_path / "v2.geojson", V2)
    return engine


def close(figures: dict[str, float] | None, m2: float) -> bool:
    return figures is not None and abs(figures["m2"] - m2) < 0.05 and abs(figures["mu"] - m2 * 15 / 10_000) < 0.01


def test_changes_between_the_current_version_and_the_one_before(two_versions: Engine, catalog: Catalog) -> None:
    result = compare_versions(two_versions, catalog, "YJJBNT")
    assert (result["base"]["version_no"], result["target"]["version_no"]) == (1, 2)
    assert result["key_field"] == "YJJBNTTBBH"
    summary = result["summary"]
    assert summary["added"]["count"] == 1 and close(summary["added"]["area"], geod_area(NEW))
    assert summary["removed"]["count"] == 1 and close(summary["removed"]["area"], geod_area(GONE))
    assert summary["changed"]["count"] == 2
    assert close(summary["changed"]["delta"], geod_area(GROWN_AFTER) - geod_area(GROWN_BEFORE))
    assert summary["unchanged"]["count"] == 2 and close(
        summary["unchanged"]["area"], geod_area(KEPT) + geod_area(UNNAMED)
    )
    v1_total = sum(geod_area(g) for g, _ in V1)
    v2_total = sum(geod_area(g) for g, _ in V2)
    assert close(summary["total"]["base"], v1_total) and close(summary["total"]["target"], v2_total)
    assert close(summary["total"]["delta"], v2_total - v1_total)

    items = {item["key"]: item for item in result["items"]}
    assert set(items) == {"JB2", "JB3", "JB4", "JB5"} and result["total"] == 4
    assert (
        items["JB2"]["kind"] == "changed" and items["JB2"]["geometry_changed"] and items["JB2"]["changed_fields"] == []
    )
    assert close(items["JB2"]["delta"], geod_area(GROWN_AFTER) - geod_area(GROWN_BEFORE))
    assert items["JB5"]["changed_fields"] == ["DLBM"] and not items["JB5"]["geometry_changed"]
    assert close(items["JB5"]["delta"], 0.0)
    assert items["JB3"]["kind"] == "removed" and items["JB3"]["target_area"] is None
    assert close(items["JB3"]["delta"], -geod_area(GONE))
    assert items["JB4"]["kind"] == "added" and close(items["JB4"]["target_area"], geod_area(NEW))
    # largest area change first
    deltas = [abs(item["delta"]["m2"]) for item in result["items"]]
    assert deltas == sorted(deltas, reverse=True)


def test_reverse_comparison_swaps_added_and_removed(two_versions: Engine, catalog: Catalog) -> None:
    result = compare_versions(two_versions, catalog, "YJJBNT", base=2, target=1)
    assert {i["key"]: i["kind"] for i in result["items"]} == {
        "JB2": "changed",
        "JB3": "added",
        "JB4": "removed",
        "JB5": "changed",
    }


def test_a_comparison_is_computed_once_and_kept(two_versions: Engine, catalog: Catalog) -> None:
    first = compare_versions(two_versions, catalog, "YJJBNT", kind="added")
    with two_versions.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM version_comparison")).scalar_one() == 1
        stored = conn.execute(text("SELECT count(*) FROM version_change")).scalar_one()
    again = compare_versions(two_versions, catalog, "YJJBNT", kind="added")
    assert again == first and [i["key"] for i in first["items"]] == ["JB4"]
    with two_versions.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM version_comparison")).scalar_one() == 1
        assert conn.execute(text("SELECT count(*) FROM version_change")).scalar_one() == stored == 4


def test_paging(two_versions: Engine, catalog: Catalog) -> None:
    everything = compare_versions(two_versions, catalog, "YJJBNT")["items"]
    pages = [compare_versions(two_versions, catalog, "YJJBNT", limit=1, offset=i)["items"] for i in range(4)]
    assert [page[0] for page in pages] == everything


def test_what_cannot_be_compared_is_named(two_versions: Engine, catalog: Catalog, settings: Settings) -> None:
    with pytest.raises(NotFoundError, match="no version 7"):
        compare_versions(two_versions, catalog, "YJJBNT", base=7)
    with pytest.raises(ComparisonError, match="same version"):
        compare_versions(two_versions, catalog, "YJJBNT", base=2, target=2)
    with pytest.raises(NotFoundError, match="no version before version 1"):
        compare_versions(two_versions, catalog, "YJJBNT", target=1)
    with pytest.raises(NotFoundError, match="no current version"):
        compare_versions(two_versions, catalog, "STBHHX")


@pytest.fixture
def client(settings: Settings, two_versions: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        c.headers.update(auth_headers(two_versions, "viewer"))
        yield c


def test_changes_over_http_with_the_map_layer(client: TestClient) -> None:
    response = client.get("/api/v1/layers/YJJBNT/changes", params={"kind": "changed"})
    assert response.status_code == 200, response.text
    assert [i["key"] for i in response.json()["items"]] == ["JB2", "JB5"]

    collection = client.get("/api/v1/layers/YJJBNT/changes.geojson").json()
    by_key = {f["properties"]["key"]: f for f in collection["features"]}
    assert set(by_key) == {"JB2", "JB3", "JB4", "JB5"}
    assert shapely.geometry.shape(by_key["JB3"]["geometry"]).equals(GONE)  # removed: where it was
    assert shapely.geometry.shape(by_key["JB2"]["geometry"]).equals(GROWN_AFTER)  # changed: where it is now
    assert abs(by_key["JB4"]["properties"]["delta_m2"] - geod_area(NEW)) < 0.05


@pytest.mark.parametrize(
    ("params", "status", "fragment"),
    [
        ({"base": 9}, 404, "no version 9"),
        ({"base": 2, "target": 2}, 400, "same version"),
        ({"kind": "moved"}, 422, "kind"),
        ({"base": 0}, 422, "base"),
    ],
)
def test_bad_comparisons_are_4xx_naming_the_problem(
    client: TestClient, params: dict[str, Any], status: int, fragment: str
) -> None:
    response = client.get("/api/v1/layers/YJJBNT/changes", params=params)
    assert response.status_code == status, response.text
    assert fragment in response.text
    assert client.get("/api/v1/layers/NOPE/changes").status_code == 404


def test_cli_prints_the_comparison(two_versions: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from gis_platform.cli import app

    monkeypatch.setenv("GIS_DATABASE_URL", settings.database_url)
    runner = CliRunner()
    table = runner.invoke(app, ["changes", "--layer", "YJJBNT"])
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0].startswith("YJJBNT  v1 → v2")
    added = next(line for line in lines if line.lstrip().startswith("新增 added")).split()
    assert added[2] == "1" and float(added[3].replace(",", "")) == pytest.approx(geod_area(NEW), abs=0.01)
    assert any(line.split()[:2] == ["changed", "JB5"] and line.endswith("[DLBM]") for line in lines)
    as_json = runner.invoke(app, ["changes", "--layer", "YJJBNT", "--json", "--base", "2", "--target", "1"])
    assert as_json.exit_code == 0 and '"removed"' in as_json.output
    missing = runner.invoke(app, ["changes", "--layer", "YJJBNT", "--base", "9"])
    assert missing.exit_code == 2 and "no version 9" in missing.output
