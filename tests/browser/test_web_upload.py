"""Uploading a parcel file in the web map: inspect it, pick the use and name fields, check — in Chromium against the
real API. Each parcel is checked with its own use and shown with its own name (地块名称), in the result, the
history and the report; a use that does not map is explained in words next to the file; no use is 需补充用途.

Screenshots (1366×768 and 390×844) and the PDF report as PNG go to tests/artifacts/.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from ..test_parcel_use import INDUSTRY, ON_FARMLAND, SHOP, txt, txt_line
from .conftest import ARTIFACTS, PageLog, Server, screenshot
from .test_web_map import assert_clean, open_map, wait_for_check

pytestmark = [pytest.mark.browser, pytest.mark.db]

Page = Any
NARROW = {"width": 390, "height": 844}
WIDE = {"width": 1366, "height": 768}

TWO_PARCELS = txt(
    txt_line("DK-01", "城关镇东区厂房", INDUSTRY, use="1001", dlbm="0601"),
    txt_line("DK-02", "王庄商业综合体", SHOP, use="0901", dlbm="05H1"),
)


def is_inspect(response: Any) -> bool:
    return bool(response.url.endswith("/api/v1/checks/inspect") and response.status == 200)


def choose_upload(pg: Page, server: Server, path: Path, land_use: str = "") -> Any:
    open_map(pg, server)
    pg.locator('[data-tab="check"]').click()
    pg.locator('[data-input-mode="upload"]').click()
    form = pg.locator("#check-panel form")
    if land_use:
        form.locator('input[name="land_use"]').fill(land_use)
    with pg.expect_response(is_inspect):
        form.locator('input[name="file"]').set_input_files(str(path))
    form.locator("[data-inspect-parcels] tbody tr").first.wait_for()
    return form


def parcel_rows(form: Any) -> list[list[str]]:
    rows = form.locator("[data-inspect-parcels] tbody tr").all()
    return [[cell.inner_text().strip() for cell in row.locator("td").all()] for row in rows]


def pick(pg: Page, form: Any, name: str, value: str) -> None:
    with pg.expect_response(is_inspect):
        form.locator(f'select[name="{name}"]').select_option(value)
    pg.wait_for_function(
        "([n, v]) => document.querySelector(`#check-panel select[name=\"${n}\"]`)?.value === v", arg=[name, value]
    )


def narrow_screenshot(pg: Page, name: str, selector: str) -> None:
    pg.set_viewport_size(NARROW)
    pg.locator(selector).first.scroll_into_view_if_needed()
    screenshot(pg, f"{name}-390")
    pg.set_viewport_size(WIDE)


def report_png(pg: Page, server: Server, check_id: str, name: str) -> Path:
    """The check's PDF report as the browser downloads it, its first page rendered to PNG (pdftoppm)."""
    response = pg.request.get(f"{server.url}/api/v1/checks/{check_id}/report.pdf")
    assert response.ok and response.headers["content-type"].startswith("application/pdf")
    pdf = ARTIFACTS / f"report-{name}.pdf"
    pdf.write_bytes(response.body())
    png = ARTIFACTS / f"report-{name}"
    subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", str(pdf), str(png)], check=True)
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    (ARTIFACTS / f"report-{name}.txt").write_text(text, encoding="utf-8")
    return pdf


def test_inspect_pick_fields_and_check_each_parcel_with_its_own_use(
    page: tuple[Page, PageLog], server: Server, tmp_path: Path
) -> None:
    pg, log = page
    path = tmp_path / "两地块.txt"
    path.write_bytes(TWO_PARCELS.encode("gbk"))
    form = choose_upload(pg, server, path, land_use="0701")  # the single form value the file's uses override
    box = form.locator("[data-inspect]")
    assert "界址点坐标 TXT，2 个地块，坐标系 EPSG:4526" in box.locator("[data-inspect-summary]").inner_text()
    assert box.locator('select[name="land_use_field"]').input_value() == "DKYT"
    assert box.locator('select[name="label_field"]').input_value() == "DKMC"
    assert box.locator('select[name="land_use_classification"]').input_value() == "land_use"
    options = box.locator('select[name="land_use_field"] option').all_inner_texts()
    assert "DKYT 地块用途 · 自动识别（例：1001 / 0901）" in options and options[-1].startswith("不从文件读取")
    assert parcel_rows(form) == [
        ["1", "城关镇东区厂房", "1001", "1001 工业用地"],
        ["2", "王庄商业综合体", "0901", "0901 商业用地"],
    ]
    screenshot(pg, "upload-inspect")
    narrow_screenshot(pg, "upload-inspect", "[data-inspect]")

    # 地类编码 holds 三调 codes: read through the crosswalk, 0601 → 1001 and 05H1 → 09
    pick(pg, form, "land_use_field", "DLBM")
    assert box.locator('select[name="land_use_classification"]').input_value() == "land_survey"
    assert [row[2:] for row in parcel_rows(form)] == [["0601", "1001 工业用地"], ["05H1", "09 商业服务业用地"]]
    pick(pg, form, "land_use_field", "DKYT")
    pick(pg, form, "label_field", "DKBH")
    assert [row[1] for row in parcel_rows(form)] == ["DK-01", "DK-02"]
    pick(pg, form, "label_field", "DKMC")

    with pg.expect_response(lambda r: r.url.endswith("/api/v1/checks/upload")) as answer:
        form.locator('button[type="submit"]').click()
    assert answer.value.status == 201, answer.value.text()
    checks = answer.value.json()["checks"]
    assert [(c["parcel"]["label"], c["land_use"]["code"], c["verdict"]) for c in checks] == [
        ("城关镇东区厂房", "1001", "通过"),
        ("王庄商业综合体", "0901", "禁止"),
    ]
    wait_for_check(pg)
    result = pg.locator(".check-result")
    assert result.locator("[data-title]").inner_text().strip() == "城关镇东区厂房"
    assert "未命名项目" not in result.inner_text()
    use = result.locator("[data-land-use]")
    assert use.get_attribute("data-land-use") == "1001"
    assert "取自文件：地块用途（DKYT）“1001”，按用地用海分类读取" in use.inner_text()
    chips = result.locator("[data-sibling]")
    assert [c.inner_text().split()[0] for c in chips.all()] == ["城关镇东区厂房", "王庄商业综合体"]
    chips.nth(1).click()
    pg.wait_for_selector(f'.check-result[data-check-id="{checks[1]["id"]}"]')
    assert pg.locator(".check-result header .verdict").get_attribute("data-verdict") == "禁止"
    assert pg.locator(".check-result [data-title]").inner_text().strip() == "王庄商业综合体"
    screenshot(pg, "upload-result")
    narrow_screenshot(pg, "upload-result", ".check-result")
    report_png(pg, server, checks[1]["id"], "upload-parcel")

    pg.locator('[data-tab="history"]').click()
    for check in checks:
        row = pg.locator(f'tr[data-check="{check["id"]}"]')
        row.wait_for()
        assert row.locator("[data-title]").inner_text().splitlines()[0] == check["parcel"]["label"]
    screenshot(pg, "upload-history")

    pg.locator('[data-lang="en"]').click()
    pg.locator('[data-tab="check"]').click()
    assert box.locator("label span").first.inner_text() == "Use field"
    assert "Boundary-coordinate TXT, 2 parcels" in box.locator("[data-inspect-summary]").inner_text()
    english = pg.locator(".check-result [data-land-use]").inner_text()
    assert 'from the file: Parcel use (DKYT) "0901", read as land and sea use (2023 guide)' in english
    screenshot(pg, "upload-english")
    pg.locator('[data-lang="zh"]').click()
    assert_clean(log)


def test_a_use_that_does_not_map_is_explained_and_no_use_is_use_required(
    page: tuple[Page, PageLog], server: Server, tmp_path: Path
) -> None:
    pg, log = page
    path = tmp_path / "农田.txt"
    path.write_bytes(txt(txt_line("DK-9", "农田地块", ON_FARMLAND, use="建设用地", dlbm="1004")).encode("gbk"))
    before = server.get("/api/v1/checks")["total"]
    form = choose_upload(pg, server, path)
    assert "1 个地块的用途无法识别" in form.locator("[data-inspect-problems]").inner_text()
    (row,) = parcel_rows(form)
    assert row[:3] == ["1", "农田地块", "建设用地"] and "“建设用地”只是大类" in row[3]
    # 地类编码 1004 城镇村道路用地 is two 用地用海 classes: listed, not guessed
    pick(pg, form, "land_use_field", "DLBM")
    (row,) = parcel_rows(form)
    assert "“1004”对应多个用地用海分类（1207 城镇道路用地、060101 村道用地），不作猜测" in row[3]
    pick(pg, form, "land_use_field", "DKYT")
    screenshot(pg, "upload-unmapped-inspect")

    with pg.expect_response(lambda r: r.url.endswith("/api/v1/checks/upload") and r.status == 422):
        form.locator('button[type="submit"]').click()
    error = form.locator('[data-error-for="file"]')
    error.wait_for()
    message = error.inner_text()
    assert message.startswith("地块“农田地块”的用途“建设用地”只是大类") and "不从文件读取" in message
    assert "/" not in message and "Error" not in message  # no server path, no library text
    assert server.get("/api/v1/checks")["total"] == before  # nothing stored
    screenshot(pg, "upload-unmapped-error")
    narrow_screenshot(pg, "upload-unmapped-error", '[data-error-for="file"]')

    # not from the file, and no use entered: the parcel gets 需补充用途, never 通过 or 有条件
    pick(pg, form, "land_use_field", "none")
    assert parcel_rows(form)[0][3] == "未提供 → 需补充用途"
    assert form.locator("[data-inspect-without-use]").is_visible()
    assert form.locator('select[name="land_use_classification"]').count() == 0
    form.locator('button[type="submit"]').click()
    shown = wait_for_check(pg)
    stored = server.get(f"/api/v1/checks/{shown['id']}")
    assert stored["verdict"] == "需补充用途" and stored["parcel"]["label"] == "农田地块"
    result = pg.locator(".check-result")
    assert result.locator("header .verdict").get_attribute("data-verdict") == "需补充用途"
    assert result.locator("header .verdict-use-required").count() == 1
    assert "未提供拟用地用途，无法判定是否允许" in result.locator("[data-use-required]").inner_text()
    findings = result.locator(".finding").all()
    rules = {f.get_attribute("data-rule") for f in findings}  # what the parcel touches, whatever its use
    assert rules == {"farmland.use_not_given", "urban_boundary.use_not_given", "township_plan.use_not_given"}
    for finding in findings:  # the badge says what the text says
        assert finding.locator(".verdict").get_attribute("data-verdict") == "需补充用途"
        assert "请补充拟用地类型后复核" in finding.inner_text()
    screenshot(pg, "use-required")
    narrow_screenshot(pg, "use-required", ".check-result")
    report_png(pg, server, stored["id"], "use-required")

    pg.locator('[data-tab="history"]').click()
    pg.locator('#history-panel select[name="verdict"]').select_option("需补充用途")
    pg.locator('#history-panel button[type="submit"]').click()
    pg.locator(f'#history-panel tr[data-check="{stored["id"]}"]').wait_for()
    assert pg.locator("#history-panel tbody tr").count() >= 1
    listed = pg.locator("#history-panel tbody .verdict").all()
    assert {v.get_attribute("data-verdict") for v in listed} == {"需补充用途"}

    # a file that cannot be read: the page's own words, no server text
    bad = tmp_path / "坏文件.zip"
    bad.write_bytes(b"not a zip")
    pg.locator('[data-tab="check"]').click()
    with pg.expect_response(lambda r: r.url.endswith("/api/v1/checks/inspect") and r.status == 422):
        form.locator('input[name="file"]').set_input_files(str(bad))
    assert form.locator('[data-error-for="file"]').inner_text() == "文件内容无法读取：请对照格式检查文件后重试。"
    assert form.locator("[data-inspect]").inner_text().strip() == ""

    pg.locator('[data-lang="en"]').click()
    assert "land use required" in pg.locator(".check-result header .verdict").inner_text()
    screenshot(pg, "use-required-english")
    pg.locator('[data-lang="zh"]').click()
    assert_clean(log, allow_status=(422,))
