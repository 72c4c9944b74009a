"""Red-line overlay: a parcel against one layer version, computed in PostGIS.

For each layer one statement returns everything: the per-feature overlaps (positive-area parts only,
so edge-only contact is 0 m²), the area of their **union** (never the sum: red-line features may
overlap each other), and the union area by category (e.g. 用地用海 code, 易发程度). Areas are
ellipsoidal on the CGCS2000 ellipsoid unless the planar Gauss-Krüger model is asked for.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import orjson
from shapely.geometry.base import BaseGeometry
from sqlalchemy import text
from sqlalchemy.engine import Connection

from ..catalog import Layer
from ..gk_zones import gk_epsg, zone_for_longitude

AreaModel = Literal["ellipsoidal", "planar"]
AREA_MODEL_NAMES = {
    "ellipsoidal": "椭球面积 ellipsoidal area on the CGCS2000 ellipsoid (PostGIS geography)",
    "planar": "平面面积 planar Gauss-Krüger area (CGCS2000 3° zone by central meridian)",
}


@dataclass(frozen=True)
class AreaContext:
    """How areas are measured in one check."""

    model: AreaModel
    gk_srid: int  # CM-family GK zone of the parcel, used by the planar model

    @classmethod
    def for_parcel(cls, parcel: BaseGeometry, model: AreaModel) -> AreaContext:
        zone = zone_for_longitude(parcel.centroid.x)
        return cls(model=model, gk_srid=gk_epsg(zone, prefixed=False))

    def sql(self, expr: str) -> str:
        if self.model == "planar":
            return f"ST_Area(ST_Transform({expr}, {int(self.gk_srid)}))"
        return f"ST_Area(({expr})::geography)"


@dataclass
class FeatureOverlap:
    feature_id: int
    source_fid: int
    properties: dict[str, Any]
    overlap_m2: float
    geometry: dict[str, Any] | None


@dataclass
class LayerOverlap:
    """What one layer version says about a parcel."""

    layer_code: str
    version_id: int
    union_m2: float
    features: list[FeatureOverlap] = field(default_factory=list)
    categories_m2: dict[str, float] = field(default_factory=dict)
    points: list[FeatureOverlap] = field(default_factory=list)


def _polygon_json(area: AreaContext, category_field: str | None, i: int) -> str:
    """One layer's overlay as a JSON scalar subquery; ``p`` is the parcel CTE of the enclosing statement.

    Each overlap's area is computed once. The area of a union is the area of ``ST_Union`` only where there
    is more than one piece: a parcel usually lies in one township and on one or two patches, and the union of
    one piece is that piece (the union and a second ellipsoidal area of it were a tenth of a check's SQL).
    """
    union = f"CASE WHEN count(*) = 1 THEN sum(a) ELSE {area.sql('ST_Union(ig)')} END"
    category = (
        f"""(SELECT json_object_agg(coalesce(cat, ''), a) FROM (
                SELECT properties->>'{category_field}' AS cat, {union} AS a
                FROM pos{i} GROUP BY 1) c)"""
        if category_field
        else "NULL::json"
    )
    return f"""(
    WITH hit{i} AS MATERIALIZED (
        SELECT f.id, f.source_fid, f.properties,
               CASE WHEN ST_CoveredBy(f.geom, p.g) THEN f.geom
                    WHEN ST_CoveredBy(p.g, f.geom) THEN p.g
                    ELSE ST_CollectionExtract(ST_Intersection(f.geom, p.g), 3) END AS ig
        FROM feature f, p
        WHERE f.version_id = :v{i} AND ST_Intersects(f.geom, p.g)
    ),
    pos{i} AS MATERIALIZED (SELECT *, {area.sql("ig")} AS a FROM hit{i} WHERE NOT ST_IsEmpty(ig))
    SELECT json_build_object(
        'features', (SELECT coalesce(json_agg(json_build_object(
                'id', id, 'fid', source_fid, 'properties', properties, 'area', a,
                'geometry', CASE WHEN :g{i} THEN ST_AsGeoJSON(ig, 8)::json END) ORDER BY source_fid), '[]')
            FROM pos{i}),
        'union', (SELECT {union} FROM pos{i}),
        'categories', {category}
    ))"""


def _point_json(i: int) -> str:
    return f"""(
    SELECT coalesce(json_agg(json_build_object('id', f.id, 'fid', f.source_fid, 'properties', f.properties,
                   'geometry', ST_AsGeoJSON(f.geom, 8)::json) ORDER BY f.source_fid), '[]')
    FROM feature f, p WHERE f.version_id = :v{i} AND ST_Intersects(f.geom, p.g))"""


def category_field(layer: Layer) -> str | None:
    categorized = layer.style.categorized
    return categorized.field if categorized is not None else None


@dataclass(frozen=True)
class OverlayRequest:
    """A layer to overlay in its current version, and whether the overlap geometries are wanted (for the map)."""

    layer: Layer
    with_geometry: bool = True


@dataclass(frozen=True)
class LayerVersion:
    """The current version of a layer, as the overlay read it."""

    version_id: int
    version_no: int
    source_name: str
    imported_at: dt.datetime


@dataclass
class ParcelOverlay:
    parcel_m2: float
    layers: dict[str, LayerOverlap]
    """Every requested layer that has a current version."""
    versions: dict[str, LayerVersion]
    """The version each of those layers was read in."""


@dataclass(frozen=True)
class _Statement:
    """The overlay of one set of layers as a server-side prepared statement."""

    name: str
    prepare: str
    execute: str


@lru_cache(maxsize=256)
def _overlay_statement(area: AreaContext, layers: tuple[tuple[str, str | None], ...]) -> _Statement:
    """The one statement for a parcel and these layers ((geometry type, category field) each), built once.

    Parameters: ``$1`` the parcel as EWKB hex, then per layer its code, the version id to read and whether
    overlap geometries are wanted. Besides the overlay (JSON text, parsed with orjson: psycopg2 parses json
    with the slower standard library) the row holds the current version of each of these layers, in the
    statement's own snapshot.
    """
    parts = [f"'parcel_m2', (SELECT {area.sql('p.g')} FROM p)"]
    types = ["text"]
    for i, (geometry_type, category) in enumerate(layers):
        subquery = _point_json(i) if geometry_type == "point" else _polygon_json(area, category, i)
        parts.append(f"'{i}', {subquery}")
        types += ["text", "integer", "boolean"]
    codes = ", ".join(f":c{i}" for i in range(len(layers)))
    sql = (
        "WITH p AS (SELECT ST_GeomFromEWKB(decode(:wkb, 'hex')) AS g)\n"
        f"SELECT json_build_object({', '.join(parts)})::text, cv.* FROM p, ("
        "SELECT array_agg(l.code) AS codes, array_agg(v.id) AS ids, array_agg(v.version_no) AS numbers,"
        " array_agg(v.source_name) AS sources, array_agg(v.imported_at) AS imported"
        f" FROM layer l JOIN layer_version v ON v.id = l.current_version_id WHERE l.code IN ({codes})) cv"
    )
    numbered = re.sub(r"(?<!:):(wkb|[cvg]\d+)\b", _placeholder_number, sql)
    name = "gis_overlay_" + hashlib.sha1(numbered.encode()).hexdigest()[:16]
    return _Statement(
        name=name,
        prepare=f"PREPARE {name} ({', '.join(types)}) AS {numbered}",
        # one generic plan for every parcel; SET LOCAL ends with the transaction
        execute=f"SET LOCAL plan_cache_mode = force_generic_plan; EXECUTE {name} ({', '.join(['%s'] * len(types))})",
    )


def _placeholder_number(match: re.Match[str]) -> str:
    name = match.group(1)
    if name == "wkb":
        return "$1"
    return f"${2 + 3 * int(name[1:]) + 'cvg'.index(name[0])}"  # c0 → $2, v0 → $3, g0 → $4, c1 → $5 …


_PREPARED = "gis_platform.prepared_statements"


def _run_prepared(conn: Connection, statement: _Statement, values: tuple[Any, ...]) -> Any:
    """Execute ``statement`` (its one row), preparing it first on this database session if it is not yet.

    A check's overlay statement took 0.3–0.5 ms to plan, a fifth of its time: prepared once per pooled
    connection with a generic plan, only execution is left. The version ids are parameters, so the plan's
    partition pruning drops every other version of a layer before execution starts. Prepared statements
    outlive transactions, rolled back or not; the set of names lives in the pool's record of the connection,
    which SQLAlchemy empties when it reconnects.
    """
    info = conn.connection.info
    prepared: set[str] | None = info.get(_PREPARED)
    if prepared is None:
        names = conn.exec_driver_sql("SELECT name FROM pg_prepared_statements").scalars()
        prepared = info[_PREPARED] = set(names)
    if statement.name not in prepared:
        conn.exec_driver_sql(statement.prepare)
        prepared.add(statement.name)
    return conn.exec_driver_sql(statement.execute, values).one()


#: Per database, the version id each layer had the last time an overlay read it (None: no version). Only a
#: guess: an overlay whose statement finds another current version runs again with it (see overlay_parcel).
_last_current: dict[str, dict[str, int | None]] = {}
MAX_ATTEMPTS = 5


def overlay_parcel(
    conn: Connection, parcel_ewkb_hex: str, requests: list[OverlayRequest], area: AreaContext
) -> ParcelOverlay:
    """The parcel's area and its overlay with the current version of every requested layer, in one statement.

    One round trip instead of one per layer: a check reads six to eight layers, and each statement cost a
    few tenths of a millisecond in round trip and driver overhead on top of its PostGIS work. The statement
    reads the version ids last seen current and also returns the versions current in its snapshot; when they
    differ (a layer was imported since, or this process has not checked yet) it runs again with those, so the
    versions read are always the current ones without a separate round trip to look them up first. Layers
    without a current version are left out of the result.
    """
    shape = tuple((req.layer.geometry_type, category_field(req.layer)) for req in requests)
    statement = _overlay_statement(area, shape)
    last = _last_current.setdefault(str(conn.engine.url), {})
    for _attempt in range(MAX_ATTEMPTS):
        used = {req.layer.code: last.get(req.layer.code) for req in requests}
        values: list[Any] = [parcel_ewkb_hex]
        for req in requests:
            values += [req.layer.code, used[req.layer.code], req.with_geometry]
        row = _run_prepared(conn, statement, tuple(values))
        columns = (row.codes, row.ids, row.numbers, row.sources, row.imported) if row.codes else ((),) * 5
        versions = {code: LayerVersion(*version) for code, *version in zip(*columns, strict=True)}
        current = {code: versions[code].version_id if code in versions else None for code in used}
        last.update(current)
        if current == used:
            break
    else:
        raise RuntimeError(f"the current layer versions changed {MAX_ATTEMPTS} times during one overlay")
    data = orjson.loads(row[0])
    layers = {
        req.layer.code: _layer_overlap(req, versions[req.layer.code].version_id, data[str(i)])
        for i, req in enumerate(requests)
        if req.layer.code in versions
    }
    return ParcelOverlay(parcel_m2=float(data["parcel_m2"]), layers=layers, versions=versions)


def _layer_overlap(req: OverlayRequest, version_id: int, data: Any) -> LayerOverlap:
    code = req.layer.code
    if req.layer.geometry_type == "point":
        points = [FeatureOverlap(r["id"], r["fid"], r["properties"], 0.0, r["geometry"]) for r in data]
        return LayerOverlap(code, version_id, 0.0, points=points)
    features = [
        FeatureOverlap(r["id"], r["fid"], r["properties"], float(r["area"]), r["geometry"]) for r in data["features"]
    ]
    return LayerOverlap(
        layer_code=code,
        version_id=version_id,
        union_m2=float(data["union"] or 0.0),
        features=features,
        categories_m2={k: float(v) for k, v in (data["categories"] or {}).items()},
    )


def parcel_area(conn: Connection, parcel_ewkb_hex: str, area: AreaContext) -> float:
    expr = "ST_GeomFromEWKB(decode(:wkb, 'hex'))"
    sql = f"SELECT {area.sql(expr)}"
    return float(conn.execute(text(sql), {"wkb": parcel_ewkb_hex}).scalar_one())


def buffer_parcel(conn: Connection, parcel_ewkb_hex: str, metres: float) -> str:
    """The parcel grown by ``metres`` on the ellipsoid, as EWKB hex in EPSG:4490."""
    sql = (
        "SELECT encode(ST_AsEWKB(ST_SetSRID(ST_Buffer(ST_GeomFromEWKB(decode(:wkb, 'hex'))::geography, :m)::geometry,"
        " 4490)), 'hex')"
    )
    return str(conn.execute(text(sql), {"wkb": parcel_ewkb_hex, "m": metres}).scalar_one())
