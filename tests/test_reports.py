"""Check reports (建设项目用地合规性审查报告) as HTML and PDF, from checks run through the API on real PostGIS."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import shapely
from fastapi.testclient import TestClient
from markupsafe import escape
from pyproj import Geod
from sqlalchemy import Engine

from api.app import create_app
from gis_platform.catalog import Catalog
from gis_platform.errors import ConfigurationError
from gis_platform.ingest.pipeline import import_file
from gis_platform.reports import check_report, fonts, render_check_html, render_check_pdf
from gis_platform.reports.map_svg import build_map, metres_per_degree, nice_length
from gis_platform.settings import Settings

from .helpers import auth_headers, write_geojson

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
TITLE = "建设项目用地合规性审查报告"

# A small synthetic county near 114.8°E 34.8°N, in EPSG:4490 (as in test_checks.py).
TOWNS = [shapely.box(114.70, 34.70, 114.80, 34.90), shapely.box(114.80, 34.70, 114.90, 34.90)]
FARMLAND = [shapely.box(114.780, 34.800, 114.790, 34.810), shapely.box(114.790, 34.800, 114.800, 34.810)]
ECOLOGY = [shapely.box(114.7935, 34.8055, 114.7990, 34.8120)]
DLTB = [shapely.box(114.770, 34.795, 114.790, 34.815), shapely.box(114.790, 34.795, 114.810, 34.815)]
PARCEL = shapely.Polygon(
    [(114.786, 34.8025), (114.7965, 34.8020), (114.7975, 34.8075), (114.7905, 34.8085), (114.786, 34.8025)]
)
# attribute text a report must escape, never interpret
HOSTILE = '<script>alert("x")</script>黄河湿地 & <img src="https://evil.example/x.png">'


@pytest.fixture
def county(engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path) -> Engine:
    def load(code: str, geoms: list[Any], props: list[dict[str, Any]]) -> None:
        import_file(engine, catalog, settings, write_geojson(tmp_path / f"{code}.geojson", geoms, props), code)

    load("XZQ", TOWNS, [{"XZQDM": "410001001", "XZQMC": "城关镇"}, {"XZQDM": "410001002", "XZQMC": "王庄乡"}])
    load(
        "YJJBNT",
        FARMLAND,
        [{"YJJBNTTBBH": f"JB-{i}", "DLBM": "0103", "GDPDJB": "2", "YJJBNTTBMJ": 1234567.891} for i in range(2)],
    )
    load("STBHHX", ECOLOGY, [{"BSM": "ST1", "HXMC": HOSTILE, "LHLX": "水源涵养"}])
    load(
        "DLTB",
        DLTB,
        [
            {"BSM": "1", "DLBM": "0103", "DLMC": "旱地", "KCXS": 0.1, "ZLDWMC": "城关镇东村"},
            {"BSM": "2", "DLBM": "0301", "DLMC": "乔木林地", "KCXS": 0.0, "ZLDWMC": "王庄乡西村"},
        ],
    )
    return engine


@pytest.fixture
def client(settings: Settings, county: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings), headers=auth_headers(county)) as test_client:
        yield test_client


def run_check(client: TestClient, parcel: shapely.Geometry, **extra: Any) -> dict[str, Any]:
    body = {"geometry": json.loads(shapely.to_geojson(parcel)), **extra}
    response = client.post("/api/v1/checks", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def prohibited_check(client: TestClient) -> dict[str, Any]:
    return run_check(
        client, PARCEL, land_use="0701", project_number="2026-YS-0001", project_name="城关镇安置小区（一期）"
    )


def poppler(tool: str, *args: str) -> str:
    binary = shutil.which(tool)
    if binary is None:
        pytest.fail(f"{tool} not found: install the Debian package poppler-utils (scripts/lib.sh does)")
    return subprocess.run([binary, *args], capture_output=True, text=True, check=True, timeout=60).stdout


@pytest.mark.db
def test_html_report_shows_the_check(client: TestClient) -> None:
    check = prohibited_check(client)
    response = client.get(f"/api/v1/checks/{check['id']}/report.html")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert TITLE in html and check["id"] in html and "2026-YS-0001" in html and "城关镇安置小区（一期）" in html
    assert check["verdict"] == "禁止"
    assert re.search(r'class="badge big prohibited">禁止<', html)
    assert check["findings"], "the parcel presses on farmland and the red line"
    for finding in check["findings"]:
        assert str(escape(finding["citation"])) in html
        assert str(escape(finding["message_zh"])) in html
    farmland = next(layer for layer in check["layers"] if layer["code"] == "YJJBNT")
    assert farmland["overlap"]["m2"] > 1000
    assert f"{farmland['overlap']['m2']:,.2f}" in html
    assert f"{farmland['overlap']['hectare']:,.4f}" in html and f"{farmland['overlap']['mu']:,.2f}" in html
    for label in ("永久基本农田图斑编号", "地类编码", "耕地坡度级别", "红线名称", "坐落单位名称"):
        assert f"<th>{label}</th>" in html or f"<b>{label}：</b>" in html, label
    assert "1,234,567.89" in html  # an m² attribute, formatted with thousands separators
    # the map: inline SVG, the parcel outline and overlap polygons filled in the catalogue colours
    assert "<svg" in html
    assert re.search(r'<path class="parcel" d="M[\d.]+,[\d.]+L', html)
    assert re.search(r'<path class="overlap layer-YJJBNT" d="M[\d.]+,[\d.]+L', html)
    assert re.search(r'<path class="overlap layer-STBHHX" d="M[^"]+"\s+fill-rule="evenodd"\s+fill="#38A800"', html)
    assert 'class="north-arrow"' in html and 'class="scale-bar"' in html
    # land survey statistics with totals, township split, area model
    assert "地类统计" in html and "合计" in html and "乔木林地" in html
    assert f"{check['land_survey']['total']['m2']:,.2f}" in html
    assert "城关镇" in html and "王庄乡" in html
    assert "椭球面积" in html
    # everything escaped; nothing fetched from the network
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*https?://""", html, re.IGNORECASE)
    assert not re.search(r"url\(\s*['\"]?https?://", html, re.IGNORECASE)


@pytest.mark.db
def test_pdf_report_is_a_real_pdf_with_an_embedded_cjk_font(client: TestClient) -> None:
    check = prohibited_check(client)
    started = time.perf_counter()
    response = client.get(f"/api/v1/checks/{check['id']}/report.pdf")
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert f"filename*=UTF-8''{quote('合规性审查报告-2026-YS-0001.pdf')}" in disposition
    pdf = response.content
    assert pdf.startswith(b"%PDF-")
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "check-report.pdf"
    path.write_bytes(pdf)
    text = re.sub(r"\s+", "", poppler("pdftotext", str(path), "-"))  # pdftotext drops spaces between CJK and digits
    for expected in (TITLE, "禁止", check["id"], "2026-YS-0001", "永久基本农田", "城关镇安置小区（一期）", "第1页/共"):
        assert expected in text, expected
    font_lines = [line for line in poppler("pdffonts", str(path)).splitlines()[2:] if line.strip()]
    cjk = [line for line in font_lines if "CJK" in line or "WenQuanYi" in line or "Han" in line]
    assert cjk, font_lines
    assert all(re.search(r"\byes\s+yes\s+(yes|no)\s+\d+\s+\d+\s*$", line) for line in cjk), cjk  # emb sub uni
    poppler("pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "2", str(path), str(ARTIFACTS / "check-report"))
    assert elapsed < 30


@pytest.mark.db
def test_pass_report_and_filename_without_project_number(client: TestClient) -> None:
    check = run_check(client, shapely.box(114.850, 34.850, 114.852, 34.852), land_use="0101")
    assert check["verdict"] == "通过"
    response = client.get(f"/api/v1/checks/{check['id']}/report.html")
    assert response.status_code == 200
    assert 'class="badge big pass">通过<' in response.text
    assert "地块未压盖任何已审查图层的要素" in response.text
    assert quote(f"合规性审查报告-{check['id']}.html") in response.headers["content-disposition"]


@pytest.mark.db
@pytest.mark.parametrize("check_id", [str(uuid.uuid4()), "not-a-check-id"])
@pytest.mark.parametrize("fmt", ["html", "pdf"])
def test_unknown_check_is_404_json(client: TestClient, check_id: str, fmt: str) -> None:
    response = client.get(f"/api/v1/checks/{check_id}/report.{fmt}")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"] == "not_found"


# ---- pure parts: no database ---------------------------------------------------------------------


def test_metres_per_degree_agree_with_the_ellipsoid() -> None:
    geod = Geod(ellps="GRS80")
    for lat in (0.0, 23.5, 34.8, 53.0):
        mx, my = metres_per_degree(lat)
        assert mx == pytest.approx(geod.inv(114.0, lat, 114.001, lat)[2] * 1000, rel=1e-6)
        assert my == pytest.approx(geod.inv(114.0, lat - 0.0005, 114.0, lat + 0.0005)[2] * 1000, rel=1e-6)


def test_nice_scale_lengths() -> None:
    assert [nice_length(v) for v in (0.7, 1, 3, 7.5, 180, 260, 999, 4200)] == [0.5, 1, 2, 5, 100, 200, 500, 2000]


def test_scale_bar_is_true_for_the_latitude(catalog: Catalog) -> None:
    parcel = shapely.box(114.790, 34.800, 114.800, 34.805)  # about 914 m × 555 m
    check = {"parcel": {"geometry": json.loads(shapely.to_geojson(parcel))}, "layers": []}
    report_map = build_map(check, catalog)
    bar = report_map.scale_bar
    assert bar is not None
    width_m = Geod(ellps="GRS80").inv(114.790, 34.8025, 114.800, 34.8025)[2]
    xs = [float(x) for x in re.findall(r"[ML]([\d.]+),", report_map.parcel_d)]
    px_per_m = (max(xs) - min(xs)) / width_m
    metres = float(bar.label.split()[0]) * (1000 if "千米" in bar.label else 1)
    assert bar.length_px == pytest.approx(metres * px_per_m, rel=1e-3)


def test_figures_are_formatted_with_separators() -> None:
    assert check_report.fmt_m2(1234567.891) == "1,234,567.89"
    assert check_report.fmt_hectare(123.45678912) == "123.4568"
    assert check_report.fmt_mu(1500) == "1,500.00"
    assert check_report.fmt_share(0.123456) == "12.35%"
    assert check_report.fmt_time("2026-01-02T03:04:05+00:00") == "2026-01-02 11:04:05"
    assert str(check_report.css_string('a"b</style>')) == '"a\\22 b\\3c \\2f style\\3e "'


def test_missing_cjk_font_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch, catalog: Catalog) -> None:
    fonts.clear_font_cache()
    monkeypatch.setattr(fonts.shutil, "which", lambda _name: None)
    try:
        with pytest.raises(ConfigurationError, match="fonts-noto-cjk"):
            render_check_pdf({"id": "x"}, catalog)
        with pytest.raises(ConfigurationError, match="does not exist"):
            render_check_pdf({"id": "x"}, catalog, font_file=Path("/nonexistent/font.ttf"))
    finally:
        fonts.clear_font_cache()


def minimal_document() -> dict[str, Any]:
    """A stored check document built in code: one tiny (微小) farmland overlap and a hazard point."""

    def geometry(shape: shapely.Geometry) -> dict[str, Any]:
        return json.loads(shapely.to_geojson(shape))

    version = {"id": 7, "version_no": 3, "source_name": "农田.shp", "imported_at": "2026-03-01T00:00:00+00:00"}
    tiny = {"m2": 0.3, "hectare": 0.0, "mu": 0.0}
    zero = {"m2": 0.0, "hectare": 0.0, "mu": 0.0}
    return {
        "id": "00000000-0000-0000-0000-000000000001",
        "created_at": "2026-03-01T08:00:00+00:00",
        "created_by": "审批窗口",
        "source": "api",
        "verdict": "有条件",
        "findings": [],
        "project": {"name": None, "number": None},
        "parcel": {
            "label": None,
            "area": {"m2": 100.0, "hectare": 0.01, "mu": 0.15},
            "checked_area": {"m2": 100.0, "hectare": 0.01, "mu": 0.15},
            "buffer_m": 0.0,
            "vertex_count": 5,
            "source_crs": "EPSG:4490",
            "repairs": ["几何已修复 repaired invalid geometry: Self-intersection"],
            "townships": [],
            "geometry": geometry(shapely.box(114.8, 34.8, 114.801, 34.8006)),
        },
        "land_use": None,
        "area_model": {"name": "planar", "description": "平面面积", "gk_epsg": 4547},
        "minor_overlap_threshold_m2": 1.0,
        "layers": [
            {
                "code": "YJJBNT",
                "name_zh": "永久基本农田",
                "role": "red_line_farmland",
                "version": version,
                "overlap": tiny,
                "share": 0.003,
                "feature_count": 1,
                "minor": True,
                "categories": {},
                "features": [
                    {
                        "feature_id": "JB1",
                        "attributes": {"YJJBNTTBBH": "JB1"},
                        "overlap": tiny,
                        "minor": True,
                        "geometry": geometry(shapely.box(114.8005, 34.8003, 114.800505, 34.800305)),
                    }
                ],
            },
            {
                "code": "DZZHD",
                "name_zh": "地质灾害隐患点",
                "role": "hazard_point",
                "version": {**version, "id": 8},
                "overlap": zero,
                "share": 0.0,
                "feature_count": 1,
                "minor": False,
                "categories": {},
                "features": [
                    {
                        "feature_id": "P1",
                        "attributes": {"ZHLX": "滑坡"},
                        "overlap": zero,
                        "minor": False,
                        "geometry": geometry(shapely.Point(114.8002, 34.8002)),
                    }
                ],
            },
        ],
        "missing_layers": ["STBHHX"],
        "land_survey": None,
        "catalog_fingerprint": "c",
        "rules_fingerprint": "r",
    }


def test_html_renders_without_a_database(catalog: Catalog) -> None:
    html = render_check_html(minimal_document(), catalog)
    assert 'class="badge big conditional">有条件<' in html
    assert "Self-intersection" in html and "EPSG:4547" in html and "生态保护红线（STBHHX）" in html
    assert '<circle class="minor"' in html  # the 微小压盖 is marked on the map, not lost at map scale
    assert '<circle class="overlap point layer-DZZHD"' in html and 'fill="#E60000"' in html  # 滑坡 marker colour


def test_pdf_with_an_explicit_font_file(catalog: Catalog, tmp_path: Path) -> None:
    font_file = fonts.find_cjk_font().file
    path = tmp_path / "report.pdf"
    path.write_bytes(render_check_pdf(minimal_document(), catalog, font_file=font_file))
    names = [line.split()[0] for line in poppler("pdffonts", str(path)).splitlines()[2:] if line.strip()]
    assert names and all(name.split("+")[-1].startswith("ReportCJK") for name in names), names
