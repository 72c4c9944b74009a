"""复核 (replay) and 重新核验 (recheck) in the web map's check history and check result, in a real Chromium.

Screenshots at 1366×768 and 390×844 go to tests/artifacts/web-replay-*.png.
"""

from __future__ import annotations

from typing import Any

import pytest
import shapely
from sqlalchemy import text

from gis_platform.catalog import Catalog
from gis_platform.ingest.pipeline import import_file
from gis_platform.settings import Settings

from ..helpers import ensure_user, write_geojson
from .conftest import FARMLAND, NewPage, Server, login, screenshot
from .test_web_map import assert_clean, open_map

pytestmark = [pytest.mark.browser, pytest.mark.db]
Page = Any

ON_FARMLAND = shapely.geometry.mapping(shapely.box(114.785, 34.803, 114.795, 34.807))
PHONE = {"width": 390, "height": 844}


def history_row(pg: Page, check_id: str) -> Any:
    pg.locator('[data-tab="history"]').click()
    row = pg.locator(f'tr[data-check="{check_id}"]')
    row.wait_for()
    return row


def outcome(pg: Page, check_id: str, kind: str) -> Any:
    box = pg.locator(f'.replay-outcome[data-outcome-of="{check_id}"][data-outcome="{kind}"][data-state="done"]')
    box.wait_for()
    return box


def test_history_replays_and_rechecks_with_a_readable_diff(
    new_page: NewPage, server: Server, browser: Any, catalog: Catalog, settings: Settings, tmp_path: Any
) -> None:
    original = server.post(
        "/api/v1/checks", {"geometry": ON_FARMLAND, "land_use": "0703", "project_name": "王庄村民安置点"}
    )
    assert original["verdict"] == "禁止"
    pg, log = new_page("planner")
    open_map(pg, server)
    row = history_row(pg, original["id"])

    # 复核: identical, nothing stored
    row.locator("[data-replay]").click()
    identical = outcome(pg, original["id"], "replay")
    assert identical.locator('[data-status="identical"]').inner_text().startswith("✓ 复核一致")
    assert server.get("/api/v1/checks?limit=1")["total"] == 1
    screenshot(pg, "replay-01-identical")

    # the farmland under the parcel is re-imported smaller: 重新核验 shows what changed and links the new check
    import_file(server.engine, catalog, settings, write_geojson(tmp_path / "jb.geojson", FARMLAND[1:]), "YJJBNT")
    row.locator("[data-recheck]").click()
    rechecked = outcome(pg, original["id"], "recheck")
    answer = server.get("/api/v1/checks?limit=1")["items"][0]
    assert answer["rechecked_from"] == original["id"]
    new = server.get(f"/api/v1/checks/{answer['id']}")
    # the list reloads with the new check on top, marked as a recheck; the outcome stays under the original
    pg.locator(f'tr[data-check="{new["id"]}"] .tag.recheck').wait_for()
    assert "已重新核验" in rechecked.locator('[data-status="rechecked"]').inner_text()
    farmland = rechecked.locator('table.layer-deltas tr[data-layer="YJJBNT"]')
    before = next(x for x in original["layers"] if x["code"] == "YJJBNT")["overlap"]
    after = next(x for x in new["layers"] if x["code"] == "YJJBNT")["overlap"]
    delta_m2 = after["m2"] - before["m2"]
    assert farmland.locator('[data-unit="m2"]').inner_text() == f"−{abs(delta_m2):,.2f}"
    assert (
        farmland.locator('[data-unit="hectare"]').inner_text() == f"−{abs(after['hectare'] - before['hectare']):,.4f}"
    )
    assert farmland.locator('[data-unit="mu"]').inner_text() == f"−{abs(after['mu'] - before['mu']):,.2f}"
    was = rechecked.locator('[data-layer-name="YJJBNT"] .was').inner_text()
    assert was == f"原 {before['m2']:,.2f} → 现 {after['m2']:,.2f} m²"
    assert rechecked.locator('.changes.changed [data-rule="farmland.construction"]').count() == 1
    assert rechecked.locator('.changes.versions [data-version="YJJBNT"]').inner_text() == "永久基本农田 YJJBNT v1 → v2"
    assert [b.get_attribute("data-verdict") for b in rechecked.locator(".verdict-change .verdict").all()] == [
        "禁止",
        "禁止",
    ]
    screenshot(pg, "replay-02-recheck")
    pg.locator('[data-tab="layers"]').click()  # the English view of the same outcome
    pg.locator('[data-lang="en"]').click()
    history_row(pg, original["id"])
    assert "Rechecked" in outcome(pg, original["id"], "recheck").inner_text()
    screenshot(pg, "replay-03-recheck-en")
    pg.locator('[data-lang="zh"]').click()

    # the link opens the new check in the check tab, which says which check it rechecked and replays too
    pg.locator(f'[data-outcome-of="{original["id"]}"] [data-open-check="{new["id"]}"]').click()
    pg.wait_for_selector(f'.check-result[data-check-id="{new["id"]}"]')
    assert pg.locator(".recheck-of [data-open-check]").inner_text() == original["id"]
    pg.locator(".check-result [data-replay]").click()
    pg.locator('.replay-slot [data-status="identical"]').wait_for()
    screenshot(pg, "replay-04-result-view")
    assert_clean(log)


def test_a_different_replay_and_an_earlier_method_check(new_page: NewPage, server: Server) -> None:
    changed = server.post("/api/v1/checks", {"geometry": ON_FARMLAND, "land_use": "0701", "project_name": "篡改样例"})
    earlier = server.post("/api/v1/checks", {"geometry": ON_FARMLAND, "land_use": "0101", "project_name": "早期检查"})
    with server.engine.begin() as conn:  # a stored figure that no longer agrees; a row from before replays existed
        conn.execute(
            text("UPDATE check_record SET result = jsonb_set(result, '{verdict}', '\"通过\"') WHERE id = :id"),
            {"id": changed["id"]},
        )
        conn.execute(
            text("UPDATE check_record SET method = NULL, request = NULL WHERE id = :id"), {"id": earlier["id"]}
        )
    pg, log = new_page("admin")
    open_map(pg, server)
    row = history_row(pg, changed["id"])
    row.locator("[data-replay]").click()
    different = outcome(pg, changed["id"], "replay")
    assert different.locator('[data-status="different"]').inner_text() == "✗ 复核不一致：1 处不同。"
    assert [b.get_attribute("data-verdict") for b in different.locator(".verdict-change .verdict").all()] == [
        "通过",
        "禁止",
    ]
    different.locator("details.differences summary").click()
    assert "verdict" in different.locator("details.differences li").first.inner_text()
    screenshot(pg, "replay-05-different")
    different.locator("[data-close-outcome]").click()
    assert pg.locator(f'[data-outcome-of="{changed["id"]}"]').count() == 0

    old_row = history_row(pg, earlier["id"])
    assert old_row.locator(".tag.earlier").inner_text() == "早期方法"
    assert old_row.locator("[data-recheck]").is_disabled()
    old_row.locator("[data-replay]").click()
    told = outcome(pg, earlier["id"], "replay")
    assert "早期方法计算" in told.locator('[data-status="earlier_method"]').inner_text()
    screenshot(pg, "replay-06-earlier")
    assert_clean(log)


def test_replay_on_a_phone_sized_screen_and_for_a_viewer(
    new_page: NewPage, server: Server, browser: Any, catalog: Catalog, settings: Settings, tmp_path: Any
) -> None:
    check = server.post("/api/v1/checks", {"geometry": ON_FARMLAND, "land_use": "0703", "project_name": "手机查看"})
    import_file(server.engine, catalog, settings, write_geojson(tmp_path / "jb.geojson", FARMLAND), "YJJBNT")
    context = browser.new_context(viewport=PHONE, locale="zh-CN", device_scale_factor=2)
    try:
        login(context, server, ensure_user(server.engine, "planner", "web-planner-phone")["username"])
        pg = context.new_page()
        pg.set_default_timeout(20_000)
        open_map(pg, server)
        row = history_row(pg, check["id"])
        row.locator("[data-recheck]").click()
        outcome(pg, check["id"], "recheck")
        pg.locator(f'tr[data-check] .tag.recheck[title$="{check["id"]}"]').wait_for()  # the list has reloaded
        pg.locator(f'[data-outcome-of="{check["id"]}"]').scroll_into_view_if_needed()
        # the outcome fits the sidebar: no part of it is cut off on the right
        right = pg.evaluate(
            'id => { const b = document.querySelector(`[data-outcome-of="${id}"]`).getBoundingClientRect();'
            " const s = document.querySelector('.sidebar').getBoundingClientRect(); return [b.right, s.right]; }",
            check["id"],
        )
        assert right[0] <= right[1]
        assert (
            pg.locator(f'[data-outcome-of="{check["id"]}"] tr[data-layer="YJJBNT"] [data-unit="m2"]').inner_text()[0]
            == "+"
        )
        screenshot(pg, "replay-07-phone-recheck")
        pg.locator('[data-lang="en"]').click()  # off to the right: the page is 1024 px wide at least (app.css)
        pg.locator(f'[data-outcome-of="{check["id"]}"] .caption').wait_for()
        pg.evaluate("window.scrollTo(0, window.scrollY)")
        screenshot(pg, "replay-08-phone-recheck-en")
        pg.locator(f'[data-outcome-of="{check["id"]}"] [data-open-check]').click()
        pg.locator(".check-result .recheck-of").wait_for()
        pg.locator(".check-result [data-replay]").click()
        pg.locator('.replay-slot [data-status="identical"]').wait_for()
        pg.evaluate("window.scrollTo(0, window.scrollY)")
        screenshot(pg, "replay-09-phone-result-en")
        pg.locator('[data-lang="zh"]').click()
    finally:
        context.close()
    # a viewer sees neither the history nor its buttons
    viewer, _log = new_page("viewer")
    open_map(viewer, server)
    assert viewer.locator('[data-tab="history"]').is_hidden()
