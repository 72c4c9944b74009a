"""What changed between two versions of a layer (变更比对): added, removed and changed features, and their areas.

Features are matched by the catalogue's ``feature_id_field`` of the layer (BSM, YJJBNTTBBH …). A feature whose
identifier is empty is matched by its exact geometry instead; several features with one identifier are paired in
the order of their geometry. A matched pair is *unchanged* when geometry (exact bytes) and attributes are equal,
otherwise *changed*, with the attributes that differ and whether the geometry moved. Areas are the stored
ellipsoidal areas of the features (CGCS2000, as everywhere in the platform).

Versions never change once written, so the comparison of two is computed once, in one transaction, and kept
(``version_comparison`` / ``version_change``, migration 0007); later requests read it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, text

from ..catalog import Catalog, Layer
from ..errors import NotFoundError, PlatformError
from ..units import area_figures

KINDS = ("added", "removed", "changed")
MAX_PAGE = 500
MAX_GEOJSON_FEATURES = 5000


class ComparisonError(PlatformError):
    """Two versions that cannot be compared (the same version twice)."""


@dataclass(frozen=True)
class VersionRef:
    id: int
    version_no: int
    source_name: str
    imported_at: str
    feature_count: int


def _versions(
    conn: Connection, layer: Layer, base_no: int | None, target_no: int | None
) -> tuple[VersionRef, VersionRef]:
    rows = conn.execute(
        text(
            "SELECT v.id, v.version_no, v.source_name, v.imported_at, v.feature_count,"
            " v.id = l.current_version_id AS cur FROM layer_version v JOIN layer l ON l.id = v.layer_id"
            " WHERE l.code = :c ORDER BY v.version_no"
        ),
        {"c": layer.code},
    ).all()
    by_no = {r.version_no: r for r in rows}
    if target_no is None:
        current = [r for r in rows if r.cur]
        if not current:
            raise NotFoundError(f"layer {layer.code} has no current version")
        target_no = current[0].version_no
    if target_no not in by_no:
        raise NotFoundError(f"layer {layer.code} has no version {target_no}", version=target_no)
    if base_no is None:
        earlier = [r.version_no for r in rows if r.version_no < target_no]
        if not earlier:
            raise NotFoundError(
                f"layer {layer.code} has no version before version {target_no} to compare it with", version=target_no
            )
        base_no = earlier[-1]
    if base_no not in by_no:
        raise NotFoundError(f"layer {layer.code} has no version {base_no}", version=base_no)
    if base_no == target_no:
        raise ComparisonError(f"base and target are the same version ({base_no}): give two different versions")

    def ref(r: Any) -> VersionRef:
        return VersionRef(r.id, r.version_no, r.source_name, r.imported_at.isoformat(), r.feature_count)

    return ref(by_no[base_no]), ref(by_no[target_no])


# One row per feature of a version, keyed for matching: the identifier, or the geometry when there is none;
# ``n`` numbers the features sharing a key (in geometry order), so that duplicates pair one to one.
_KEYED = """
    SELECT coalesce(nullif(btrim(properties->>:field), ''), 'geom:' || md5(ST_AsEWKB(geom))) AS k,
           id, properties, md5(ST_AsEWKB(geom)) AS gh, area_m2
    FROM feature WHERE version_id = {version}
"""

_COMPUTE = f"""
WITH b AS ({_KEYED.format(version=":base")}),
     t AS ({_KEYED.format(version=":target")}),
     b2 AS (SELECT *, row_number() OVER (PARTITION BY k ORDER BY gh, id) AS n FROM b),
     t2 AS (SELECT *, row_number() OVER (PARTITION BY k ORDER BY gh, id) AS n FROM t),
     j AS (
        SELECT coalesce(t2.k, b2.k) AS k, b2.id AS bid, t2.id AS tid, b2.area_m2 AS ba, t2.area_m2 AS ta,
               CASE WHEN b2.k IS NULL THEN 'added' WHEN t2.k IS NULL THEN 'removed'
                    WHEN b2.gh = t2.gh AND b2.properties = t2.properties THEN 'unchanged'
                    ELSE 'changed' END AS kind,
               coalesce(b2.gh <> t2.gh, false) AS moved,
               CASE WHEN b2.k IS NOT NULL AND t2.k IS NOT NULL AND b2.properties <> t2.properties THEN
                   ARRAY(SELECT coalesce(x.key, y.key) FROM jsonb_each(b2.properties) x
                         FULL JOIN jsonb_each(t2.properties) y ON x.key = y.key
                         WHERE x.value IS DISTINCT FROM y.value ORDER BY 1)
               ELSE ARRAY[]::text[] END AS fields
        FROM b2 FULL JOIN t2 ON b2.k = t2.k AND b2.n = t2.n
     ),
     stored AS (
        INSERT INTO version_change (comparison_id, seq, kind, feature_key, base_feature_id, target_feature_id,
                                    base_area_m2, target_area_m2, changed_fields, geometry_changed)
        SELECT :comparison, row_number() OVER (ORDER BY abs(coalesce(ta, 0) - coalesce(ba, 0)) DESC, k, kind),
               kind, k, bid, tid, ba, ta, fields, moved
        FROM j WHERE kind <> 'unchanged'
     )
SELECT kind, count(*) AS n, coalesce(sum(ba), 0) AS ba, coalesce(sum(ta), 0) AS ta FROM j GROUP BY kind
"""


def _summary(rows: Sequence[Any]) -> dict[str, Any]:
    by_kind = {r.kind: r for r in rows}

    def part(kind: str) -> dict[str, Any]:
        r = by_kind.get(kind)
        count, base, target = (r.n, r.ba, r.ta) if r else (0, 0.0, 0.0)
        if kind == "added":
            return {"count": count, "area": area_figures(target)}
        if kind in ("removed", "unchanged"):
            return {"count": count, "area": area_figures(base)}
        return {
            "count": count,
            "base_area": area_figures(base),
            "target_area": area_figures(target),
            "delta": area_figures(target - base),
        }

    base_total = sum(r.ba for r in rows)
    target_total = sum(r.ta for r in rows)
    return {
        **{kind: part(kind) for kind in (*KINDS, "unchanged")},
        "total": {
            "base": area_figures(base_total),
            "target": area_figures(target_total),
            "delta": area_figures(target_total - base_total),
        },
    }


def _comparison(engine: Engine, layer: Layer, base: VersionRef, target: VersionRef) -> tuple[int, dict[str, Any]]:
    """The stored comparison of the two versions, computed now if it is not stored yet."""
    find = text("SELECT id, summary FROM version_comparison WHERE base_version_id = :b AND target_version_id = :t")
    with engine.connect() as conn:
        row = conn.execute(find, {"b": base.id, "t": target.id}).one_or_none()
    if row is not None:
        return row.id, row.summary
    with engine.begin() as conn:
        # one computation per pair: a second request for the same pair waits here and then finds it stored
        conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended('version_comparison:' || :b || ':' || :t, 0))"),
            {"b": base.id, "t": target.id},
        )
        row = conn.execute(find, {"b": base.id, "t": target.id}).one_or_none()
        if row is not None:
            return row.id, row.summary
        comparison_id = conn.execute(
            text(
                "INSERT INTO version_comparison (base_version_id, target_version_id, key_field, summary)"
                " VALUES (:b, :t, :f, '{}') RETURNING id"
            ),
            {"b": base.id, "t": target.id, "f": layer.feature_id_field},
        ).scalar_one()
        rows = conn.execute(
            text(_COMPUTE),
            {"field": layer.feature_id_field, "base": base.id, "target": target.id, "comparison": comparison_id},
        ).all()
        summary = _summary(rows)
        conn.execute(
            text("UPDATE version_comparison SET summary = CAST(:s AS jsonb) WHERE id = :id"),
            {"s": orjson.dumps(summary).decode(), "id": comparison_id},
        )
    return comparison_id, summary


def _item(r: Any) -> dict[str, Any]:
    delta = (r.target_area_m2 or 0.0) - (r.base_area_m2 or 0.0)
    return {
        "kind": r.kind,
        "key": r.feature_key,
        "base_feature_id": r.base_feature_id,
        "target_feature_id": r.target_feature_id,
        "base_area": area_figures(r.base_area_m2) if r.base_area_m2 is not None else None,
        "target_area": area_figures(r.target_area_m2) if r.target_area_m2 is not None else None,
        "delta": area_figures(delta),
        "changed_fields": list(r.changed_fields),
        "geometry_changed": r.geometry_changed,
    }


def _resolve(
    engine: Engine, catalog: Catalog, code: str, base: int | None, target: int | None, kind: str | None
) -> tuple[Layer, VersionRef, VersionRef, int, dict[str, Any]]:
    """The layer, the two versions, and the id and summary of their (stored) comparison."""
    layer = catalog.layer(code)
    if kind is not None and kind not in KINDS:
        raise ComparisonError(f"unknown kind of change {kind!r} (use {', '.join(KINDS)})")
    with engine.connect() as conn:
        base_ref, target_ref = _versions(conn, layer, base, target)
    return (layer, base_ref, target_ref, *_comparison(engine, layer, base_ref, target_ref))


def compare_versions(
    engine: Engine,
    catalog: Catalog,
    code: str,
    *,
    base: int | None = None,
    target: int | None = None,
    kind: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    """The changes from version ``base`` to version ``target`` (version numbers; default: the current version and
    the one before it): a summary with counts and areas, and one page of the changed features, largest area change
    first (``kind`` keeps one of added / removed / changed)."""
    layer, base_ref, target_ref, comparison_id, summary = _resolve(engine, catalog, code, base, target, kind)
    limit = min(limit, MAX_PAGE)
    where = "comparison_id = :c" + (" AND kind = :k" if kind else "")
    with engine.connect() as conn:
        count = conn.execute(
            text(f"SELECT count(*) FROM version_change WHERE {where}"), {"c": comparison_id, "k": kind}
        ).scalar_one()
        rows = conn.execute(
            text(f"SELECT * FROM version_change WHERE {where} ORDER BY seq LIMIT :limit OFFSET :offset"),
            {"c": comparison_id, "k": kind, "limit": limit, "offset": offset},
        ).all()
    return {
        "layer": layer.code,
        "key_field": layer.feature_id_field,
        "area_model": "ellipsoidal",
        "base": asdict(base_ref),
        "target": asdict(target_ref),
        "summary": summary,
        "kind": kind,
        "total": count,
        "limit": limit,
        "offset": offset,
        "items": [_item(r) for r in rows],
    }


# a removed feature in its old geometry, the others in their new one
_GEOJSON = """
SELECT * FROM (
    SELECT c.*, ST_AsGeoJSON(f.geom, 8) AS geometry FROM version_change c
    JOIN feature f ON f.version_id = :t AND f.id = c.target_feature_id
    WHERE c.comparison_id = :c AND c.kind <> 'removed'
    UNION ALL
    SELECT c.*, ST_AsGeoJSON(f.geom, 8) AS geometry FROM version_change c
    JOIN feature f ON f.version_id = :b AND f.id = c.base_feature_id
    WHERE c.comparison_id = :c AND c.kind = 'removed'
) changed {kind_filter}
ORDER BY seq LIMIT :limit
"""


def changes_geojson(
    engine: Engine,
    catalog: Catalog,
    code: str,
    *,
    base: int | None = None,
    target: int | None = None,
    kind: str | None = None,
    limit: int = MAX_GEOJSON_FEATURES,
) -> dict[str, Any]:
    """The changed features as a GeoJSON FeatureCollection for the map (a removed feature in its old geometry,
    the others in their new one), largest area change first, at most ``MAX_GEOJSON_FEATURES``."""
    layer, base_ref, target_ref, comparison_id, _ = _resolve(engine, catalog, code, base, target, kind)
    sql = _GEOJSON.format(kind_filter="WHERE kind = :k" if kind else "")
    with engine.connect() as conn:
        rows = conn.execute(
            text(sql),
            {
                "c": comparison_id,
                "b": base_ref.id,
                "t": target_ref.id,
                "k": kind,
                "limit": min(limit, MAX_GEOJSON_FEATURES),
            },
        ).all()
    features = [
        {
            "type": "Feature",
            "geometry": orjson.loads(r.geometry),
            "properties": {
                "kind": r.kind,
                "key": r.feature_key,
                "base_area_m2": r.base_area_m2,
                "target_area_m2": r.target_area_m2,
                "delta_m2": (r.target_area_m2 or 0.0) - (r.base_area_m2 or 0.0),
                "changed_fields": list(r.changed_fields),
                "geometry_changed": r.geometry_changed,
            },
        }
        for r in rows
    ]
    return {
        "type": "FeatureCollection",
        "layer": layer.code,
        "base": asdict(base_ref),
        "target": asdict(target_ref),
        "features": features,
    }
