"""Conflict analysis: a plan layer against the red lines, county-wide, entirely in PostGIS.

Which plan polygons conflict with which red line comes from the same declarative rules a parcel check
applies (``layers/rules.yaml``): for each rule about a red-line layer, the 用地用海 codes it fires for are
computed from the catalogue (construction land only, e.g. ``farmland.construction``,
``ecology.construction`` / ``ecology.linear_infrastructure`` for linear codes,
``urban_boundary.urban_construction_outside``) and passed as bound arrays. Rules that need facts a plan
polygon does not have (``plan_use_mismatch``, ``categories``, ``land_use_given: false``) do not apply.

One ``INSERT … SELECT`` on the layers' current versions then computes, for each plan polygon whose code a
rule names:

* ``inside`` rules: the intersection with the **union** of the red-line features it touches (overlapping
  red-line features are counted once), with the ids of those features;
* ``outside`` rules: the plan polygon minus the union of the boundary features it touches;

splits each piece by township (XZQ; a part outside every township is kept with no township, leaving out
splitting noise below :data:`REMAINDER_NOISE_M2`) and stores it in ``conflict_feature`` with its
ellipsoidal area ``ST_Area(geom::geography)``. The summary gives the union area per township × rule and
per-rule totals that are the sums of the township rows (unrounded, then rounded by ``area_figures``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import shapely
from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from ..catalog import Catalog, Layer
from ..checks import CurrentVersion, current_versions
from ..classifications import LandUseClass
from ..errors import NotFoundError, PlatformError, UnknownLayerError
from ..jobs import JobHandle, create_job, get_job, require_succeeded
from ..plane_store import check_versions_in_plane
from ..rules import LEVEL_EN, Condition, RuleSet
from ..settings import Settings
from ..survey_plane import substantive
from ..tables import Column, write_geopackage
from ..units import area_figures
from .overlay import AREA_MODEL_NAMES

CONFLICT_ROLES = ("red_line_farmland", "red_line_ecology", "urban_boundary")
PLAN_CODE_FIELD = "YDYHFLDM"
PLAN_NAME_FIELD = "YDYHFLMC"
REMAINDER_NOISE_M2 = 0.01
MAX_GEOJSON_FEATURES = 50_000


@dataclass(frozen=True)
class ConflictRule:
    """A rule as it applies to plan polygons: the red-line layer and the plan codes it fires for."""

    rule_id: str
    level: str
    layer: Layer
    relation: str
    min_area_m2: float
    citation: str
    codes: tuple[str, ...]


def _fires_for(condition: Condition, land_use: LandUseClass) -> bool:
    if condition.land_use_given is False or condition.plan_use_mismatch or condition.categories is not None:
        return False
    if condition.land_use is not None and not condition.land_use.matches(land_use):
        return False
    codes = condition.land_use_codes
    return codes is None or any(land_use.code.startswith(c) for c in codes)


def conflict_rules(rules: RuleSet, catalog: Catalog, red_lines: Sequence[Layer]) -> list[ConflictRule]:
    """The rules about ``red_lines`` with the construction-land codes each one fires for."""
    construction = [lu for lu in catalog.land_uses if lu.construction]
    wanted = {layer.code for layer in red_lines}
    found = []
    for rule in rules.rules:
        if rule.layer_role not in CONFLICT_ROLES:
            continue
        layer = catalog.layer_by_role(rule.layer_role)
        codes = tuple(lu.code for lu in construction if _fires_for(rule.condition, lu))
        if layer.code in wanted and codes:
            relation, min_area = rule.condition.relation, rule.condition.min_area_m2
            found.append(ConflictRule(rule.id, rule.level, layer, relation, min_area, rule.citation, codes))
    return found


def _plan_fields(plan: Layer) -> tuple[str, str | None]:
    code = plan.get_field(PLAN_CODE_FIELD)
    if code is None:
        raise PlatformError(
            f"layer {plan.code} has no 用地用海 code field {PLAN_CODE_FIELD}: choose a plan layer such as the township"
            " plan (YDYHGHFQ)",
            layer=plan.code,
        )
    name = plan.get_field(PLAN_NAME_FIELD)
    return code.name, name.name if name else plan.name_field


def _layers(catalog: Catalog, plan_code: str | None, red_codes: Sequence[str] | None) -> tuple[Layer, list[Layer]]:
    plan = catalog.layer(plan_code) if plan_code else catalog.layer_by_role("township_plan")
    _plan_fields(plan)
    if red_codes:
        reds = list({catalog.layer(code).code: catalog.layer(code) for code in red_codes}.values())
    else:
        reds = [layer for layer in catalog.layers if layer.role in CONFLICT_ROLES]
    for layer in reds:
        if layer.role not in CONFLICT_ROLES or layer.code == plan.code:
            allowed = ", ".join(x.code for x in catalog.layers if x.role in CONFLICT_ROLES)
            raise UnknownLayerError(f"{layer.code} is not a red-line layer (use {allowed})", layer=layer.code)
    return plan, reds


def _require_versions(versions: dict[str, CurrentVersion], layers: Sequence[Layer]) -> None:
    missing = [layer.code for layer in layers if layer.code not in versions]
    if missing:
        raise NotFoundError(f"no current version of {', '.join(missing)}: import the layer(s) first", layers=missing)


def submit_conflicts(
    engine: Engine,
    catalog: Catalog,
    rules: RuleSet,
    *,
    plan_layer: str | None = None,
    red_line_layers: Sequence[str] | None = None,
    created_by: str = "anonymous",
) -> dict[str, Any]:
    """Queue a conflict analysis of ``plan_layer`` (default: the township plan) against the red lines."""
    plan, reds = _layers(catalog, plan_layer, red_line_layers)
    if not conflict_rules(rules, catalog, reds):
        raise PlatformError(f"no rule applies construction land to {', '.join(r.code for r in reds)}")
    with engine.begin() as conn:
        _require_versions(current_versions(conn), [plan, *reds])
        params = {"plan_layer": plan.code, "red_line_layers": [r.code for r in reds]}
        job_id = create_job(conn, kind="conflicts", params=params, created_by=created_by, progress_total=1)
    return get_job(engine, job_id)


def _branch_sql(i: int, relation: str) -> str:
    head = (
        "SELECT rc.rule_id, rc.level, rc.min_area, rc.layer_code, p.id AS plan_id, p.fkey, p.use_code, p.use_name,"
        f" {{ids}} AS ids, {{geom}} AS geom FROM plan p JOIN rc ON rc.branch = {i} AND rc.code = p.use_code"
    )
    clip = "CASE WHEN ST_CoveredBy(p.geom, r.geom_plane) THEN p.geom ELSE ST_Intersection(p.geom, r.geom_plane) END"
    near = f"FROM feature r WHERE r.version_id = :v_{i} AND ST_Intersects(p.geom, r.geom_plane)"
    if relation == "inside":
        return (
            head.format(ids="x.ids", geom="x.g")
            + " CROSS JOIN LATERAL (SELECT array_agg(y.rid ORDER BY y.rid) AS ids, ST_Union(y.ig) AS g FROM ("
            f"   SELECT coalesce(r.properties->>:fid_{i}, r.id::text) AS rid, ST_CollectionExtract({clip}, 3) AS ig"
            f"   {near} OFFSET 0) y WHERE {substantive('y.ig')}) x WHERE x.g IS NOT NULL"
        )
    outside = "CASE WHEN x.u IS NULL THEN p.geom ELSE ST_CollectionExtract(ST_Difference(p.geom, x.u), 3) END"
    return (
        head.format(ids="NULL::text[]", geom=outside)
        + f" CROSS JOIN LATERAL (SELECT ST_Union(ST_CollectionExtract({clip}, 3)) AS u {near}) x"
    )


_CONFLICT_SQL = f"""
WITH rc AS (
    SELECT * FROM unnest(CAST(:rc_branch AS int[]), CAST(:rc_layer AS text[]), CAST(:rc_rule AS text[]),
                         CAST(:rc_level AS text[]), CAST(:rc_code AS text[]), CAST(:rc_min AS float8[]))
        AS t(branch, layer_code, rule_id, level, code, min_area)
),
plan AS MATERIALIZED (
    SELECT f.id, f.properties->>:plan_fid AS fkey, btrim(f.properties->>:plan_code) AS use_code,
           coalesce(f.properties->>:plan_name, n.name) AS use_name, f.geom_plane AS geom
    FROM feature f JOIN unnest(CAST(:codes AS text[]), CAST(:names AS text[])) AS n(code, name)
      ON n.code = btrim(f.properties->>:plan_code)
    WHERE f.version_id = :v_plan AND ST_Dimension(f.geom_plane) = 2
),
hit AS MATERIALIZED (
    SELECT row_number() OVER () AS hid, h.* FROM ({{branches}} OFFSET 0) h WHERE {substantive("h.geom")}
),
split AS MATERIALIZED (
    SELECT h.hid, t.code, t.name, t.g AS geom FROM hit h
    CROSS JOIN LATERAL (
        SELECT tf.properties->>:town_fid AS code, tf.properties->>:town_name AS name,
               ST_CollectionExtract(CASE WHEN ST_CoveredBy(h.geom, tf.geom_plane) THEN h.geom
                                         ELSE ST_Intersection(h.geom, tf.geom_plane) END, 3) AS g
        FROM feature tf WHERE tf.version_id = :v_town AND ST_Intersects(h.geom, tf.geom_plane) OFFSET 0
    ) t WHERE {substantive("t.g")}
),
rest AS MATERIALIZED (
    SELECT h.hid, NULL::text AS code, NULL::text AS name,
           CASE WHEN s.u IS NULL THEN h.geom ELSE ST_CollectionExtract(ST_Difference(h.geom, s.u), 3) END AS geom
    FROM hit h LEFT JOIN (SELECT hid, ST_Union(geom) AS u FROM split GROUP BY hid) s ON s.hid = h.hid
    WHERE s.u IS NULL OR NOT ST_CoveredBy(h.geom, s.u)
),
piece AS MATERIALIZED (
    SELECT h.*, p.code, p.name, p.rest, p.geom AS pgeom, p.lgeom, ST_Area(p.lgeom::geography) AS area
    FROM (SELECT u.*, ST_Transform(u.geom, 4490) AS lgeom
          FROM (SELECT *, false AS rest FROM split UNION ALL SELECT *, true AS rest FROM rest) u
          WHERE {substantive("u.geom")} OFFSET 0) p
    JOIN hit h ON h.hid = p.hid
),
kept AS (
    SELECT *, sum(area) OVER (PARTITION BY hid) AS hit_area
    FROM piece WHERE area > min_area AND (NOT rest OR area > :noise)
)
INSERT INTO conflict_feature (job_id, id, township_code, township_name, plan_layer_code, plan_feature_id,
    plan_feature_key, plan_use_code, plan_use_name, redline_layer_code, redline_feature_ids, rule_id, level,
    area_m2, minor, geom, geom_plane)
SELECT :job, row_number() OVER (ORDER BY code NULLS LAST, rule_id, fkey, plan_id, hid)::int, code, name, :plan_layer,
       plan_id, fkey, use_code, use_name, layer_code, ids, rule_id, level, area, hit_area < :minor, ST_Multi(lgeom),
       ST_Multi(pgeom)
FROM kept
"""

_SUMMARY_SQL = """
SELECT township_code, township_name, rule_id, level, redline_layer_code, count(*) AS pieces,
       count(DISTINCT plan_feature_id) AS plan_features, count(*) FILTER (WHERE minor) AS minor_pieces,
       ST_Area(ST_Transform(ST_Union(geom_plane), 4490)::geography) AS area
FROM conflict_feature WHERE job_id = :job
GROUP BY township_code, township_name, rule_id, level, redline_layer_code
ORDER BY township_code NULLS LAST, rule_id
"""


def _analyse(
    conn: Connection, catalog: Catalog, crules: list[ConflictRule], plan: Layer, job: JobHandle, minor_m2: float
) -> dict[str, CurrentVersion]:
    versions = current_versions(conn)
    reds = list({r.layer.code: r.layer for r in crules}.values())
    _require_versions(versions, [plan, *reds])
    check_versions_in_plane(conn, [v.version_id for v in versions.values()], catalog.survey_plane)
    town = next((layer for layer in catalog.layers if layer.role == "township_boundary"), None)
    code_field, name_field = _plan_fields(plan)
    branches = list(dict.fromkeys((r.layer.code, r.relation) for r in crules))
    rows = [(branches.index((r.layer.code, r.relation)), r, code) for r in crules for code in r.codes]
    codes = sorted({code for r in crules for code in r.codes})
    params: dict[str, Any] = {
        "job": job.id,
        "rc_branch": [b for b, _r, _c in rows],
        "rc_layer": [r.layer.code for _b, r, _c in rows],
        "rc_rule": [r.rule_id for _b, r, _c in rows],
        "rc_level": [r.level for _b, r, _c in rows],
        "rc_code": [c for _b, _r, c in rows],
        "rc_min": [r.min_area_m2 for _b, r, _c in rows],
        "codes": codes,
        "names": [catalog.land_use(c).name_zh for c in codes],
        "plan_layer": plan.code,
        "plan_fid": plan.feature_id_field,
        "plan_code": code_field,
        "plan_name": name_field,
        "v_plan": versions[plan.code].version_id,
        "v_town": versions[town.code].version_id if town and town.code in versions else None,
        "town_fid": town.feature_id_field if town else None,
        "town_name": town.name_field if town else None,
        "minor": minor_m2,
        "noise": REMAINDER_NOISE_M2,
        "noise_width": catalog.survey_plane.noise_width_m,
    }
    for i, (code, _relation) in enumerate(branches):
        params[f"v_{i}"] = versions[code].version_id
        params[f"fid_{i}"] = catalog.layer(code).feature_id_field
    sql = _CONFLICT_SQL.format(branches=" UNION ALL ".join(_branch_sql(i, rel) for i, (_c, rel) in enumerate(branches)))
    conn.execute(text("DELETE FROM conflict_feature WHERE job_id = :job"), {"job": job.id})
    conn.execute(text(sql), params)
    used = [plan, *reds, *([town] if town and town.code in versions else [])]
    return {layer.code: versions[layer.code] for layer in used}


def run_conflicts_job(
    engine: Engine, catalog: Catalog, rules: RuleSet, settings: Settings, job: JobHandle
) -> dict[str, Any]:
    """Job handler for ``conflicts``: compute, store and summarise in one REPEATABLE READ transaction."""
    plan, reds = _layers(catalog, job.params.get("plan_layer"), job.params.get("red_line_layers"))
    crules = conflict_rules(rules, catalog, reds)
    with engine.begin() as conn:
        conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
        used = _analyse(conn, catalog, crules, plan, job, rules.minor_area.threshold_m2)
        groups = conn.execute(text(_SUMMARY_SQL), {"job": job.id}).all()
        plan_codes = conn.execute(
            text("SELECT btrim(properties->>:f), count(*) FROM feature WHERE version_id = :v GROUP BY 1"),
            {"f": _plan_fields(plan)[0], "v": used[plan.code].version_id},
        ).all()
    known = {lu.code for lu in catalog.land_uses}
    totals: dict[str, dict[str, Any]] = {}
    for g in groups:  # a rule's total is the sum of its unrounded township rows
        t = totals.setdefault(g.rule_id, {"rule_id": g.rule_id, "layer_code": g.redline_layer_code, "pieces": 0})
        t |= {"level": g.level, "level_en": LEVEL_EN[g.level], "pieces": t["pieces"] + g.pieces}
        t["m2"] = t.get("m2", 0.0) + g.area
    return {
        "plan_layer": plan.code,
        "red_line_layers": [r.code for r in reds],
        "data_versions": {
            code: {
                "id": v.version_id,
                "version_no": v.version_no,
                "source_name": v.source_name,
                "imported_at": v.imported_at.isoformat(),
            }
            for code, v in used.items()
        },
        "area_model": AREA_MODEL_NAMES["ellipsoidal"],
        "minor_overlap_threshold_m2": rules.minor_area.threshold_m2,
        "rules": [
            {
                "rule_id": r.rule_id,
                "level": r.level,
                "level_en": LEVEL_EN[r.level],
                "layer_code": r.layer.code,
                "relation": r.relation,
                "codes": list(r.codes),
                "citation": r.citation,
            }
            for r in crules
        ],
        "feature_count": sum(g.pieces for g in groups),
        "rows": [
            {
                "township_code": g.township_code,
                "township_name": g.township_name,
                "rule_id": g.rule_id,
                "level": g.level,
                "level_en": LEVEL_EN[g.level],
                "layer_code": g.redline_layer_code,
                "pieces": g.pieces,
                "plan_features": g.plan_features,
                "minor_pieces": g.minor_pieces,
                "area": area_figures(g.area),
            }
            for g in groups
        ],
        "totals": [
            {k: v for k, v in t.items() if k != "m2"} | {"area": area_figures(t["m2"])} for t in totals.values()
        ],
        "plan_codes_not_in_catalogue": {code or "": n for code, n in plan_codes if code not in known},
        "catalog_fingerprint": catalog.fingerprint,
        "rules_fingerprint": rules.fingerprint,
    }


# --------------------------------------------------------------------------------------------------
# Results: GeoJSON for the map, GeoPackage for download
# --------------------------------------------------------------------------------------------------

#: Fields of the GeoJSON properties and the GeoPackage layer, in order.
FEATURE_FIELDS = (
    "id",
    "township_code",
    "township_name",
    "rule_id",
    "level",
    "level_en",
    "redline_layer",
    "redline_ids",
    "plan_layer",
    "plan_feature_id",
    "plan_feature_key",
    "plan_use_code",
    "plan_use_name",
    "area_m2",
    "area_ha",
    "area_mu",
    "minor",
)
_FEATURE_COLUMNS = (
    "id, township_code, township_name, rule_id, level, redline_layer_code, redline_feature_ids, plan_layer_code,"
    " plan_feature_id, plan_feature_key, plan_use_code, plan_use_name, area_m2, minor"
)


def _properties(row: Any) -> dict[str, Any]:
    area = area_figures(row.area_m2)
    return {
        "id": row.id,
        "township_code": row.township_code,
        "township_name": row.township_name,
        "rule_id": row.rule_id,
        "level": row.level,
        "level_en": LEVEL_EN[row.level],
        "redline_layer": row.redline_layer_code,
        "redline_ids": ",".join(row.redline_feature_ids or []),
        "plan_layer": row.plan_layer_code,
        "plan_feature_id": row.plan_feature_id,
        "plan_feature_key": row.plan_feature_key,
        "plan_use_code": row.plan_use_code,
        "plan_use_name": row.plan_use_name,
        "area_m2": area["m2"],
        "area_ha": area["hectare"],
        "area_mu": area["mu"],
        "minor": row.minor,
    }


def _succeeded_job(engine: Engine, job_id: Any) -> uuid.UUID:
    job = get_job(engine, job_id, kind="conflicts")
    require_succeeded(job)
    return uuid.UUID(job["id"])


def conflict_features_geojson(
    engine: Engine,
    job_id: Any,
    *,
    bbox: tuple[float, float, float, float] | None = None,
    limit: int = MAX_GEOJSON_FEATURES,
) -> dict[str, Any]:
    """The conflict polygons as a GeoJSON FeatureCollection (EPSG:4490 lon/lat), optionally in a bbox."""
    key = _succeeded_job(engine, job_id)
    where = "job_id = :job" + (" AND geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4490)" if bbox else "")
    params: dict[str, Any] = {"job": key, "limit": limit}
    if bbox:
        params.update(dict(zip(("x0", "y0", "x1", "y1"), bbox, strict=True)))
    with engine.connect() as conn:
        matched = conn.execute(text(f"SELECT count(*) FROM conflict_feature WHERE {where}"), params).scalar_one()
        rows = conn.execute(
            text(
                f"SELECT {_FEATURE_COLUMNS}, ST_AsGeoJSON(geom, 9) AS geojson FROM conflict_feature WHERE {where}"
                " ORDER BY id LIMIT :limit"
            ),
            params,
        ).all()
    features = [
        {"type": "Feature", "id": r.id, "geometry": json.loads(r.geojson), "properties": _properties(r)} for r in rows
    ]
    return {
        "type": "FeatureCollection",
        "numberMatched": matched,
        "numberReturned": len(features),
        "features": features,
    }


def export_conflicts_gpkg(engine: Engine, job_id: Any, directory: Path) -> Path:
    """The conflict polygons of a succeeded job as ``conflicts-<id>.gpkg`` (EPSG:4490) in ``directory``."""
    key = _succeeded_job(engine, job_id)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                f"SELECT {_FEATURE_COLUMNS}, ST_AsBinary(geom) AS wkb FROM conflict_feature"
                " WHERE job_id = :job ORDER BY id"
            ),
            {"job": key},
        ).all()
    columns = [Column(name, name) for name in FEATURE_FIELDS]
    path = directory / f"conflicts-{key}.gpkg"
    geometries = [shapely.from_wkb(bytes(r.wkb)) for r in rows]
    write_geopackage(path, "conflicts", columns, [_properties(r) for r in rows], geometries)
    return path
