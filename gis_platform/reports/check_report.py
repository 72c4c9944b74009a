"""建设项目用地合规性审查报告: the stored check document as a Chinese report, in HTML and PDF.

Both formats come from one Jinja2 template (``templates/check_report.html.j2``) with autoescaping on:
every attribute value, project name and message is escaped.  The HTML is self-contained (inline CSS,
inline SVG map, no external URL).  The PDF is the same HTML laid out by WeasyPrint with an embedded CJK
font found through fontconfig (:mod:`gis_platform.reports.fonts`); WeasyPrint may only read local files
(no network fetches).

Figures are formatted at output only: m² 2 decimals, 公顷 4, 亩 2, with thousands separators.
"""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import Any, Final

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from gis_platform.catalog import Catalog, Layer
from gis_platform.errors import ConfigurationError, UnknownLandUseError
from gis_platform.units import area_figures

from .fonts import CJKFont, find_cjk_font
from .map_svg import build_map

TEMPLATES_DIR: Final[Path] = Path(__file__).resolve().parent / "templates"
REPORT_TITLE: Final[str] = "建设项目用地合规性审查报告"
#: 北京时间: China keeps one offset all year.
BEIJING: Final[dt.timezone] = dt.timezone(dt.timedelta(hours=8), "北京时间")
VERDICT_CLASS: Final[dict[str, str]] = {
    "禁止": "prohibited",
    "需补充用途": "use-required",
    "有条件": "conditional",
    "通过": "pass",
}
#: Above this many attribute columns a feature table lists the attributes in one cell instead.
MAX_ATTRIBUTE_COLUMNS: Final[int] = 6
_AREA_UNITS: Final[frozenset[str]] = frozenset({"m2"})
#: Font families for browsers (the PDF puts the fontconfig family it found in front).
WEB_FONT_FAMILIES: Final[tuple[str, ...]] = (
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "PingFang SC",
    "Microsoft YaHei",
    "WenQuanYi Zen Hei",
    "SimHei",
    "sans-serif",
)


# --------------------------------------------------------------------------------------------------
# Formatting (filters)
# --------------------------------------------------------------------------------------------------


def fmt_m2(value: Any) -> str:
    return "—" if value is None else f"{float(value):,.2f}"


def fmt_hectare(value: Any) -> str:
    return "—" if value is None else f"{float(value):,.4f}"


def fmt_mu(value: Any) -> str:
    return "—" if value is None else f"{float(value):,.2f}"


def fmt_share(value: Any) -> str:
    return "—" if value is None else f"{float(value) * 100:,.2f}%"


def fmt_time(value: Any) -> str:
    """An ISO timestamp as 北京时间 ``YYYY-MM-DD HH:MM:SS`` (naive values are shown as they are)."""
    if not value:
        return "—"
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(BEIJING)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def fmt_value(value: Any, unit: str | None = None) -> str:
    """An attribute value for a table cell."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        return f"{value:,.2f}" if unit in _AREA_UNITS else f"{value:g}" if abs(value) < 1e6 else f"{value:,.2f}"
    return str(value)


def css_string(value: Any) -> Markup:
    """A CSS string literal (for ``content:`` in ``@page``): every non-alphanumeric character escaped."""
    body = "".join(ch if ch.isascii() and ch.isalnum() else f"\\{ord(ch):x} " for ch in str(value))
    return Markup(f'"{body}"')


@functools.lru_cache(maxsize=1)
def _environment() -> Environment:
    if not (TEMPLATES_DIR / "check_report.html.j2").is_file():
        raise ConfigurationError(f"report template missing: {TEMPLATES_DIR / 'check_report.html.j2'}")
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(enabled_extensions=("html", "j2", "svg"), default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        m2=fmt_m2, ha=fmt_hectare, mu=fmt_mu, share=fmt_share, time=fmt_time, value=fmt_value, css_string=css_string
    )
    return env


# --------------------------------------------------------------------------------------------------
# The report context
# --------------------------------------------------------------------------------------------------


def _catalog_layer(catalog: Catalog, code: str) -> Layer | None:
    return catalog.layer(code) if code and catalog.has_layer(code) else None


def _category_name(catalog: Catalog, layer: dict[str, Any], key: str) -> str:
    """The name of a category key: a 用地用海 code for the township plan, a 三调 DLBM for the land survey."""
    try:
        if layer.get("role") == "township_plan":
            return catalog.land_use(key).name_zh
        if layer.get("role") == "land_survey":
            return catalog.land_survey_class(key).dlmc
    except UnknownLandUseError:
        return ""
    return ""


def _layer_row(catalog: Catalog, layer: dict[str, Any]) -> dict[str, Any]:
    categories = [
        {"key": key, "name": _category_name(catalog, layer, key), "area": figures}
        for key, figures in (layer.get("categories") or {}).items()
    ]
    return {**layer, "version": layer.get("version") or {}, "category_rows": categories}


def _feature_table(catalog: Catalog, layer: dict[str, Any]) -> dict[str, Any] | None:
    features = layer.get("features") or []
    if not features:
        return None
    known = _catalog_layer(catalog, str(layer.get("code") or ""))
    names: list[str] = []
    for feature in features:
        for name, value in (feature.get("attributes") or {}).items():
            if name not in names and value not in (None, ""):
                names.append(name)
    columns = []
    for name in names:
        field = known.get_field(name) if known else None
        columns.append(
            {"name": name, "label": field.label_zh if field else name, "unit": field.unit if field else None}
        )
    rows = [
        {
            "feature_id": feature.get("feature_id"),
            "cells": [fmt_value((feature.get("attributes") or {}).get(c["name"]), c["unit"]) for c in columns],
            "overlap": feature.get("overlap") or {},
            "minor": bool(feature.get("minor")),
        }
        for feature in features
    ]
    return {
        "code": layer.get("code"),
        "name_zh": layer.get("name_zh"),
        "columns": columns,
        "stacked": len(columns) > MAX_ATTRIBUTE_COLUMNS,
        "rows": rows,
    }


def _land_survey(land_survey: dict[str, Any] | None) -> dict[str, Any] | None:
    if not land_survey:
        return None
    total = (land_survey.get("total") or {}).get("m2", 0.0)
    tiankan = (land_survey.get("tiankan_total") or {}).get("m2", 0.0)
    # the document keeps totals rounded to 0.01 m²; the net total is their difference, re-expressed in 公顷/亩
    return {**land_survey, "net_total": area_figures(total - tiankan)}


def _findings(check: dict[str, Any], catalog: Catalog) -> list[dict[str, Any]]:
    names = {layer.get("code"): layer.get("name_zh") for layer in check.get("layers") or []}
    rows = []
    for finding in check.get("findings") or []:
        code = finding.get("layer_code")
        known = _catalog_layer(catalog, str(code or ""))
        name = names.get(code) or (known.name_zh if known else code)
        rows.append({**finding, "layer_name": name, "level_class": VERDICT_CLASS.get(finding.get("level", ""), "")})
    return rows


def _area_model_sentence(check: dict[str, Any]) -> str:
    model = check.get("area_model") or {}
    name = model.get("name") or "ellipsoidal"
    plane = model.get("survey_plane_epsg") or model.get("gk_epsg")
    where = f"在测量平面（CGCS2000 3 度带高斯-克吕格投影，EPSG:{plane}）中叠加分析，" if plane else ""
    if name == "planar":
        basis = f"{where}按该投影平面计算的平面面积"
    else:
        basis = f"{where}结果在 CGCS2000 椭球面上计算的椭球面积（顶点间按测地线）"
    return (
        f"本报告所列面积均为{basis}（面积模型 {name}）。"
        "平方米保留 2 位小数、公顷保留 4 位小数、亩保留 2 位小数（1 亩 = 10000/15 平方米），"
        "仅在输出时取整；图层压盖面积为地块与该图层全部要素相交部分的并集面积，不重复计算。"
    )


def report_context(
    check: dict[str, Any], catalog: Catalog, font_families: tuple[str, ...] = WEB_FONT_FAMILIES
) -> dict[str, Any]:
    """Everything the template shows, derived from a stored check document and the catalogue."""
    verdict = str(check.get("verdict") or "")
    project = check.get("project") or {}
    parcel = check.get("parcel") or {}
    layers = [_layer_row(catalog, layer) for layer in check.get("layers") or []]
    missing = [
        {"code": code, "name_zh": (known.name_zh if (known := _catalog_layer(catalog, code)) else code)}
        for code in check.get("missing_layers") or []
    ]
    return {
        "title": REPORT_TITLE,
        "check": check,
        "check_id": str(check.get("id") or ""),
        "verdict": verdict,
        "verdict_class": VERDICT_CLASS.get(verdict, "unknown"),
        "project": project,
        "parcel": parcel,
        "land_use": check.get("land_use"),
        "land_use_source": (check.get("land_use") or {}).get("source") or {},
        "layers": layers,
        "feature_tables": [t for layer in check.get("layers") or [] if (t := _feature_table(catalog, layer))],
        "land_survey": _land_survey(check.get("land_survey")),
        "findings": _findings(check, catalog),
        "townships": parcel.get("townships") or [],
        "repairs": parcel.get("repairs") or [],
        "area_model_sentence": _area_model_sentence(check),
        "missing_layers": missing,
        "map": build_map(check, catalog),
        "svg_font_family": ", ".join(font_families),
        "generated_at": dt.datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
    }


# --------------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------------


def _render_html(check: dict[str, Any], catalog: Catalog, font_families: tuple[str, ...]) -> str:
    return _environment().get_template("check_report.html.j2").render(report_context(check, catalog, font_families))


def render_check_html(check: dict[str, Any], catalog: Catalog) -> str:
    """The check report as one self-contained HTML page (inline CSS and SVG map, no external URL)."""
    return _render_html(check, catalog, WEB_FONT_FAMILIES)


def _font_css(font: CJKFont) -> str:
    family = css_string(font.family)
    face = ""
    if font.explicit:
        face = f"@font-face {{ font-family: {family}; src: url({css_string(font.file.as_uri())}); }}\n"
    # page margin boxes (header, footer) inherit from @page, not from html
    rule = f"font-family: {family}, sans-serif !important;"  # a user stylesheet: !important beats the template
    return f"{face}html {{ {rule} }}\n@page {{ {rule} }}\n"


def render_check_pdf(check: dict[str, Any], catalog: Catalog, *, font_file: Path | None = None) -> bytes:
    """The check report as a PDF (A4, page numbers and check id in the footer, CJK font embedded).

    ``font_file`` overrides the font fontconfig would choose.  Raises
    :class:`~gis_platform.errors.ConfigurationError` naming the package to install when WeasyPrint's
    libraries (pango) or a CJK font are missing.
    """
    font = find_cjk_font(font_file)
    try:
        import weasyprint
        from weasyprint.text.fonts import FontConfiguration
        from weasyprint.urls import URLFetcher
    except (ImportError, OSError) as exc:  # OSError: the pango libraries are not installed
        raise ConfigurationError(
            f"PDF reports need WeasyPrint and the pango libraries (Debian: libpango-1.0-0 libpangoft2-1.0-0): {exc}"
        ) from exc
    html = _render_html(check, catalog, (font.family, *WEB_FONT_FAMILIES))
    fonts = FontConfiguration()
    fetcher = URLFetcher(allowed_protocols={"file", "data"}, timeout=5)  # never the network
    document = weasyprint.HTML(string=html, base_url=str(TEMPLATES_DIR), url_fetcher=fetcher)
    stylesheet = weasyprint.CSS(string=_font_css(font), font_config=fonts, url_fetcher=fetcher)
    pdf = document.write_pdf(stylesheets=[stylesheet], font_config=fonts)
    if not isinstance(pdf, bytes):  # pragma: no cover - write_pdf without a target returns bytes
        raise ConfigurationError("WeasyPrint returned no PDF bytes")
    return pdf
