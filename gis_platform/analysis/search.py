"""Search box of the one-map: townships, features by code, past checks by project number.

* **township** — the township layer (XZQ) by name (``XZQMC``, substring) or code (``XZQDM``, prefix);
* **feature** — every imported layer by its codes: the layer's ``feature_id_field`` and whichever of
  :data:`CODE_FIELDS` (BSM, TBBH, YJJBNTTBBH, DKBH …) the catalogue gives it (prefix);
* **check** — past compliance checks by project number (prefix) or project name (substring).

One statement per kind, on each layer's current version. The query text is only ever a bound
parameter: ``%``, ``_`` and ``\\`` are escaped for ``ILIKE … ESCAPE '\\'``, field names are bound too
(``properties ->> :field``). Exact matches come first, then shorter values. Every result has the bbox
of its geometry in lon/lat (EPSG:4490 ≈ 4326) so the map can zoom to it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from ..catalog import Catalog, Layer

__all__ = ["CODE_FIELDS", "DEFAULT_LIMIT", "MAX_LIMIT", "MAX_QUERY_LENGTH", "escape_like", "search"]

#: Code fields searched in every layer that has them (besides the layer's feature_id_field).
CODE_FIELDS: Final = ("BSM", "TBBH", "YJJBNTTBBH", "DKBH", "YHDBH")
DEFAULT_LIMIT: Final = 20
MAX_LIMIT: Final = 100
MAX_QUERY_LENGTH: Final = 100
KIND_ORDER: Final = {"township": 0, "check": 1, "feature": 2}
REPORTING_TIMEZONE: Final = ZoneInfo("Asia/Shanghai")

_BBOX = "ST_XMin({g}), ST_YMin({g}), ST_XMax({g}), ST_YMax({g})"

TOWNSHIP_SQL = f"""
SELECT f.id, f.properties ->> :code_field AS code, f.properties ->> :name_field AS name, {_BBOX.format(g="f.geom")},
       (f.properties ->> :name_field) = :q OR (f.properties ->> :code_field) = :q AS exact
FROM feature f
WHERE f.version_id = :version
  AND ((f.properties ->> :name_field) ILIKE :contains ESCAPE '\\'
       OR (f.properties ->> :code_field) ILIKE :prefix ESCAPE '\\')
ORDER BY exact DESC, length(f.properties ->> :name_field), f.properties ->> :code_field
LIMIT :limit
"""

FEATURE_SQL = """
SELECT f.id, f.properties ->> :name_field AS name, {bbox}, {values}
FROM feature f
WHERE f.version_id = :version AND ({conditions})
ORDER BY {exact} DESC, f.id
LIMIT :limit
"""


def _feature_sql(n_fields: int) -> str:
    """The feature search over ``n_fields`` code fields, each a bound field name ``:f0 … :fN``."""
    values = ", ".join(f"f.properties ->> :f{i} AS v{i}" for i in range(n_fields))
    conditions = " OR ".join(f"(f.properties ->> :f{i}) ILIKE :prefix ESCAPE '\\'" for i in range(n_fields))
    exact = " OR ".join(f"(f.properties ->> :f{i}) = :q" for i in range(n_fields))
    return FEATURE_SQL.format(bbox=_BBOX.format(g="f.geom"), values=values, conditions=conditions, exact=f"({exact})")


CHECK_SQL = f"""
SELECT c.id, c.project_number, c.project_name, c.verdict, c.created_at, {_BBOX.format(g="c.geom")},
       c.project_number = :q AS exact
FROM check_record c
WHERE c.project_number ILIKE :prefix ESCAPE '\\' OR c.project_name ILIKE :contains ESCAPE '\\'
ORDER BY exact DESC, c.created_at DESC
LIMIT :limit
"""


def escape_like(value: str) -> str:
    """``value`` with the ``LIKE`` wildcards ``%`` and ``_`` and the escape character ``\\`` escaped."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _bbox(row: Any, start: int) -> list[float] | None:
    values = [row[start + i] for i in range(4)]
    return None if any(v is None for v in values) else [float(v) for v in values]


def _code_fields(layer: Layer) -> list[str]:
    names = {f.name for f in layer.fields}
    wanted = [layer.feature_id_field, *(c for c in CODE_FIELDS if c in names)]
    return list(dict.fromkeys(wanted))


def _local_date(value: dt.datetime) -> str:
    return value.astimezone(REPORTING_TIMEZONE).date().isoformat()


def _label(*parts: Any) -> str:
    return " · ".join(str(p) for p in parts if p not in (None, ""))


Found = list[tuple[bool, int, int, dict[str, Any]]]  # (exact, kind order, rank within its query, result)


def _townships(conn: Connection, layer: Layer, params: dict[str, Any]) -> Found:
    params = {**params, "code_field": layer.feature_id_field, "name_field": layer.name_field or layer.feature_id_field}
    found: Found = []
    for rank, r in enumerate(conn.execute(text(TOWNSHIP_SQL), params)):
        result = {"kind": "township", "label": _label(r.name, r.code), "layer": layer.code, "id": int(r.id)}
        found.append((bool(r.exact), KIND_ORDER["township"], rank, {**result, "bbox": _bbox(r, 3)}))
    return found


def _features(conn: Connection, layer: Layer, params: dict[str, Any]) -> Found:
    fields = _code_fields(layer)
    params = {**params, "name_field": layer.name_field or "", **{f"f{i}": name for i, name in enumerate(fields)}}
    labels = {f.name: f.label_zh for f in layer.fields}
    q = params["q"].casefold()
    found: Found = []
    for rank, r in enumerate(conn.execute(text(_feature_sql(len(fields))), params)):
        values = [r[6 + i] for i in range(len(fields))]
        matches = [(v.casefold() != q, i) for i, v in enumerate(values) if v is not None and v.casefold().startswith(q)]
        i = min(matches)[1] if matches else 0
        exact = bool(matches) and not min(matches)[0]
        label = _label(layer.name_zh, f"{labels.get(fields[i], fields[i])} {values[i]}", r.name)
        result = {"kind": "feature", "label": label, "layer": layer.code, "id": int(r.id), "bbox": _bbox(r, 2)}
        found.append((exact, KIND_ORDER["feature"], rank, result))
    return found


def search(
    engine: Engine, catalog: Catalog, q: str, *, limit: int = DEFAULT_LIMIT, include_checks: bool = True
) -> list[dict[str, Any]]:
    """Townships, features and checks matching ``q``, best first, at most ``limit`` (1 … :data:`MAX_LIMIT`).

    ``include_checks=False`` leaves past checks out (for callers who may not read check records).

    Returns
    -------
    list of dict
        ``{"kind": "township" | "feature" | "check", "label": str, "layer": code or None,
        "id": feature db id (int) or check id (str), "bbox": [minlon, minlat, maxlon, maxlat] or None}``.
        Control characters (NUL …) are dropped; an empty or blank ``q`` gives ``[]``; a ``q`` longer than
        :data:`MAX_QUERY_LENGTH` is cut.
    """
    q = "".join(ch for ch in (q or "") if ch.isprintable()).strip()[:MAX_QUERY_LENGTH]  # no NUL / controls
    limit = max(1, min(int(limit), MAX_LIMIT))
    if not q:
        return []
    escaped = escape_like(q)
    base = {"q": q, "prefix": escaped + "%", "contains": "%" + escaped + "%", "limit": limit}
    found: Found = []
    with engine.connect() as conn:
        versions: dict[str, int] = dict(
            conn.execute(text("SELECT code, current_version_id FROM layer WHERE current_version_id IS NOT NULL")).all()
        )
        for layer in catalog.layers:
            if layer.code not in versions:
                continue
            if layer.role == "township_boundary":
                found += _townships(conn, layer, {**base, "version": versions[layer.code]})
            else:
                found += _features(conn, layer, {**base, "version": versions[layer.code]})
        for rank, r in enumerate(conn.execute(text(CHECK_SQL), base) if include_checks else ()):
            label = _label("审查", r.project_number, r.project_name, r.verdict, _local_date(r.created_at))
            result = {"kind": "check", "label": label, "layer": None, "id": str(r.id), "bbox": _bbox(r, 5)}
            found.append((bool(r.exact), KIND_ORDER["check"], rank, result))
    found.sort(key=lambda item: (not item[0], item[1], item[2]))
    return [item[3] for item in found[:limit]]
