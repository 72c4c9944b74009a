"""The web map in a real headless Chromium against the real API and PostGIS.

Every test checks that the page made no request to any host but the platform and logged no error.
Screenshots go to tests/artifacts/web-*.png.
"""

from __future__ import annotations

import io
import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import shapely
from PIL import Image
from pyproj import Geod, Transformer

from gis_platform.catalog import Catalog
from gis_platform.jobs import run_pending_jobs
from gis_platform.rules import load_rules

from .conftest import FARMLAND, TOWN_A, NewPage, PageLog, Server, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.db]

GEOD = Geod(ellps="GRS80")
Page = Any


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def open_map(page: Page, server: Server, path: str = "/") -> None:
    page.goto(server.url + path)
    page.wait_for_selector('#map[data-ready="true"]', state="attached")


def assert_clean(log: PageLog, allow_status: tuple[int, ...] = ()) -> None:
    assert log.foreign_requests() == [], "the page requested another host"
    assert log.page_errors == []
    allowed = [f"status of {s}" for s in allow_status]
    errors = [e for e in log.console_errors if not any(a in e for a in allowed)]
    assert errors == []


def to_page_xy(page: Page, lon: float, lat: float) -> tuple[float, float]:
    """Page pixel of a lon/lat on the Leaflet map (rounded to whole pixels)."""
    x, y = page.evaluate(
        """([lon, lat]) => {
            const m = window.gisApp.map;
            const p = m.latLngToContainerPoint([lat, lon]);
            const r = m.getContainer().getBoundingClientRect();
            return [r.left + p.x, r.top + p.y];
        }""",
        [lon, lat],
    )
    return round(x), round(y)


def to_lonlat(page: Page, x: float, y: float) -> tuple[float, float]:
    """The lon/lat Leaflet gives a click at page pixel (x, y)."""
    lon, lat = page.evaluate(
        """([x, y]) => {
            const m = window.gisApp.map;
            const r = m.getContainer().getBoundingClientRect();
            const ll = m.containerPointToLatLng([x - r.left, y - r.top]);
            return [ll.lng, ll.lat];
        }""",
        [x, y],
    )
    return lon, lat


def set_view(page: Page, lon: float, lat: float, zoom: float) -> None:
    page.evaluate("([lon, lat, z]) => window.gisApp.map.setView([lat, lon], z, { animate: false })", [lon, lat, zoom])
    page.wait_for_timeout(300)


def number(text: str) -> float:
    return float(text.replace(",", "").strip())


def shown_figures(root: Any) -> dict[str, float]:
    return {unit: number(root.locator(f'[data-unit="{unit}"]').first.inner_text()) for unit in ("m2", "hectare", "mu")}


def assert_result_matches(page: Page, check: dict[str, Any]) -> None:
    """The result panel shows exactly the verdict and areas of the check document."""
    result = page.locator(".check-result")
    assert result.get_attribute("data-check-id") == check["id"]
    assert result.locator("header .verdict").get_attribute("data-verdict") == check["verdict"]
    assert shown_figures(result.locator('[data-area="parcel"]')) == check["parcel"]["area"]
    for layer in check["layers"]:
        row = result.locator(f'tr[data-layer="{layer["code"]}"]')
        assert shown_figures(row) == layer["overlap"], layer["code"]
    rules = [r.get_attribute("data-rule") for r in result.locator(".finding").all()]
    assert rules == [f["rule_id"] for f in check["findings"]]


def same_figures(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Two check documents of the same geometry agree on the verdict and every area."""
    assert a["verdict"] == b["verdict"]
    assert a["parcel"]["area"] == b["parcel"]["area"]
    assert [(x["code"], x["overlap"]) for x in a["layers"]] == [(x["code"], x["overlap"]) for x in b["layers"]]
    assert [f["rule_id"] for f in a["findings"]] == [f["rule_id"] for f in b["findings"]]


def wait_for_check(page: Page) -> dict[str, Any]:
    page.wait_for_selector(".check-result[data-check-id]")
    check_id = page.locator(".check-result").get_attribute("data-check-id")
    assert check_id
    return {"id": check_id}


def drawn_tile_pixels(page: Page, code: str) -> int:
    """Non-transparent pixels on the drawn tile canvases of a layer."""
    return int(
        page.evaluate(
            """(code) => {
                let n = 0;
                for (const c of document.querySelectorAll(`[data-layer="${code}"] canvas[data-features]`)) {
                    if (Number(c.dataset.features) === 0) continue;
                    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
                }
                return n;
            }""",
            code,
        )
    )


# --------------------------------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------------------------------


def test_page_loads_offline_with_layer_tree_and_legends(page: tuple[Page, PageLog], server: Server) -> None:
    pg, log = page
    open_map(pg, server)
    pg.wait_for_function("window.gisFirstTiles > 0")
    pg.wait_for_timeout(500)
    screenshot(pg, "01-first-view")
    assert pg.locator("html").get_attribute("lang") == "zh-CN"
    assert [h.inner_text() for h in pg.locator(".layer-group h3").all()][:3] == ["现状", "规划", "管理"]
    # the default layers are on, each with its legend in the catalogue colours
    for code in ("XZQ", "YJJBNT", "STBHHX", "CZKFBJ"):
        assert pg.locator(f'input[data-toggle="{code}"]').is_checked(), code
    assert not pg.locator('input[data-toggle="DLTB"]').is_checked()
    legend = pg.locator('[data-layer="CZKFBJ"] .legend li')
    assert [li.inner_text() for li in legend.all()] == ["城镇集中建设区", "城镇弹性发展区", "特别用途区"]
    assert 'fill="rgba(242,162,214' in pg.locator('[data-layer="CZKFBJ"] .legend svg').first.inner_html()
    # the county fills the first view
    bounds = pg.evaluate("window.gisApp.map.getBounds().toBBoxString().split(',').map(Number)")
    assert bounds[0] <= 114.70 and bounds[1] <= 34.70 and bounds[2] >= 114.90 and bounds[3] >= 34.90
    assert bounds[2] - bounds[0] < 0.6
    # the red lines are drawn, and the township names are on the map
    assert drawn_tile_pixels(pg, "STBHHX") > 100
    assert sorted(e.inner_text() for e in pg.locator(".map-label").all()) == ["城关镇", "王庄乡"]
    # cursor coordinates in CGCS2000 lon/lat and Gauss-Krüger zone 38
    x, y = to_page_xy(pg, 114.8, 34.8)
    pg.mouse.move(x, y)
    lon, lat = to_lonlat(pg, x, y)
    east, north = Transformer.from_crs(4490, 4547, always_xy=True).transform(lon, lat)
    assert f"{lon:.6f}" in pg.locator(".coord-ll").inner_text()
    gk_text = pg.locator(".coord-gk").inner_text()
    assert "38" in gk_text and "EPSG:4547" in gk_text
    assert f"X {north:.2f}" in gk_text and f"Y {east:.2f}" in gk_text
    assert log.requests and all(u.startswith(server.url) for u in log.requests)
    assert_clean(log)


def test_toggling_a_large_layer_draws_vector_tiles(page: tuple[Page, PageLog], server: Server) -> None:
    pg, log = page
    open_map(pg, server)
    set_view(pg, 114.79, 34.805, 14)
    with pg.expect_response(lambda r: "/tiles/DLTB/" in r.url and r.url.endswith(".pbf") and r.status == 200):
        pg.locator('input[data-toggle="DLTB"]').check()
    pg.wait_for_function(
        """() => [...document.querySelectorAll('[data-layer="DLTB"] canvas[data-features]')]
                 .some((c) => Number(c.dataset.features) > 0)"""
    )
    pg.wait_for_timeout(400)
    assert drawn_tile_pixels(pg, "DLTB") > 1000
    # the opacity slider acts on the layer
    pg.locator('[data-legend="DLTB"]').click()
    pg.locator('input[data-opacity="DLTB"]').fill("40")
    opacity = pg.evaluate("getComputedStyle(document.querySelector('[data-layer=\"DLTB\"].leaflet-layer')).opacity")
    assert float(opacity) == pytest.approx(0.4)
    screenshot(pg, "02-vector-tiles")
    pg.locator('input[data-toggle="DLTB"]').uncheck()
    assert pg.locator('[data-layer="DLTB"].leaflet-layer').count() == 0
    assert_clean(log)


def test_identify_lists_visible_layers_with_chinese_labels(page: tuple[Page, PageLog], server: Server) -> None:
    pg, log = page
    open_map(pg, server)
    set_view(pg, 114.785, 34.805, 15)
    x, y = to_page_xy(pg, 114.785, 34.805)
    with pg.expect_response(lambda r: "/api/v1/identify" in r.url):
        pg.mouse.click(x, y)
    panel = pg.locator("#identify-panel")
    panel.locator('[data-layer="YJJBNT"]').wait_for()
    farmland = panel.locator('[data-layer="YJJBNT"]')
    assert "永久基本农田" in farmland.locator("h4").inner_text()
    labels = [th.inner_text() for th in farmland.locator("th").all()]
    assert "永久基本农田图斑编号" in labels and "地类编码" in labels
    assert farmland.locator('th[data-field="YJJBNTTBBH"] + td').inner_text() == "JB0"
    assert panel.locator('[data-layer="XZQ"] th[data-field="XZQMC"] + td').inner_text() == "城关镇"
    # only visible layers are asked: DLTB is off
    assert panel.locator('[data-layer="DLTB"]').count() == 0
    screenshot(pg, "03-identify")
    assert_clean(log)


def test_search_zooms_to_a_township(page: tuple[Page, PageLog], server: Server) -> None:
    pg, log = page
    open_map(pg, server)
    pg.locator("#search input").fill("城关")
    pg.locator(".search-results li[data-index]").first.wait_for()
    assert "城关镇" in pg.locator(".search-results li[data-index]").first.inner_text()
    pg.locator("#search input").press("Enter")
    pg.wait_for_timeout(600)
    lon, lat = pg.evaluate("(() => { const c = window.gisApp.map.getCenter(); return [c.lng, c.lat]; })()")
    assert TOWN_A.contains(shapely.Point(lon, lat))
    assert_clean(log)


def test_drawn_parcel_shows_the_api_verdict_and_areas(page: tuple[Page, PageLog], server: Server) -> None:
    pg, log = page
    open_map(pg, server)
    set_view(pg, 114.79, 34.805, 15)
    pg.locator('[data-tab="check"]').click()
    pg.locator('[data-action="draw"]').click()
    corners = [(114.785, 34.803), (114.795, 34.803), (114.795, 34.807), (114.785, 34.807)]
    points = [to_page_xy(pg, lon, lat) for lon, lat in corners]
    for x, y in points:
        pg.mouse.click(x, y)
        pg.wait_for_timeout(120)
    pg.mouse.click(*points[0])  # back on the first vertex: finish
    pg.wait_for_function("document.querySelector('[data-draw-status]').textContent.includes('m²')")
    clicked = [to_lonlat(pg, x, y) for x, y in points]
    form = pg.locator("#check-panel form")
    form.locator('input[name="land_use"]').fill("0701")
    form.locator('input[name="project_name"]').fill("城关镇安置小区<script>")
    form.locator('input[name="project_number"]').fill("WEB-DRAW-1")
    form.locator('button[type="submit"]').click()
    shown = wait_for_check(pg)
    stored = server.get(f"/api/v1/checks/{shown['id']}")
    assert stored["verdict"] == "禁止"
    assert_result_matches(pg, stored)
    # the same geometry checked directly through the API gives the same verdict and areas
    again = server.post("/api/v1/checks", {"geometry": stored["parcel"]["geometry"], "land_use": "0701"})
    same_figures(stored, again)
    # the drawn vertices are the clicked ones
    ring = stored["parcel"]["geometry"]["coordinates"][0][:-1]
    assert len(ring) == 4
    for lon, lat in clicked:
        assert any(abs(lon - a) < 2e-6 and abs(lat - b) < 2e-6 for a, b in ring), (lon, lat)
    # user text is escaped, the report links point at this check
    assert pg.locator(".check-result .project").inner_text().startswith("城关镇安置小区<script>")
    assert pg.locator('[data-report="pdf"]').get_attribute("href") == f"/api/v1/checks/{stored['id']}/report.pdf"
    # overlaps are drawn on the map in the layers' colours
    assert pg.evaluate("document.querySelectorAll('.leaflet-highlight-pane canvas').length") >= 1
    screenshot(pg, "04-check-drawn")
    # the history lists it and reopens it on the map
    pg.locator('[data-tab="history"]').click()
    row = pg.locator(f'tr[data-check="{stored["id"]}"]')
    row.wait_for()
    assert row.locator(".verdict").get_attribute("data-verdict") == "禁止"
    pg.locator('[data-tab="layers"]').click()
    pg.locator('[data-tab="history"]').click()
    pg.locator(f'tr[data-check="{stored["id"]}"]').click()
    pg.wait_for_selector(f'.check-result[data-check-id="{stored["id"]}"]')
    assert_result_matches(pg, stored)
    assert_clean(log)


def test_pasted_gauss_kruger_coordinates(page: tuple[Page, PageLog], server: Server) -> None:
    pg, log = page
    open_map(pg, server)
    pg.locator('[data-tab="check"]').click()
    pg.locator('[data-input-mode="paste"]').click()
    to_gk = Transformer.from_crs(4490, 4526, always_xy=True)  # zone 38 with the zone prefix
    corners = [(114.782, 34.801), (114.788, 34.801), (114.788, 34.806), (114.782, 34.806), (114.782, 34.801)]
    gk = [to_gk.transform(lon, lat) for lon, lat in corners]
    text = "\n".join(f"J{i + 1}，1，{n:.3f}，{e:.3f}" for i, (e, n) in enumerate(gk))  # full-width commas
    form = pg.locator("#check-panel form")
    form.locator('textarea[name="coordinates"]').fill(text)
    form.locator('input[name="land_use"]').fill("0103")
    form.locator('button[type="submit"]').click()
    shown = wait_for_check(pg)
    stored = server.get(f"/api/v1/checks/{shown['id']}")
    assert stored["parcel"]["source_crs"] == "EPSG:4526"
    assert_result_matches(pg, stored)
    direct = server.post(
        "/api/v1/checks",
        {
            "geometry": {"type": "Polygon", "coordinates": [[[round(e, 3), round(n, 3)] for e, n in gk]]},
            "crs": "EPSG:4526",
            "land_use": "0103",
        },
    )
    same_figures(stored, direct)
    # 地类统计 of the land survey layer is shown with the 田坎 deduction
    assert pg.locator('.land-survey tr[data-dlbm="0103"]').count() == 1
    assert_clean(log)


def test_errors_are_shown_next_to_the_input(page: tuple[Page, PageLog], server: Server) -> None:
    pg, log = page
    open_map(pg, server)
    pg.locator('[data-tab="check"]').click()
    form = pg.locator("#check-panel form")
    # nothing drawn yet
    form.locator('button[type="submit"]').click()
    assert "绘制" in form.locator('[data-error-for="geometry"]').inner_text()
    pg.locator('[data-input-mode="paste"]').click()
    coords = form.locator('textarea[name="coordinates"]')
    # unreadable line, and a zone prefix of another zone: caught before any request
    coords.fill("114.80,34.80\nabc,def\n114.81,34.81")
    form.locator('button[type="submit"]').click()
    assert "第 2 行" in form.locator('[data-error-for="coordinates"]').inner_text()
    coords.fill("3850000,39500000\n3850100,39500000\n3850100,39500100")
    form.locator('button[type="submit"]').click()
    assert "39" in form.locator('[data-error-for="coordinates"]').inner_text()
    # the API's own messages: an unknown land-use code, a parcel outside the county
    coords.fill("114.781,34.801\n114.782,34.801\n114.782,34.802")
    form.locator('input[name="land_use"]').fill("9999")
    with pg.expect_response(lambda r: r.url.endswith("/api/v1/checks") and r.status == 422) as answer:
        form.locator('button[type="submit"]').click()
    message = answer.value.json()["message"]
    land_use_error = form.locator('[data-error-for="land_use"]')
    land_use_error.wait_for()
    assert land_use_error.inner_text() == message and "9999" in message
    assert form.locator('[data-error-for="coordinates"]').is_hidden()
    coords.fill("110.0,30.0\n110.01,30.0\n110.01,30.01")
    form.locator('input[name="land_use"]').fill("0701")
    with pg.expect_response(lambda r: r.url.endswith("/api/v1/checks") and r.status == 422):
        form.locator('button[type="submit"]').click()
    outside = form.locator('[data-error-for="coordinates"]')
    outside.wait_for()
    assert "outside the county" in outside.inner_text()
    screenshot(pg, "05-check-errors")
    assert_clean(log, allow_status=(422,))


def test_uploaded_geojson_parcel(page: tuple[Page, PageLog], server: Server, tmp_path: Path) -> None:
    pg, log = page
    parcel = shapely.box(114.821, 34.821, 114.829, 34.823)  # a road through the ecological red line
    path = tmp_path / "道路.geojson"
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"DKBH": "G-1"},
                        "geometry": json.loads(shapely.to_geojson(parcel)),
                    }
                ],
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    open_map(pg, server)
    pg.locator('[data-tab="check"]').click()
    pg.locator('[data-input-mode="upload"]').click()
    form = pg.locator("#check-panel form")
    form.locator('input[name="file"]').set_input_files(str(path))
    form.locator('input[name="land_use"]').fill("1202")
    form.locator('input[name="project_number"]').fill("WEB-UPLOAD-1")
    form.locator('button[type="submit"]').click()
    shown = wait_for_check(pg)
    stored = server.get(f"/api/v1/checks/{shown['id']}")
    assert stored["verdict"] == "有条件"
    assert stored["source"] == "upload:道路.geojson"
    assert_result_matches(pg, stored)
    direct = server.post("/api/v1/checks", {"geometry": json.loads(shapely.to_geojson(parcel)), "land_use": "1202"})
    same_figures(stored, direct)
    assert geod_m2(parcel) == pytest.approx(stored["parcel"]["area"]["m2"], abs=0.01)
    assert pg.locator(".check-result header .verdict-conditional").count() == 1
    screenshot(pg, "06-check-upload")
    assert_clean(log)


def geod_m2(geometry: shapely.Geometry) -> float:
    return abs(GEOD.geometry_area_perimeter(shapely.orient_polygons(geometry))[0])


def test_measure_area_is_ellipsoidal(page: tuple[Page, PageLog], server: Server) -> None:
    pg, log = page
    open_map(pg, server)
    set_view(pg, 114.79, 34.805, 15)
    pg.locator('[data-measure-action="area"]').click()
    points = [to_page_xy(pg, lon, lat) for lon, lat in [(114.784, 34.802), (114.796, 34.802), (114.790, 34.808)]]
    for x, y in points:
        pg.mouse.click(x, y)
        pg.wait_for_timeout(120)
    pg.mouse.click(*points[0])
    output = pg.locator('.measure-output [data-measure="area"]')
    output.wait_for()
    triangle = shapely.Polygon([to_lonlat(pg, x, y) for x, y in points])
    expected = geod_m2(triangle)
    shown = shown_figures(output)
    assert shown["m2"] == pytest.approx(expected, abs=0.01)
    assert shown["mu"] == round(expected * 15 / 10000, 2)
    assert shown["hectare"] == round(expected / 10000, 4)
    # identify is back once the measurement is done
    assert pg.evaluate("document.querySelector('#identify-panel').hidden")
    assert_clean(log)


def test_export_png_contains_the_vector_tiles(page: tuple[Page, PageLog], server: Server) -> None:
    pg, log = page
    open_map(pg, server)
    pg.wait_for_function("window.gisFirstTiles > 0")
    set_view(pg, 114.835, 34.835, 14)  # the ecological red line: green fill, red outline
    pg.wait_for_function(
        """() => [...document.querySelectorAll('[data-layer="STBHHX"] canvas[data-features]')]
                 .some((c) => Number(c.dataset.features) > 0)"""
    )
    pg.wait_for_timeout(400)
    with pg.expect_download() as info:
        pg.locator('[data-action="export"]').click()
    data = Path(info.value.path()).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(data)).convert("RGB")
    size = pg.locator("#map").bounding_box()
    assert image.width == round(size["width"]) and image.height == round(size["height"]) + 26
    rgb: list[tuple[int, int, int]] = [image.getpixel((x, y)) for x in range(image.width) for y in range(image.height)]  # type: ignore[misc]
    red = sum(1 for r, g, b in rgb if r > 200 and g < 60 and b < 60)
    green = sum(1 for r, g, b in rgb if g > r + 30 and g > b + 30)
    assert red > 200 and green > 2000
    (Path(__file__).resolve().parents[1] / "artifacts").mkdir(exist_ok=True)
    (Path(__file__).resolve().parents[1] / "artifacts" / "web-07-export.png").write_bytes(data)
    assert_clean(log)


def test_conflicts_view_lists_the_countys_analyses_and_runs_a_job(
    new_page: NewPage, server: Server, catalog: Catalog
) -> None:
    rules = load_rules(server.settings.layers_dir, catalog)
    # another planner, on another computer, ran an analysis: the server's list shows it to everyone
    other, other_log = new_page("planner", username="planner-wang")
    started = other.context.request.post(server.url + "/api/v1/conflicts", data={})
    assert started.status == 202, started.text()
    theirs = started.json()["id"]
    run_pending_jobs(server.engine, catalog, rules, server.settings)

    pg, log = new_page("admin")
    me = pg.context.request.get(server.url + "/api/v1/auth/me").json()["name"]
    open_map(pg, server)
    assert pg.evaluate("Object.keys(localStorage).filter((k) => k.includes('conflict'))") == []
    pg.locator('[data-tab="conflicts"]').click()
    their_row = pg.locator(f'.jobs tr[data-job="{theirs}"]')
    their_row.wait_for()
    assert their_row.locator('[data-col="by"]').inner_text() == "planner-wang"
    their_row.locator('[data-col="status"]:has-text("已完成")').wait_for(timeout=15_000)
    their_row.click()  # opens it: its summary and its polygons on the map
    pg.locator(".conflict-summary").wait_for(timeout=15_000)
    their_summary = server.get(f"/api/v1/conflicts/{theirs}")["summary"]
    assert str(their_summary["feature_count"]) in pg.locator(".conflict-output p.small").first.inner_text()
    assert their_row.get_attribute("aria-current") == "true"

    with pg.expect_response(lambda r: r.url.endswith("/api/v1/conflicts") and r.status == 202) as answer:
        pg.locator('[data-action="run-conflicts"]').click()
    job_id = answer.value.json()["id"]
    # the app's job runner may have taken the job already; run it here if it is still queued (the page polls)
    run_pending_jobs(server.engine, catalog, rules, server.settings)
    rows = pg.locator(".jobs tr[data-job]")
    pg.locator(f'.jobs tr[data-job="{job_id}"] [data-col="status"]:has-text("已完成")').wait_for(timeout=15_000)
    listed = server.get("/api/v1/jobs?kind=conflicts")
    assert [r.get_attribute("data-job") for r in rows.all()] == [j["id"] for j in listed["items"]]  # newest first
    assert listed["items"][0]["id"] == job_id and theirs in [j["id"] for j in listed["items"]]
    mine_row = pg.locator(f'.jobs tr[data-job="{job_id}"]')
    assert mine_row.get_attribute("aria-current") == "true"
    assert mine_row.locator('[data-col="by"]').inner_text() == f"{me} （我）"

    table = pg.locator(".conflict-summary")
    table.wait_for(timeout=15_000)
    summary = server.get(f"/api/v1/conflicts/{job_id}")["summary"]
    farmland_rows = [r for r in summary["rows"] if r["layer_code"] == "YJJBNT"]
    assert farmland_rows, summary
    row = table.locator(f'tbody tr[data-township="{farmland_rows[0]["township_code"]}"]').first
    assert "城关镇" in row.inner_text()
    assert shown_figures(row) == farmland_rows[0]["area"]
    screenshot(pg, "08-conflicts")

    # only mine: the other planner's analysis leaves the list; the other planner sees both
    pg.locator('.conflict-jobs [data-filter="mine"]').check()
    pg.locator(f'.jobs tr[data-job="{theirs}"]').wait_for(state="detached")
    assert pg.locator(f'.jobs tr[data-job="{job_id}"]').count() == 1
    open_map(other, server)
    other.locator('[data-tab="conflicts"]').click()
    other.locator(f'.jobs tr[data-job="{job_id}"]').wait_for()
    assert other.locator(f'.jobs tr[data-job="{job_id}"] [data-col="by"]').inner_text() == me
    assert_clean(log)
    assert_clean(other_log)


def test_dashboard_shows_the_api_numbers(page: tuple[Page, PageLog], server: Server) -> None:
    pg, log = page
    open_map(pg, server)
    pg.locator('[data-view="dashboard"]').click()
    pg.locator(".card").first.wait_for()
    pg.wait_for_selector('#dashboard[data-charts="2"]', state="attached")
    data = server.get("/api/v1/dashboard")
    for indicator in data["indicators"]:
        card = pg.locator(f'.card[data-indicator="{indicator["code"]}"]')
        text = card.locator("[data-value]").inner_text()
        if indicator["value"] is None:
            assert text == "—"
        else:
            assert number(text) == indicator["value"], indicator["code"]
        assert ("warning" in (card.get_attribute("class") or "")) == bool(indicator.get("warning")), indicator["code"]
        for town in indicator.get("by_township") or []:
            cell = pg.locator(
                f'.township-table tr[data-township="{town["code"]}"] td[data-indicator="{indicator["code"]}"]'
            )
            shown = cell.inner_text()
            assert (shown == "—") if town["value"] is None else (number(shown) == town["value"])
        if indicator.get("by_township"):
            total = pg.locator(f'.township-table tfoot td[data-indicator="{indicator["code"]}"]').inner_text()
            assert total == "—" if indicator["value"] is None else number(total) == indicator["value"]
    assert pg.locator(".chart canvas").count() >= 2
    screenshot(pg, "09-dashboard")
    assert_clean(log)


def test_language_switch_to_english_and_back(page: tuple[Page, PageLog], server: Server) -> None:
    pg, log = page
    open_map(pg, server)
    assert pg.locator('[data-tab="layers"]').inner_text() == "图层"
    pg.locator('[data-lang="en"]').click()
    assert pg.locator("html").get_attribute("lang") == "en"
    assert pg.locator("h1").inner_text() == "Territorial Spatial Planning One Map"
    assert [pg.locator(f'[data-tab="{t}"]').inner_text() for t in ("layers", "check", "history", "conflicts")] == [
        "Layers",
        "Check",
        "History",
        "Conflicts",
    ]
    assert pg.locator('label[for="toggle-YJJBNT"]').inner_text() == "Permanent basic farmland"
    assert [h.inner_text() for h in pg.locator(".layer-group h3").all()][:3] == ["Status quo", "Planning", "Management"]
    set_view(pg, 114.785, 34.805, 15)
    x, y = to_page_xy(pg, 114.785, 34.805)
    pg.mouse.click(x, y)
    field = pg.locator('#identify-panel [data-layer="YJJBNT"] th[data-field="YJJBNTTBBH"]')
    field.wait_for()
    assert field.inner_text() == "Farmland patch number"
    assert re.search(r"Gauss-Krüger zone 38", pg.locator("#coords").inner_text())
    screenshot(pg, "10-english")
    # the choice is remembered
    pg.reload()
    pg.wait_for_selector('#map[data-ready="true"]', state="attached")
    assert pg.locator('[data-tab="check"]').inner_text() == "Check"
    pg.locator('[data-lang="zh"]').click()
    assert pg.locator('[data-tab="check"]').inner_text() == "合规检查"
    assert_clean(log)


def test_first_view_has_the_red_lines_in_their_colours(page: tuple[Page, PageLog], server: Server) -> None:
    """The farmland hatch and the ecological red outline are drawn from the catalogue styles."""
    pg, log = page
    open_map(pg, server)
    set_view(pg, 114.79, 34.805, 15)
    pg.wait_for_function(
        """() => [...document.querySelectorAll('[data-layer="YJJBNT"] canvas[data-features]')]
                 .some((c) => Number(c.dataset.features) > 0)"""
    )
    x, y = to_page_xy(pg, *FARMLAND[0].centroid.coords[0])
    colour = pg.evaluate(
        """([x, y]) => {
            for (const c of document.querySelectorAll('[data-layer="YJJBNT"] canvas[data-features]')) {
                const r = c.getBoundingClientRect();
                if (x < r.left || x >= r.right || y < r.top || y >= r.bottom) continue;
                const ctx = c.getContext('2d');
                const d = ctx.getImageData(Math.floor(x - r.left) - 4, Math.floor(y - r.top) - 4, 8, 8).data;
                let best = [0, 0, 0, 0];
                for (let i = 0; i < d.length; i += 4) {
                    if (d[i + 3] > best[3]) best = [d[i], d[i + 1], d[i + 2], d[i + 3]];
                }
                return best;
            }
            return null;
        }""",
        [x, y],
    )
    assert colour is not None
    r, g, b, a = colour
    assert a > 150 and r > 200 and g > 180 and b < 140  # the gold #F5D94D hatch
    assert_clean(log)


def test_history_pages_through_the_checks_and_filters_from_the_first_page(
    page: tuple[Page, PageLog], server: Server
) -> None:
    parcel = shapely.geometry.mapping(shapely.box(114.7815, 34.8015, 114.7835, 34.8035))
    run = uuid.uuid4().hex[:8]
    total = server.get("/api/v1/checks?limit=1")["total"]
    for i in range(max(1, 21 - total)):  # more than one page of 20, and one check this test can find again
        server.post("/api/v1/checks", {"geometry": parcel, "project_number": f"PAGING-{run}-{i}"})
    total = server.get("/api/v1/checks?limit=1")["total"]
    pg, log = page
    open_map(pg, server)
    history = pg.locator(".history-list")
    with pg.expect_response(lambda r: "/api/v1/checks?" in r.url and "offset=0" in r.url) as first:
        pg.locator('[data-tab="history"]').click()
    assert first.value.json()["total"] == total
    history.locator("tr[data-check]").first.wait_for()
    assert history.locator("tr[data-check]").count() == 20
    assert history.locator("[data-range]").inner_text() == f"第 1–20 条，共 {total} 条"
    assert history.locator('[data-page="-1"]').is_disabled()

    with pg.expect_response(lambda r: "/api/v1/checks?" in r.url and "offset=20" in r.url) as second:
        history.locator('[data-page="1"]').click()
    shown = len(second.value.json()["items"])
    assert shown == min(20, total - 20)
    pg.wait_for_function(
        "n => document.querySelectorAll('.history-list tr[data-check]').length === n && "
        "document.querySelector('.history-list [data-range]').textContent.startsWith('第 21')",
        arg=shown,
    )
    assert history.locator("[data-range]").inner_text() == f"第 21–{20 + shown} 条，共 {total} 条"
    first_ids = {item["id"] for item in first.value.json()["items"]}
    page_ids = {history.locator("tr[data-check]").nth(i).get_attribute("data-check") for i in range(shown)}
    assert page_ids == {item["id"] for item in second.value.json()["items"]} and not page_ids & first_ids

    # a filter starts again at the first page
    number = f"PAGING-{run}-0"
    field = pg.locator('#history-panel form input[name="project_number"]')
    with pg.expect_response(lambda r: "/api/v1/checks?" in r.url and f"project_number={number}" in r.url) as found:
        field.fill(number)
        field.press("Enter")
    assert "offset=0" in found.value.url
    pg.wait_for_function("document.querySelectorAll('.history-list tr[data-check]').length === 1")
    assert history.locator("[data-range]").inner_text() == "第 1–1 条，共 1 条"
    assert_clean(log)
