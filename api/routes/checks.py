"""Parcel compliance checks over HTTP: submit (JSON or file), fetch, list."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from gis_platform.accounts import CHECKS_READ, CHECKS_RUN, Principal
from gis_platform.analysis.parcel import parcels_from_geojson
from gis_platform.analysis.upload import parcels_from_file
from gis_platform.checks import DOCUMENT_JSON_OPTIONS, CheckFilter, CheckRequest, get_check, list_checks, run_check
from gis_platform.errors import ParcelError

from ..deps import CatalogDep, EngineDep, RulesDep, SettingsDep
from ..metrics import record_check_verdict
from ..schemas import MAX_OFFSET, CheckBody, UtcDateTime
from ..security import request_actor, requires
from ..uploads import save_upload

router = APIRouter(prefix="/api/v1/checks", tags=["checks"])
# The core returns plain JSON documents: a JSONResponse skips FastAPI's recursive jsonable_encoder, which cost
# about 4 ms per check document (a third of a check's time), and DocumentResponse renders with orjson.


class DocumentResponse(JSONResponse):
    """JSON rendered with orjson: 0.02 ms instead of 0.3 ms for a 16 KB check document (UTF-8 as before)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=DOCUMENT_JSON_OPTIONS)


@router.post("", status_code=201, summary="检查一个地块 / check a parcel against the red lines")
def create_check(
    body: CheckBody,
    request: Request,
    engine: EngineDep,
    catalog: CatalogDep,
    rules: RulesDep,
    settings: SettingsDep,
    principal: Annotated[Principal, requires(CHECKS_RUN)],
) -> Any:
    parcels = parcels_from_geojson(body.geometry, body.crs, max_vertices=settings.max_parcel_vertices, max_parcels=1)
    check = CheckRequest(
        parcel=parcels[0],
        layers=tuple(body.layers) if body.layers else None,
        land_use_code=body.land_use,
        buffer_m=body.buffer_m,
        area_model=body.area_model,
        project_name=body.project_name,
        project_number=body.project_number,
        source="api",
        created_by=principal.name,
        actor=request_actor(request, principal),
    )
    document = run_check(engine, catalog, rules, settings, check)
    record_check_verdict(document["verdict"])
    return DocumentResponse(document, status_code=201)


@router.post("/upload", status_code=201, summary="上传地块文件检查 / check the parcels of an uploaded file")
async def upload_check(
    request: Request,
    principal: Annotated[Principal, requires(CHECKS_RUN)],
    engine: EngineDep,
    catalog: CatalogDep,
    rules: RulesDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="zipped Shapefile, GeoJSON, GeoPackage or boundary TXT")],
    land_use: Annotated[str | None, Form()] = None,
    crs: Annotated[str | None, Form(description="CRS when the file has none")] = None,
    project_name: Annotated[str | None, Form()] = None,
    project_number: Annotated[str | None, Form()] = None,
    buffer_m: Annotated[float, Form(ge=0, le=5000)] = 0.0,
) -> Any:
    name = Path(file.filename or "upload").name
    with tempfile.TemporaryDirectory(prefix="gis-upload-") as tmp:
        path = await save_upload(file, Path(tmp), settings.max_upload_bytes)
        actor = request_actor(request, principal)

        def work() -> list[dict[str, Any]]:
            parcels = parcels_from_file(path, settings, crs=crs)
            return [
                run_check(
                    engine,
                    catalog,
                    rules,
                    settings,
                    CheckRequest(
                        parcel=p,
                        land_use_code=land_use,
                        buffer_m=buffer_m,
                        project_name=project_name,
                        project_number=project_number,
                        source=f"upload:{name}",
                        created_by=principal.name,
                        actor=actor,
                    ),
                )
                for p in parcels
            ]

        checks = await run_in_threadpool(work)
    for document in checks:
        record_check_verdict(document["verdict"])
    return DocumentResponse({"file": name, "count": len(checks), "checks": checks}, status_code=201)


@router.get(
    "/{check_id}",
    summary="取回检查结果 (与首次计算完全一致) / a stored check, exactly as first computed",
    dependencies=[requires(CHECKS_READ)],
)
def read_check(check_id: str, engine: EngineDep) -> Any:
    return DocumentResponse(get_check(engine, check_id))


@router.get("", summary="检查记录列表 / list past checks", dependencies=[requires(CHECKS_READ)])
def search_checks(
    engine: EngineDep,
    date_from: UtcDateTime | None = None,
    date_to: UtcDateTime | None = None,
    verdict: Literal["禁止", "需补充用途", "有条件", "通过"] | None = None,
    project_number: Annotated[str | None, Query(max_length=200)] = None,
    bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat", pattern=r"^[-0-9.,eE ]+$")] = None,
    job_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Any:
    box = None
    if bbox:
        try:
            values = tuple(float(v) for v in bbox.split(","))
        except ValueError as exc:
            raise ParcelError(f"bbox {bbox!r} must be four numbers minlon,minlat,maxlon,maxlat") from exc
        if len(values) != 4:
            raise ParcelError(f"bbox {bbox!r} must be four numbers minlon,minlat,maxlon,maxlat")
        box = (values[0], values[1], values[2], values[3])
    filters = CheckFilter(date_from, date_to, verdict, project_number, box, job_id, limit, offset)
    return DocumentResponse(list_checks(engine, filters))
