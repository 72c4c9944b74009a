"""Identify: what every layer's current version says at one point."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import Engine, text

from ..catalog import Catalog
from ..errors import ParcelError

IDENTIFY_SQL = """
SELECT l.code, v.id AS version_id, v.version_no, f.id, f.properties, f.area_m2
FROM layer l
JOIN layer_version v ON v.id = l.current_version_id
JOIN LATERAL (
    SELECT f.id, f.properties, f.area_m2 FROM feature f
    WHERE f.version_id = v.id
      AND (CASE WHEN l.geometry_type = 'point'
                THEN ST_DWithin(f.geom::geography, ST_SetSRID(ST_MakePoint(:lon, :lat), 4490)::geography, :tol)
                ELSE ST_Intersects(f.geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4490)) END)
    ORDER BY f.id LIMIT 20
) f ON TRUE
WHERE (:codes)::text[] IS NULL OR l.code = ANY(:codes)
ORDER BY l.code, f.id
"""


def identify(
    engine: Engine,
    catalog: Catalog,
    lon: float,
    lat: float,
    *,
    layers: list[str] | None = None,
    point_tolerance_m: float = 30,
) -> dict[str, Any]:
    if not (math.isfinite(lon) and math.isfinite(lat)) or not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise ParcelError(f"({lon}, {lat}) is not a longitude/latitude in EPSG:4490")
    codes = [catalog.layer(c).code for c in layers] if layers else None
    with engine.connect() as conn:
        rows = conn.execute(
            text(IDENTIFY_SQL), {"lon": lon, "lat": lat, "tol": point_tolerance_m, "codes": codes}
        ).all()
    by_layer: dict[str, dict[str, Any]] = {}
    for code, version_id, version_no, feature_id, properties, area_m2 in rows:
        if not catalog.has_layer(code):
            continue
        layer = catalog.layer(code)
        entry = by_layer.setdefault(
            code,
            {
                "code": code,
                "name_zh": layer.name_zh,
                "name_en": layer.name_en,
                "group": layer.group,
                "version": {"id": version_id, "version_no": version_no},
                "features": [],
            },
        )
        fields = [
            {"name": f.name, "label_zh": f.label_zh, "label_en": f.label_en, "value": properties.get(f.name)}
            for f in layer.fields
            if f.key and f.name in properties
        ]
        entry["features"].append({"db_id": feature_id, "fields": fields, "properties": properties, "area_m2": area_m2})
    ordered = [by_layer[layer.code] for layer in catalog.layers if layer.code in by_layer]
    return {"lon": lon, "lat": lat, "layers": ordered}
