"""Result tables as files: CSV (UTF-8 with a BOM, for Excel), XLSX and GeoPackage.

The writers shared by the batch check results and the conflict analysis: a table is a list of
:class:`Column` (an ASCII key for GeoPackage fields, a bilingual header for CSV / XLSX, an optional
number format) and rows as dictionaries keyed by those keys.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shapely.geometry.base import BaseGeometry


@dataclass(frozen=True)
class Column:
    key: str
    """Field name in the GeoPackage (ASCII)."""
    header: str
    """Column header in CSV / XLSX."""
    number_format: str | None = None


def write_csv(path: Path, columns: Sequence[Column], rows: Iterable[dict[str, Any]]) -> None:
    """UTF-8 with a BOM, so that Excel shows the Chinese text correctly."""
    with open(path, "w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow([c.header for c in columns])
        for row in rows:
            writer.writerow(["" if row.get(c.key) is None else row[c.key] for c in columns])


def write_xlsx(path: Path, sheet: str, columns: Sequence[Column], rows: Iterable[dict[str, Any]]) -> None:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    book = Workbook(write_only=True)
    ws = book.create_sheet(sheet)
    ws.freeze_panes = "A2"

    bold = Font(bold=True)

    def cell(value: Any, number_format: str | None = None, font: Font | None = None) -> WriteOnlyCell:
        out = WriteOnlyCell(ws, value=value)
        if number_format:
            out.number_format = number_format
        if font:
            out.font = font
        return out

    ws.append([cell(c.header, font=bold) for c in columns])
    for row in rows:
        ws.append([cell(row.get(c.key), c.number_format) for c in columns])
    book.save(path)


def write_geopackage(
    path: Path, layer: str, columns: Sequence[Column], rows: list[dict[str, Any]], geometries: list[BaseGeometry | None]
) -> None:
    """A GeoPackage layer in EPSG:4490 with MultiPolygon geometries (ASCII field names)."""
    import geopandas as gpd

    data = {c.key: [row.get(c.key) for row in rows] for c in columns}
    frame = gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geometries, crs="EPSG:4490"), crs="EPSG:4490")
    frame.to_file(
        path, layer=layer, driver="GPKG", engine="pyogrio", promote_to_multi=True, geometry_type="MultiPolygon"
    )
