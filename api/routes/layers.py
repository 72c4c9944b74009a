"""The layer catalogue with each layer's current version, and a layer's version history."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from gis_platform.accounts import MAP_READ

from ..deps import CatalogDep, EngineDep
from ..security import requires

router = APIRouter(prefix="/api/v1/layers", tags=["layers"], dependencies=[requires(MAP_READ)])

_VERSION_COLUMNS = (
    "v.id, v.version_no, v.status, v.source_name, v.source_format, v.source_checksum, v.source_crs,"
    " v.imported_by, v.imported_at, v.feature_count, v.area_total_m2,"
    " ST_XMin(v.extent) AS xmin, ST_YMin(v.extent) AS ymin, ST_XMax(v.extent) AS xmax, ST_YMax(v.extent) AS ymax"
)


def _version(row: Any) -> dict[str, Any]:
    data = dict(row)
    bbox = [data.pop(k) for k in ("xmin", "ymin", "xmax", "ymax")]
    data["extent"] = bbox if bbox[0] is not None else None
    data["imported_at"] = data["imported_at"].isoformat()
    return data


@router.get("", summary="图层目录及当前版本 / catalogue layers with their current versions")
def list_layers(engine: EngineDep, catalog: CatalogDep) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        current = {
            r["code"]: _version({k: v for k, v in r.items() if k != "code"})
            for r in conn.execute(
                text(
                    f"SELECT l.code, {_VERSION_COLUMNS} FROM layer l"
                    " JOIN layer_version v ON v.id = l.current_version_id"
                )
            ).mappings()
        }
    return [{**layer.model_dump(mode="json"), "current_version": current.get(layer.code)} for layer in catalog.layers]


@router.get("/{code}/versions", summary="图层版本历史 / a layer's version history")
def layer_versions(code: str, engine: EngineDep, catalog: CatalogDep) -> list[dict[str, Any]]:
    layer = catalog.layer(code)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                f"SELECT {_VERSION_COLUMNS} FROM layer_version v JOIN layer l ON l.id = v.layer_id"
                " WHERE l.code = :c ORDER BY v.version_no DESC"
            ),
            {"c": layer.code},
        ).mappings()
        return [_version(r) for r in rows]


land_use_router = APIRouter(prefix="/api/v1", tags=["layers"], dependencies=[requires(MAP_READ)])


@land_use_router.get("/land-uses", summary="用地用海分类 / the land-use classification with its flags")
def land_uses(catalog: CatalogDep) -> list[dict[str, Any]]:
    return [use.model_dump(mode="json") for use in catalog.land_uses]
