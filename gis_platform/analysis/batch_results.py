"""The results of a batch check job: one row per parcel in input order, as CSV, XLSX or GeoPackage.

A row holds the parcel's number, label, proposed land use, verdict, area (m², 公顷, 亩), its overlap with
each red line, a summary of the findings, the error of a parcel that could not be checked and the id of
its stored check record. Rows are read from the stored check records of the job, streamed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Engine, text

from ..catalog import Catalog, Layer
from ..errors import PlatformError
from ..jobs import get_job, require_succeeded
from ..tables import Column, write_csv, write_geopackage, write_xlsx
from .batch import ERROR_VERDICT, EXPORT_FORMATS, RED_LINE_ROLES


def _red_line_layers(catalog: Catalog) -> list[Layer]:
    return [layer for layer in catalog.layers if layer.role in RED_LINE_ROLES]


def batch_columns(catalog: Catalog) -> list[Column]:
    columns = [
        Column("seq", "序号 No."),
        Column("label", "地块编号 parcel"),
        Column("land_use", "拟用地类型 land use"),
        Column("verdict", "结论 verdict"),
        Column("parcel_m2", "地块面积(平方米) area m²", "0.00"),
        Column("parcel_ha", "地块面积(公顷) area ha", "0.0000"),
        Column("parcel_mu", "地块面积(亩) area mu", "0.00"),
    ]
    for layer in _red_line_layers(catalog):
        what = f"{layer.name_zh}内" if layer.role == "urban_boundary" else f"压盖{layer.name_zh}"
        columns.append(Column(f"{layer.code}_m2", f"{what}(平方米) {layer.code} m²", "0.00"))
        columns.append(Column(f"{layer.code}_mu", f"{what}(亩) {layer.code} mu", "0.00"))
    columns.append(Column("findings", "问题摘要 findings"))
    columns.append(Column("error", "错误 error"))
    columns.append(Column("check_id", "检查记录 check id"))
    return columns


_ROWS_SQL = """
SELECT i.seq, coalesce(c.parcel_label, i.label) AS label, i.land_use_code, i.verdict, i.error, c.id AS check_id,
       c.result->'parcel'->'area' AS area,
       (SELECT jsonb_object_agg(l->>'code', l->'overlap') FROM jsonb_array_elements(c.result->'layers') l) AS overlaps,
       (SELECT jsonb_agg(jsonb_build_array(f->>'level', f->>'rule_id', f->'area'->'m2', f->'minor'))
          FROM jsonb_array_elements(c.result->'findings') f) AS findings,
       CASE WHEN :geometry THEN ST_AsBinary(c.geom) END AS wkb
FROM batch_item i LEFT JOIN check_record c ON c.id = i.check_id
WHERE i.job_id = :job ORDER BY i.seq
"""


def _findings_text(findings: list[list[Any]] | None) -> str:
    parts = [
        f"{level} {rule} {m2:,.2f} m²" + (" 微小压盖" if minor else "") for level, rule, m2, minor in findings or ()
    ]
    return "；".join(parts)


def batch_rows(engine: Engine, catalog: Catalog, job_id: Any, *, geometry: bool = False) -> Iterator[dict[str, Any]]:
    """One row per parcel in input order (the export columns, plus ``geometry`` when asked)."""
    codes = [layer.code for layer in _red_line_layers(catalog)]
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=500).execute(
            text(_ROWS_SQL), {"job": job_id, "geometry": geometry}
        )
        for r in result:
            area = r.area or {}
            row: dict[str, Any] = {
                "seq": r.seq + 1,
                "label": r.label,
                "land_use": r.land_use_code,
                "verdict": r.verdict or ERROR_VERDICT,
                "parcel_m2": area.get("m2"),
                "parcel_ha": area.get("hectare"),
                "parcel_mu": area.get("mu"),
            }
            for code in codes:
                overlap = (r.overlaps or {}).get(code) or {}
                row[f"{code}_m2"], row[f"{code}_mu"] = overlap.get("m2"), overlap.get("mu")
            row["findings"] = _findings_text(r.findings)
            row["error"], row["check_id"] = r.error, r.check_id and str(r.check_id)
            if geometry:
                row["geometry"] = shapely.from_wkb(bytes(r.wkb)) if r.wkb is not None else None
            yield row


def export_batch(engine: Engine, catalog: Catalog, job_id: Any, fmt: str, directory: Path) -> Path:
    """Write the results of a succeeded batch job as ``batch-<id>.<fmt>`` in ``directory``."""
    if fmt not in EXPORT_FORMATS:
        raise PlatformError(f"unknown result format {fmt!r} (use {', '.join(EXPORT_FORMATS)})")
    job = get_job(engine, job_id, kind="batch_check")
    require_succeeded(job)
    columns = batch_columns(catalog)
    path = directory / f"batch-{job['id']}.{fmt}"
    rows = batch_rows(engine, catalog, job["id"], geometry=fmt == "gpkg")
    if fmt == "csv":
        write_csv(path, columns, rows)
    elif fmt == "xlsx":
        write_xlsx(path, "检查结果", columns, rows)
    else:
        records = list(rows)
        geometries = [cast(BaseGeometry | None, r.pop("geometry")) for r in records]
        write_geopackage(path, "batch_check", columns, records, geometries)
    return path
