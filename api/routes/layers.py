"""The layer catalogue with current versions, a layer's version history, and what changed between two versions."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from sqlalchemy import text

from gis_platform.accounts import LAYERS_ADMIN, MAP_READ, Principal
from gis_platform.analysis.changes import MAX_PAGE, changes_geojson, compare_versions
from gis_platform.sandbox import Limits
from gis_platform.sandbox_jobs import import_layer_file

from ..deps import CatalogDep, EngineDep, SandboxDep, SettingsDep
from ..security import request_actor, requires
from ..uploads import read_in_sandbox, save_upload

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


VersionNo = Annotated[int | None, Query(ge=1, le=2**31 - 1, description="version number (default: see summary)")]
ChangeKind = Annotated[Literal["added", "removed", "changed"] | None, Query(description="only this kind of change")]


@router.get(
    "/{code}/changes",
    summary="版本变更比对 / what changed between two versions (default: the current one and the one before it)",
)
def layer_changes(
    code: str,
    engine: EngineDep,
    catalog: CatalogDep,
    base: VersionNo = None,
    target: VersionNo = None,
    kind: ChangeKind = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> Any:
    """Added, removed and changed features matched by the layer's identifier field, with counts and areas
    (m², 公顷, 亩); the changed features largest area change first. Computed once per pair of versions."""
    return compare_versions(engine, catalog, code, base=base, target=target, kind=kind, limit=limit, offset=offset)


@router.get("/{code}/changes.geojson", summary="变更图斑 GeoJSON / the changed features for the map")
def layer_changes_geojson(
    code: str,
    engine: EngineDep,
    catalog: CatalogDep,
    base: VersionNo = None,
    target: VersionNo = None,
    kind: ChangeKind = None,
) -> Any:
    return changes_geojson(engine, catalog, code, base=base, target=target, kind=kind)


admin_router = APIRouter(prefix="/api/v1/layers", tags=["layers"])


@admin_router.post(
    "/{code}/versions",
    status_code=201,
    summary="导入图层新版本（管理员）/ import a file as a new version of a layer (admin)",
)
async def import_layer_version(
    code: str,
    request: Request,
    catalog: CatalogDep,
    settings: SettingsDep,
    principal: Annotated[Principal, requires(LAYERS_ADMIN)],
    pool: SandboxDep,
    file: Annotated[UploadFile, File(description="zipped Shapefile, GeoJSON, GeoPackage, boundary TXT or DXF")],
    crs: Annotated[str | None, Form(description="CRS when the file has none, e.g. EPSG:4547")] = None,
    source_layer: Annotated[str | None, Form(description="layer inside a multi-layer GeoPackage")] = None,
) -> Any:
    """All or nothing, like ``gis-platform import``: on any error the current version stays current. The file is
    read, prepared and written by a sandbox worker (its own connection, one transaction) within the import limits
    (``GIS_SANDBOX_IMPORT_*``): a worker stopped at a limit rolls the transaction back."""
    layer = catalog.layer(code)  # an unknown code is a 404 before the upload is read
    actor = request_actor(request, principal)
    with pool.workspace() as workspace:
        path = await save_upload(file, workspace, settings.max_upload_bytes)
        report = await read_in_sandbox(
            pool,
            import_layer_file,
            settings,
            catalog.fingerprint,
            path,
            layer.code,
            crs=crs,
            source_layer=source_layer,
            imported_by=principal.name,
            actor=actor,
            limits=Limits.for_imports(settings),
            workspace=workspace,
            name=path.name,
        )
    return report.to_dict()  # tiles show the new version within GIS_TILE_VERSION_TTL_S


land_use_router = APIRouter(prefix="/api/v1", tags=["layers"], dependencies=[requires(MAP_READ)])


@land_use_router.get("/land-uses", summary="用地用海分类 / the land-use classification with its flags")
def land_uses(catalog: CatalogDep) -> list[dict[str, Any]]:
    return [use.model_dump(mode="json") for use in catalog.land_uses]
