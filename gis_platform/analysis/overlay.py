"""Red-line overlay: a parcel against layer versions, computed in PostGIS in the county's survey plane.

One statement returns everything for every layer: the per-feature overlaps (positive-area parts only, so
edge-only contact is 0 m²), the area of their **union** (never the sum: red-line features may overlap each
other), the union area by category (e.g. 用地用海 code, 易发程度) and, where a rule needs it, the part of the
parcel outside the layer. Every intersection, union and difference runs in the survey plane
(:mod:`gis_platform.survey_plane`; pieces thinner than its noise width are empty); areas are then measured on
the CGCS2000 ellipsoid (the result reprojected to EPSG:4490, as geography), or in the plane for the planar model.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import orjson
from sqlalchemy import text
from sqlalchemy.engine import Connection

from ..catalog import Layer
from ..models import STORAGE_SRID
from ..plane_store import require_plane
from ..survey_plane import NOISE_PARAM, SurveyPlane, substantive

AreaModel = Literal["ellipsoidal", "planar"]
AREA_MODEL_NAMES = {
    "ellipsoidal": "椭球面积 ellipsoidal area on the CGCS2000 ellipsoid of the survey-plane overlay (geography)",
    "planar": "平面面积 planar Gauss-Krüger area in the county's survey plane",
}
#: The overlay method a check records (replays compare like with like): intersect, union and difference in the
#: survey plane, pieces thinner than its noise width are empty, then measure on the ellipsoid (or in the plane).
#: /2: pieces of features the import found overlapping no other are summed, not unioned (ingest/coverage.py).
OVERLAY_METHOD = "survey-plane/2"


@dataclass(frozen=True)
class AreaContext:
    """How areas are measured in one check: the model, and the survey plane every overlay runs in."""

    model: AreaModel
    plane: SurveyPlane

    def measure(self, plane_expr: str, lonlat_expr: str | None = None) -> str:
        """SQL for the area of a geometry given in the plane (and, when known, already in EPSG:4490)."""
        if self.model == "planar":
            return f"ST_Area({plane_expr})"
        return f"ST_Area(({lonlat_expr or f'ST_Transform({plane_expr}, {STORAGE_SRID})'})::geography)"

    @property
    def label(self) -> dict[str, Any]:
        """The area model as a check document states it."""
        return {
            "name": self.model,
            "description": AREA_MODEL_NAMES[self.model],
            "survey_plane_epsg": self.plane.epsg,
            "noise_width_m": self.plane.noise_width_m,
            **({"gk_epsg": self.plane.epsg} if self.model == "planar" else {}),
        }


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
    outside_m2: float | None = None
    """The part of the parcel outside every feature of the layer (measured only when asked for)."""


def _polygon_json(area: AreaContext, category_field: str | None, i: int) -> str:
    """One layer's overlay as a JSON scalar subquery; ``p`` (the parcel in the plane, ``g``, and in EPSG:4490,
    ``gl``) and ``pa`` (its area) are CTEs of the enclosing statement.

    ``OFFSET 0`` keeps PostgreSQL from pulling a subquery up into its caller, which would copy an expression
    (an intersection, a reprojection) into every place its column is read and compute it that many times.

    Every piece is cut in the survey plane: a feature wholly inside the parcel is taken whole (with its stored
    area), the parcel wholly inside a feature is the parcel (with its area), anything else is
    ``ST_Intersection(feature, parcel)``, dropped when it is only noise (:func:`substantive`), reprojected to
    EPSG:4490 once for its area and its map geometry. A piece that is the whole parcel (or the whole feature) but
    for noise is taken as the parcel (the feature): its area is then exactly the parcel's (the feature's), not the
    geodesic area of the same region with extra vertices on its straight edges, which differs by up to ~0.1 m² on
    a 2 km edge at the zone edge. The area of a union is the area of ``ST_Union(pieces)``
    only where there is more than one piece. The part of the parcel outside the layer is measured (a difference,
    noise dropped) only where a rule asks for it: a parcel snapped to a boundary from inside has none.
    """
    feature_area = "farea" if area.model == "ellipsoidal" else "ST_Area(ig)"
    union = f"(SELECT {area.measure('ST_Union(ig)')} FROM meas{i})"
    # one piece, or pieces of features the import found overlapping no other (ingest/coverage.py): their sum
    disjoint = (
        f"(SELECT count(*) <= 1 OR (SELECT v.overlap_fids IS NOT NULL AND NOT (v.overlap_fids && array_agg(source_fid))"
        f" FROM layer_version v WHERE v.id = :v{i}) FROM meas{i})"
    )
    one_or_union = f"(SELECT CASE WHEN {disjoint} THEN coalesce(sum(a), 0) END FROM meas{i})"
    category = (
        f"""(SELECT json_object_agg(coalesce(cat, ''), a) FROM (
                SELECT properties->>'{category_field}' AS cat,
                       CASE WHEN count(*) = 1 OR {disjoint} THEN sum(a) ELSE {area.measure("ST_Union(ig)")} END AS a
                FROM meas{i} GROUP BY 1) c)"""
        if category_field
        else "NULL::json"
    )
    single = f"(SELECT CASE WHEN count(*) = 1 THEN (array_agg(ig))[1] END FROM meas{i})"
    covered = f"coalesce({single}, (SELECT ST_Union(ig) FROM meas{i}))"
    difference = f"ST_CollectionExtract(ST_Difference(p.g, {covered}), 3)"
    return f"""(
    WITH hit{i} AS MATERIALIZED (
        SELECT f.id, f.source_fid, f.properties, f.area_m2 AS farea, f.geom AS fgl, f.geom_plane AS fg,
               CASE WHEN ST_CoveredBy(f.geom_plane, p.g) THEN 1 WHEN ST_CoveredBy(p.g, f.geom_plane) THEN 2 ELSE 0 END
                   AS how
        FROM feature f, p
        WHERE f.version_id = :v{i} AND ST_Intersects(f.geom_plane, p.g)
    ),
    pos{i} AS MATERIALIZED (
        SELECT h.id, h.source_fid, h.properties, k.how, h.farea, h.fgl,
               CASE k.how WHEN 1 THEN h.fg WHEN 2 THEN p.g ELSE c.ig END AS ig
        FROM hit{i} h, p,
            LATERAL (SELECT CASE WHEN h.how = 0 THEN ST_CollectionExtract(ST_Intersection(h.fg, p.g), 3) END AS ig
                     OFFSET 0) c,
            LATERAL (SELECT CASE WHEN h.how > 0 THEN h.how
                                 WHEN NOT {substantive("c.ig")} THEN -1
                                 WHEN p.area - ST_Area(c.ig) <= {NOISE_PARAM} * p.perimeter THEN 2
                                 WHEN h.fg @ p.box
                                      AND ST_Area(h.fg) - ST_Area(c.ig) <= {NOISE_PARAM} * ST_Perimeter(h.fg) THEN 1
                                 ELSE 0 END AS how OFFSET 0) k
        WHERE k.how >= 0
    ),
    meas{i} AS MATERIALIZED (
        SELECT x.*,
               CASE x.how WHEN 1 THEN {feature_area} WHEN 2 THEN pa.a ELSE {area.measure("ig", "igl")} END AS a
        FROM (SELECT pos{i}.*,
                     CASE how WHEN 1 THEN fgl WHEN 2 THEN p.gl ELSE ST_Transform(ig, {STORAGE_SRID}) END AS igl
              FROM pos{i}, p OFFSET 0) x, pa
    )
    SELECT json_build_object(
        'features', (SELECT coalesce(json_agg(json_build_object(
                'id', id, 'fid', source_fid, 'properties', properties, 'area', a,
                'geometry', CASE WHEN :g{i} THEN ST_AsGeoJSON(igl, 8)::json END) ORDER BY source_fid), '[]')
            FROM meas{i}),
        'union', CASE WHEN EXISTS (SELECT FROM meas{i} WHERE how = 2) THEN (SELECT a FROM pa)
                      ELSE coalesce({one_or_union}, {union}, 0) END,
        'outside', CASE WHEN NOT :o{i} THEN NULL
                        WHEN NOT EXISTS (SELECT FROM meas{i}) THEN (SELECT a FROM pa)
                        WHEN EXISTS (SELECT FROM meas{i} WHERE how = 2) THEN 0
                        ELSE (SELECT CASE WHEN {substantive("d")} THEN {area.measure("d")} ELSE 0 END
                              FROM (SELECT {difference} AS d FROM p) x) END,
        'categories', {category}
    ))"""


def _point_json(i: int) -> str:
    return f"""(
    SELECT coalesce(json_agg(json_build_object('id', f.id, 'fid', f.source_fid, 'properties', f.properties,
                   'geometry', ST_AsGeoJSON(f.geom, 8)::json) ORDER BY f.source_fid), '[]')
    FROM feature f, p WHERE f.version_id = :v{i} AND ST_Intersects(f.geom_plane, p.g))"""


def category_field(layer: Layer) -> str | None:
    categorized = layer.style.categorized
    return categorized.field if categorized is not None else None


@dataclass(frozen=True)
class OverlayRequest:
    """A layer to overlay, whether the overlap geometries are wanted (for the map), and whether the part of the
    parcel outside the layer must be measured (a rule about the outside asks for it)."""

    layer: Layer
    with_geometry: bool = True
    measure_outside: bool = False


@dataclass(frozen=True)
class LayerVersion:
    """The version of a layer the overlay read."""

    version_id: int
    version_no: int
    source_name: str
    imported_at: dt.datetime


@dataclass
class ParcelOverlay:
    parcel_m2: float
    layers: dict[str, LayerOverlap]
    """Every requested layer that has a version to read."""
    versions: dict[str, LayerVersion]
    """The version each of those layers was read in."""


@dataclass(frozen=True)
class _Statement:
    """The overlay of one set of layers as a server-side prepared statement."""

    name: str
    prepare: str
    execute: str


_PARAMETER_KINDS = "cvgo"  # per layer: code, version id, with geometry, measure outside
_VERSIONS = {
    # the current version of each layer, in the statement's own snapshot
    "current": "JOIN layer_version v ON v.id = l.current_version_id WHERE l.code IN ({codes})",
    # the versions a replay names (each layer's code and version id are parameters)
    "pinned": "JOIN layer_version v ON v.layer_id = l.id WHERE (l.code, v.id) IN ({pairs})",
}


@lru_cache(maxsize=256)
def _overlay_statement(
    area: AreaContext, layers: tuple[tuple[str, str | None], ...], versions: str = "current"
) -> _Statement:
    """The one statement for a parcel and these layers ((geometry type, category field) each), built once.

    Parameters: ``$1`` the parcel in the survey plane as EWKB hex, ``$2`` the noise width (m), ``$3`` the parcel
    in EPSG:4490 as EWKB hex (or NULL: reprojected here), then per layer
    its code, the version id to read, whether overlap geometries are wanted and whether to measure the outside.
    Besides the overlay (JSON text, parsed with orjson: psycopg2 parses json with the slower standard library)
    the row holds the version of each of these layers that the statement saw (current, or the pinned ones).
    """
    parts = ["'parcel_m2', (SELECT a FROM pa)"]
    types = ["text", "float8", "text"]
    for i, (geometry_type, category) in enumerate(layers):
        subquery = _point_json(i) if geometry_type == "point" else _polygon_json(area, category, i)
        parts.append(f"'{i}', {subquery}")
        types += ["text", "integer", "boolean", "boolean"]
    codes = ", ".join(f":c{i}" for i in range(len(layers)))
    pairs = ", ".join(f"(:c{i}, :v{i})" for i in range(len(layers)))
    sql = (
        "WITH p AS (SELECT g,"
        f" coalesce(ST_GeomFromEWKB(decode(:lonlat, 'hex')), ST_Transform(g, {STORAGE_SRID})) AS gl,"
        " ST_Area(g) AS area, ST_Perimeter(g) AS perimeter,"
        " ST_Expand(g, 1) AS box"  # a feature outside this box is not the parcel's piece whole (no O(n) test)
        " FROM (SELECT ST_GeomFromEWKB(decode(:wkb, 'hex')) AS g) x),\n"
        f"pa AS (SELECT {area.measure('g', 'gl')} AS a FROM p)\n"
        f"SELECT json_build_object({', '.join(parts)})::text, cv.* FROM p, ("
        "SELECT array_agg(l.code) AS codes, array_agg(v.id) AS ids, array_agg(v.version_no) AS numbers,"
        " array_agg(v.source_name) AS sources, array_agg(v.imported_at) AS imported, array_agg(v.plane_srid) AS planes"
        f" FROM layer l {_VERSIONS[versions].format(codes=codes, pairs=pairs)}) cv"
    )
    numbered = re.sub(r"(?<!:):(wkb|noise_width|lonlat|[cvgo]\d+)\b", _placeholder_number, sql)
    name = "gis_overlay_" + hashlib.sha1(numbered.encode()).hexdigest()[:16]
    return _Statement(
        name=name,
        prepare=f"PREPARE {name} ({', '.join(types)}) AS {numbered}",
        # one generic plan for every parcel; SET LOCAL ends with the transaction
        execute=f"SET LOCAL plan_cache_mode = force_generic_plan; EXECUTE {name} ({', '.join(['%s'] * len(types))})",
    )


def _placeholder_number(match: re.Match[str]) -> str:
    name = match.group(1)
    fixed = ("wkb", "noise_width", "lonlat")
    if name in fixed:
        return f"${fixed.index(name) + 1}"
    kinds = _PARAMETER_KINDS
    return f"${4 + len(kinds) * int(name[1:]) + kinds.index(name[0])}"  # c0 → $4, v0 → $5, g0 → $6, o0 → $7, c1 …


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
    conn: Connection,
    parcel_ewkb_hex: str,
    requests: list[OverlayRequest],
    area: AreaContext,
    *,
    lonlat_ewkb_hex: str | None = None,
    pinned: Mapping[str, int] | None = None,
) -> ParcelOverlay:
    """The parcel's area and its overlay with a version of every requested layer, in one statement.

    ``parcel_ewkb_hex`` is the parcel in the survey plane (``area.plane``); ``lonlat_ewkb_hex`` the same parcel in
    EPSG:4490 when the caller has it (projected vertex by vertex from the same coordinates), saving the statement
    a reprojection. Without ``pinned`` each layer is
    read in its current version: one round trip instead of one per layer (a check reads six to eight layers,
    and each statement cost a few tenths of a millisecond in round trip and driver overhead on top of its
    PostGIS work). The statement reads the version ids last seen current and also returns the versions current
    in its snapshot; when they differ (a layer was imported since, or this process has not checked yet) it runs
    again with those, so the versions read are always the current ones without a separate round trip to look
    them up first. With ``pinned`` (layer code → version id, a replay) exactly those versions are read. Layers
    without a version are left out of the result.
    """
    shape = tuple((req.layer.geometry_type, category_field(req.layer)) for req in requests)
    statement = _overlay_statement(area, shape, "pinned" if pinned is not None else "current")
    last: dict[str, int | None] = (
        _last_current.setdefault(str(conn.engine.url), {}) if pinned is None else dict(pinned)
    )
    for _attempt in range(MAX_ATTEMPTS):
        used = {req.layer.code: last.get(req.layer.code) for req in requests}
        values: list[Any] = [parcel_ewkb_hex, area.plane.noise_width_m, lonlat_ewkb_hex]
        for req in requests:
            values += [req.layer.code, used[req.layer.code], req.with_geometry, req.measure_outside]
        row = _run_prepared(conn, statement, tuple(values))
        columns = (row.codes, row.ids, row.numbers, row.sources, row.imported) if row.codes else ((),) * 5
        versions = {code: LayerVersion(*version) for code, *version in zip(*columns, strict=True)}
        current = {code: versions[code].version_id if code in versions else None for code in used}
        if pinned is not None:
            break
        last.update(current)
        if current == used:
            break
    else:
        raise RuntimeError(f"the current layer versions changed {MAX_ATTEMPTS} times during one overlay")
    require_plane(zip(row.codes or (), row.ids or (), row.planes or (), strict=True), area.plane)
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
        outside_m2=float(data["outside"]) if data.get("outside") is not None else None,
    )


def parcel_area(conn: Connection, plane_ewkb_hex: str, area: AreaContext) -> float:
    """The area of a parcel given in the survey plane, as the area model measures it."""
    sql = f"SELECT {area.measure('g')} FROM (SELECT ST_GeomFromEWKB(decode(:wkb, 'hex')) AS g) p"
    return float(conn.execute(text(sql), {"wkb": plane_ewkb_hex}).scalar_one())


def buffer_parcel(conn: Connection, plane_ewkb_hex: str, metres: float) -> str:
    """The parcel grown by ``metres`` in the survey plane (GEOS buffer, 8 segments a quarter circle), EWKB hex."""
    sql = "SELECT encode(ST_AsEWKB(ST_Buffer(ST_GeomFromEWKB(decode(:wkb, 'hex')), :m)), 'hex')"
    return str(conn.execute(text(sql), {"wkb": plane_ewkb_hex, "m": metres}).scalar_one())
