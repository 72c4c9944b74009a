"""GeoPackage schema check, before GDAL opens the file: only real tables are layers.

A GeoPackage is a SQLite database, and SQLite runs what the file's schema says: a "layer" registered in
``gpkg_contents`` that is a **view** runs the view's query when GDAL reads it (with the GIL held; a recursive
view kept a worker busy for minutes and grew it past 20 GB), and a view named like a GeoPackage system table
(``gpkg_contents`` itself) would run when GDAL reads its metadata. So the schema is read first with Python's
``sqlite3``, read-only and immutable (no journal, no lock, no write, so no trigger can fire), and the file is
refused when it holds any view, a virtual table other than the R-tree spatial index, or a trigger other than
those the GeoPackage standard and GDAL create for the spatial index and feature counts. GDAL then opens it
read-only and immutable (:data:`OPEN_OPTIONS`), listing only the tables registered in ``gpkg_contents``.
"""

from __future__ import annotations

import re
import sqlite3
import urllib.parse
from pathlib import Path

from ..errors import InputFileError

#: GDAL GPKG open options for an untrusted file: immutable (no journal or lock, nothing written), and only the
#: registered tables as layers.
OPEN_OPTIONS = {"IMMUTABLE": "YES", "LIST_ALL_TABLES": "NO"}

_SQLITE_MAGIC = b"SQLite format 3\x00"
#: Triggers the GeoPackage standard (R-tree spatial index, metadata and tile-matrix checks) and GDAL (feature
#: counts in gpkg_ogr_contents) create. They could only fire on a write, and the file is opened read-only.
_STANDARD_TRIGGER = re.compile(
    r"^(rtree_.+_(insert\d?|update\d|delete)|trigger_(insert|delete)_feature_count_.+|gpkg_.+)$", re.IGNORECASE
)
_RTREE_MODULE = re.compile(r"^\s*create\s+virtual\s+table\s+.+\s+using\s+rtree\s*\(", re.IGNORECASE | re.DOTALL)


def geopackage_layers(path: Path) -> list[str]:
    """The tables ``gpkg_contents`` registers as feature or attribute layers, after the schema check.

    Raises
    ------
    InputFileError
        The file is not a SQLite database, or holds a view, a trigger or a virtual table the check refuses
        (the message names it), or registers a layer that is not a table.
    """
    name = path.name
    with open(path, "rb") as fh:
        if fh.read(len(_SQLITE_MAGIC)) != _SQLITE_MAGIC:
            raise InputFileError(f"{name}: 不是 GeoPackage 文件 / not a GeoPackage (SQLite) file")
    uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro&immutable=1"
    try:
        conn = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise InputFileError(f"{name}: 无法打开 GeoPackage / cannot open the GeoPackage") from exc
    try:
        conn.execute("PRAGMA trusted_schema = OFF")  # no function in the schema runs with the file's authority
        schema = conn.execute("SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master").fetchall()
        _refuse_active_schema(name, schema)
        tables = {str(row[1]) for row in schema if row[0] == "table"}
        if "gpkg_contents" not in tables:
            raise InputFileError(f"{name}: 缺少 gpkg_contents 表，不是 GeoPackage / no gpkg_contents: not a GeoPackage")
        registered = conn.execute(
            "SELECT table_name FROM gpkg_contents WHERE data_type IN ('features', 'attributes') ORDER BY rowid"
        ).fetchall()
    except sqlite3.Error as exc:
        raise InputFileError(f"{name}: GeoPackage 结构损坏 / the GeoPackage's schema is unreadable") from exc
    finally:
        conn.close()
    layers = [str(row[0]) for row in registered]
    not_tables = [layer for layer in layers if layer not in tables]
    if not_tables:
        raise InputFileError(
            f"{name}: 图层 {', '.join(not_tables)} 不是数据表 / layer {', '.join(not_tables)} is not a table",
            layers=not_tables,
        )
    return layers


def _refuse_active_schema(name: str, schema: list[tuple[str, str, str, str]]) -> None:
    views = [str(n) for kind, n, _t, _s in schema if kind == "view"]
    if views:
        raise InputFileError(
            f"{name}: GeoPackage 含 SQL 视图 ({', '.join(views[:5])})，只读取数据表 / the GeoPackage holds SQL views"
            f" ({', '.join(views[:5])}); only tables are read: export the layer as a table",
            views=views[:20],
        )
    triggers = [str(n) for kind, n, _t, _s in schema if kind == "trigger" and not _STANDARD_TRIGGER.match(str(n))]
    if triggers:
        raise InputFileError(
            f"{name}: GeoPackage 含触发器 ({', '.join(triggers[:5])}) / the GeoPackage holds triggers"
            f" ({', '.join(triggers[:5])}) that are not part of the GeoPackage standard; export the layer again",
            triggers=triggers[:20],
        )
    virtual = [
        str(n)
        for kind, n, _t, sql in schema
        if kind == "table" and sql.lstrip().lower().startswith("create virtual") and not _RTREE_MODULE.match(sql)
    ]
    if virtual:
        raise InputFileError(
            f"{name}: GeoPackage 含虚拟表 ({', '.join(virtual[:5])}) / the GeoPackage holds virtual tables"
            f" ({', '.join(virtual[:5])}) other than the spatial index",
            virtual_tables=virtual[:20],
        )
