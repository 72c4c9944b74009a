"""变更比对 in the layer tree: what changed since the previous version, in a real Chromium, against the API and Geod.

A module of its own: it imports a second version of 永久基本农田 into its county, which the other modules' tests
must not see.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import shapely

from gis_platform.catalog import Catalog
from gis_platform.ingest.pipeline import import_file
from gis_platform.settings import Settings

from ..helpers import geod_area, write_geojson
from .conftest import FARMLAND, PageLog, Server, screenshot
from .test_web_map import assert_clean, open_map

pytestmark = [pytest.mark.browser, pytest.mark.db]

Page = Any
GROWN = shapely.box(114.790, 34.800, 114.802, 34.812)  # JB1, larger than before
ADDED = shapely.box(114.760, 34.790, 114.765, 34.795)  # JB7, new


@pytest.fixture(scope="module")
def second_version(server: Server, catalog: Catalog, settings: Settings, tmp_path_factory: Any) -> dict[str, Any]:
    """YJJBNT version 2: JB0 as it was, JB1 grown, JB7 new."""
    props = [{"YJJBNTTBBH": f"JB{i}", "TBBH": f"T{i + 1}", "DLBM": "0103", "GDPDJB": "2"} for i in (0, 1, 7)]
    path = write_geojson(Path(tmp_path_factory.mktemp("v2")) / "yjjbnt.geojson", [FARMLAND[0], GROWN, ADDED], props)
    import_file(server.engine, catalog, settings, path, "YJJBNT")
    return server.get("/api/v1/layers/YJJBNT/changes")


def mu(m2: float) -> float:
    return m2 * 15 / 10_000


def test_the_layer_tree_compares_with_the_previous_version(
    page: tuple[Page, PageLog], server: Server, second_version: dict[str, Any]
) -> None:
    summary = second_version["summary"]
    assert summary["added"]["count"] == 1 and summary["changed"]["count"] == 1 and summary["removed"]["count"] == 0
    assert abs(summary["added"]["area"]["mu"] - mu(geod_area(ADDED))) < 0.01
    assert abs(summary["changed"]["delta"]["mu"] - mu(geod_area(GROWN) - geod_area(FARMLAND[1]))) < 0.01
    pg, log = page
    open_map(pg, server)
    pg.locator('[data-legend="YJJBNT"]').click()
    compare = pg.locator('[data-changes="YJJBNT"]')
    assert compare.inner_text() == "与上一版本比对 (v1 → v2)"
    with pg.expect_response(lambda r: "/api/v1/layers/YJJBNT/changes.geojson" in r.url) as answer:
        compare.click()
    drawn = answer.value.json()
    table = pg.locator('[data-layer="YJJBNT"] .changes-summary')
    table.wait_for()
    for kind in ("added", "removed", "changed"):
        row = table.locator(f'tr[data-kind="{kind}"]')
        assert int(row.locator('[data-col="count"]').inner_text()) == summary[kind]["count"]
        area = summary[kind]["area" if kind != "changed" else "delta"]["mu"]
        assert float(row.locator('[data-col="mu"]').inner_text().replace(",", "")) == pytest.approx(area, abs=0.005)
    net = table.locator('tr[data-kind="total"] [data-col="mu"]').inner_text()
    assert float(net.replace(",", "")) == pytest.approx(summary["total"]["delta"]["mu"], abs=0.005)

    # on the map: the new patch in green, the grown one in orange
    colours = """() => {
        const out = [];
        window.gisApp.map.eachLayer((l) => {
            if (l.feature && l.feature.properties.kind) out.push([l.feature.properties.key, l.options.color]);
        });
        return out.sort();
    }"""
    assert sorted(f["properties"]["key"] for f in drawn["features"]) == ["JB1", "JB7"]
    assert pg.evaluate(colours) == [["JB1", "#D46B08"], ["JB7", "#389E0D"]]
    pg.wait_for_function("!document.querySelector('.leaflet-zoom-anim')")  # fitted to the changes
    screenshot(pg, "16-layer-changes")
    pg.locator('[data-action="clear-changes"]').click()
    assert pg.evaluate(colours) == []
    assert_clean(log)
