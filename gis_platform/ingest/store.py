"""Writing a layer version: COPY into a fresh table, index, attach as a partition, make current.

Each feature carries two geometries: ``geom`` (EPSG:4490, for the map and the services; its ellipsoidal area
is the generated ``area_m2``) and ``geom_plane`` (the county's survey plane, for every overlay), each with its
own GiST index.

Everything happens in the caller's single transaction, so a failure or a killed process leaves
the previous version current and untouched (PostgreSQL rolls the open transaction back).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import text
from sqlalchemy.engine import Connection

from ..models import STORAGE_SRID


@dataclass(frozen=True)
class VersionStats:
    feature_count: int
    area_total_m2: float | None
    extent: tuple[float, float, float, float] | None


def properties_json(attributes: pd.DataFrame) -> list[str]:
    """One JSON object per row: NaN/NaT become null, dates ISO 8601, Chinese kept as is."""
    if attributes.shape[1] == 0:
        return ["{}"] * len(attributes)
    frame = attributes.reset_index(drop=True)
    for name in frame.columns:
        column = frame[name]
        if column.dtype == object:  # strings, or dates/times from some drivers: those become ISO 8601
            present = column.dropna()
            if len(present) and any(hasattr(v, "isoformat") for v in present.iloc[:100]):
                frame[name] = column.map(lambda v: v.isoformat() if hasattr(v, "isoformat") else v)
    out = frame.to_json(orient="records", lines=True, force_ascii=False, date_format="iso")
    lines = out.splitlines()
    if len(lines) != len(frame):  # a value with a line break inside: fall back to the slow exact path
        return [json.dumps(r, ensure_ascii=False, default=str) for r in frame.to_dict(orient="records")]
    return lines


@dataclass(frozen=True)
class RowBatch:
    """Rows ready for COPY: geometries in EPSG:4490 and in the survey plane, source feature numbers, JSON properties."""

    geometries: np.ndarray
    source_fids: np.ndarray
    properties: list[str]
    plane: np.ndarray
    plane_srid: int


COPY_COLUMNS = "(version_id, source_fid, properties, geom, geom_plane)"


def copy_text(version_id: int, batch: RowBatch) -> str:
    """Rows in ``COPY`` text format: tab-separated, backslashes doubled (the JSON has no tabs or raw newlines)."""
    ewkb = shapely.to_wkb(shapely.set_srid(batch.geometries, STORAGE_SRID), hex=True, include_srid=True).tolist()
    plane = shapely.to_wkb(shapely.set_srid(batch.plane, batch.plane_srid), hex=True, include_srid=True).tolist()
    props = [p.replace("\\", "\\\\") if "\\" in p else p for p in batch.properties]
    prefix = f"{int(version_id)}\t"
    rows = [
        f"{prefix}{fid}\t{p}\t{g}\t{q}\n"
        for fid, p, g, q in zip(batch.source_fids.tolist(), props, ewkb, plane, strict=True)
    ]
    return "".join(rows)


def create_version_table(conn: Connection, version_id: int) -> str:
    table = f"feature_v{int(version_id)}"
    conn.execute(text(f"CREATE TABLE {table} (LIKE feature INCLUDING DEFAULTS INCLUDING GENERATED)"))
    return table


def load_features(
    conn: Connection,
    table: str,
    version_id: int,
    batches: Iterator[RowBatch],
    *,
    on_progress: Callable[[int], Any] | None = None,
) -> None:
    """COPY batch after batch; a worker thread reads and prepares batch k+1 while PostgreSQL loads batch k."""
    raw: Any = conn.connection.dbapi_connection  # psycopg2: COPY is not part of the DB-API
    sql = f"COPY {table} {COPY_COLUMNS} FROM STDIN"

    def next_payload() -> tuple[int, str] | None:
        batch = next(batches, None)
        return None if batch is None else (len(batch.source_fids), copy_text(version_id, batch))

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-batches") as pool, raw.cursor() as cur:
        pending = pool.submit(next_payload)
        while (item := pending.result()) is not None:
            pending = pool.submit(next_payload)
            count, payload = item
            if count:
                cur.copy_expert(sql, io.StringIO(payload), size=1 << 20)
            if on_progress:
                on_progress(count)


def attach_version_table(conn: Connection, table: str, version_id: int) -> None:
    """Index the loaded table and attach it; the CHECK lets PostgreSQL skip the validation scan."""
    vid = int(version_id)
    conn.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
    conn.execute(text(f"CREATE INDEX {table}_geom ON {table} USING gist (geom)"))
    conn.execute(text(f"CREATE INDEX {table}_geom_plane ON {table} USING gist (geom_plane)"))
    conn.execute(text(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pk PRIMARY KEY (version_id, id)"))
    conn.execute(text(f"ALTER TABLE {table} ADD CONSTRAINT {table}_version CHECK (version_id = {vid})"))
    conn.execute(text(f"ALTER TABLE feature ATTACH PARTITION {table} FOR VALUES IN ({vid})"))
    conn.execute(text(f"ANALYZE {table}"))


def version_stats(conn: Connection, table: str) -> VersionStats:
    row = conn.execute(
        text(
            f"SELECT count(*), sum(area_m2), ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
            f"FROM {table}, LATERAL (SELECT ST_Extent(geom)::geometry AS e FROM {table}) x GROUP BY e"
        )
    ).one_or_none()
    if row is None:
        return VersionStats(0, None, None)
    count, area, *bbox = row
    extent = tuple(float(v) for v in bbox) if bbox[0] is not None else None
    return VersionStats(int(count), float(area) if area is not None else None, extent)  # type: ignore[arg-type]
