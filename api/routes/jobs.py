"""Background jobs over HTTP: batch checks, conflict analyses, job status and result downloads."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.background import BackgroundTask
from starlette.datastructures import UploadFile

from gis_platform.accounts import BATCH_RUN, CHECKS_READ, CONFLICTS_RUN, Principal
from gis_platform.analysis.batch import BatchOptions, queue_batch_file, read_batch_file, submit_batch_geojson
from gis_platform.analysis.batch_results import export_batch
from gis_platform.analysis.conflicts import (
    MAX_GEOJSON_FEATURES,
    conflict_features_geojson,
    export_conflicts_gpkg,
    submit_conflicts,
)
from gis_platform.audit import AuditEntry, record_now
from gis_platform.errors import ParcelError
from gis_platform.jobs import get_job, list_jobs
from gis_platform.sandbox import Limits, without_secrets

from ..deps import CatalogDep, EngineDep, RulesDep, SandboxDep, SettingsDep
from ..schemas import EXAMPLE_PARCEL, MAX_OFFSET
from ..security import request_actor, requires
from ..uploads import read_in_sandbox, save_upload

router = APIRouter(tags=["jobs"])

MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "gpkg": "application/geopackage+sqlite3",
}
FORM_FIELDS = (
    "land_use",
    "land_use_field",
    "land_use_classification",
    "label_field",
    "crs",
    "area_model",
    "project_name",
    "project_number",
)


class BatchBody(BaseModel):
    """Many parcels to check as one background job."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "parcels": {
                        "type": "FeatureCollection",
                        "features": [{"type": "Feature", "properties": {"DKBH": "A-01"}, "geometry": EXAMPLE_PARCEL}],
                    },
                    "land_use": "0701",
                }
            ]
        },
    )

    parcels: dict[str, Any] = Field(description="GeoJSON FeatureCollection, one Feature per parcel")
    crs: str = Field(default="EPSG:4490", description="CRS of the coordinates: EPSG:4490 or a CGCS2000 GK code")
    land_use: str | None = Field(default=None, max_length=12, description="default proposed 用地用海 code")
    land_use_field: str | None = Field(
        default=None,
        description="property with each parcel's own use: a name, auto (default: the usual names of"
        " layers/parcel_fields.yaml) or none (every parcel gets land_use)",
    )
    land_use_classification: Literal["land_use", "land_survey"] | None = Field(
        default=None, description="read the use property as 用地用海 (land_use) or 三调 (land_survey) codes or names"
    )
    label_field: str | None = Field(
        default=None, description="property with each parcel's name: a name, auto (default: DKMC, name, DKBH) or none"
    )
    layers: list[str] | None = Field(default=None, description="layer codes to check (default: all check layers)")
    buffer_m: float = Field(default=0.0, ge=0, le=5000)
    area_model: Literal["ellipsoidal", "planar"] = "ellipsoidal"
    project_name: str | None = Field(default=None, max_length=500)
    project_number: str | None = Field(default=None, max_length=200)


class ConflictsBody(BaseModel):
    """A conflict analysis: one plan layer against the red lines."""

    model_config = ConfigDict(extra="forbid")

    plan_layer: str | None = Field(default=None, description="plan layer code (default: the township plan)")
    red_line_layers: list[str] | None = Field(default=None, description="red-line layer codes (default: all)")


_FORM_SCHEMA = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "Shapefile (zip), GeoJSON, GeoPackage, TXT, DXF"},
        "layers": {"type": "string", "description": "comma-separated layer codes"},
        "buffer_m": {"type": "number"},
        **{name: {"type": "string"} for name in FORM_FIELDS},
    },
}
_BATCH_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": BatchBody.model_json_schema()},
            "multipart/form-data": {"schema": _FORM_SCHEMA},
        },
    }
}


def _links(job: dict[str, Any]) -> dict[str, Any]:
    base = f"/api/v1/jobs/{job['id']}"
    if job["kind"] == "batch_check":
        results = {fmt: f"{base}/results.{fmt}" for fmt in MEDIA_TYPES}
        return {"self": base, "results": results, "checks": f"/api/v1/checks?job_id={job['id']}"}
    summary = f"/api/v1/conflicts/{job['id']}"
    return {
        "self": base,
        "summary": summary,
        "geojson": f"{summary}/features.geojson",
        "gpkg": f"{summary}/features.gpkg",
    }


def _document(job: dict[str, Any]) -> dict[str, Any]:
    return {**job, "links": _links(job)}


def _accepted(job: dict[str, Any]) -> JSONResponse:
    return JSONResponse(_document(job), status_code=202, headers={"Location": f"/api/v1/jobs/{job['id']}"})


async def _audited(request: Request, principal: Principal, action: str, job: dict[str, Any]) -> JSONResponse:
    entry = AuditEntry(
        request_actor(request, principal), action, f"job:{job['id']}", details={"parcels": job["progress"]["total"]}
    )
    await run_in_threadpool(record_now, request.app.state.engine, entry)
    return _accepted(job)


def _download(path: Path, fmt: str, tmp: str) -> FileResponse:
    return FileResponse(
        path, media_type=MEDIA_TYPES[fmt], filename=path.name, background=BackgroundTask(shutil.rmtree, tmp, True)
    )


def _form_options(form: Any) -> tuple[BatchOptions, str | None]:
    def field(name: str) -> str | None:
        value = form.get(name)
        return str(value).strip() or None if value is not None else None

    try:
        buffer_m = float(field("buffer_m") or 0)
    except ValueError as exc:
        raise ParcelError(f"buffer_m {field('buffer_m')!r} is not a number of metres") from exc
    layers = tuple(code.strip() for code in (field("layers") or "").split(",") if code.strip()) or None
    options = BatchOptions.from_params(
        {**{name: field(name) for name in FORM_FIELDS}, "layers": layers, "buffer_m": buffer_m}
    )
    return options, field("crs")


@router.post(
    "/api/v1/checks/batch",
    status_code=202,
    openapi_extra=_BATCH_OPENAPI,
    summary="批量检查 (后台任务) / check many parcels as a background job (JSON or file upload)",
)
async def submit_batch(
    request: Request,
    engine: EngineDep,
    catalog: CatalogDep,
    settings: SettingsDep,
    principal: Annotated[Principal, requires(BATCH_RUN)],
    pool: SandboxDep,
) -> JSONResponse:
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ParcelError("the multipart form needs a 'file' field with the parcels")
        options, crs = _form_options(form)
        options = replace(options, created_by=principal.name).validated(catalog)  # a bad option before the read
        with pool.workspace() as workspace:
            path = await save_upload(upload, workspace, settings.max_upload_bytes)
            batch_file = await read_in_sandbox(
                pool,
                read_batch_file,
                path,
                without_secrets(settings),
                crs=crs,
                limits=Limits.for_uploads(settings),
                workspace=workspace,
                name=path.name,
            )
        job = await run_in_threadpool(queue_batch_file, engine, catalog, batch_file, options=options)
        return await _audited(request, principal, "batch.submit", job)
    try:
        body = BatchBody.model_validate_json(await request.body())
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from exc
    options = replace(BatchOptions.from_params(body.model_dump(exclude={"parcels", "crs"})), created_by=principal.name)
    job = await run_in_threadpool(submit_batch_geojson, engine, catalog, body.parcels, crs=body.crs, options=options)
    return await _audited(request, principal, "batch.submit", job)


@router.get(
    "/api/v1/jobs",
    summary="任务列表 (最新在前) / background jobs, newest first, by kind, status or submitter",
)
def read_jobs(
    engine: EngineDep,
    principal: Annotated[Principal, requires(CHECKS_READ)],
    kind: Annotated[Literal["batch_check", "conflicts"] | None, Query(description="job kind")] = None,
    status: Annotated[
        Literal["queued", "running", "succeeded", "failed"] | None, Query(description="job status")
    ] = None,
    mine: Annotated[bool, Query(description="only the jobs the caller submitted")] = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict[str, Any]:
    page = list_jobs(
        engine, kind=kind, status=status, created_by=principal.name if mine else None, limit=limit, offset=offset
    )
    return {**page, "items": [_document(job) for job in page["items"]]}


@router.get(
    "/api/v1/jobs/{job_id}",
    summary="任务状态与进度 / a job's status, progress and summary",
    dependencies=[requires(CHECKS_READ)],
)
def read_job(job_id: str, engine: EngineDep) -> dict[str, Any]:
    return _document(get_job(engine, job_id))


@router.get(
    "/api/v1/jobs/{job_id}/results.{fmt}",
    summary="批量检查结果 / batch results as CSV, XLSX or GeoPackage",
    dependencies=[requires(CHECKS_READ)],
)
def batch_results(
    job_id: str, fmt: Literal["csv", "xlsx", "gpkg"], engine: EngineDep, catalog: CatalogDep
) -> FileResponse:
    tmp = tempfile.mkdtemp(prefix="gis-results-")
    try:
        return _download(export_batch(engine, catalog, job_id, fmt, Path(tmp)), fmt, tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@router.post("/api/v1/conflicts", status_code=202, summary="规划与红线冲突分析 / plan vs red lines, as a job")
async def submit_conflict_analysis(
    request: Request,
    engine: EngineDep,
    catalog: CatalogDep,
    rules: RulesDep,
    principal: Annotated[Principal, requires(CONFLICTS_RUN)],
    body: ConflictsBody | None = None,
) -> JSONResponse:
    body = body or ConflictsBody()
    job = await run_in_threadpool(
        lambda: submit_conflicts(
            engine,
            catalog,
            rules,
            plan_layer=body.plan_layer,
            red_line_layers=body.red_line_layers,
            created_by=principal.name,
        )
    )
    return await _audited(request, principal, "conflicts.submit", job)


@router.get(
    "/api/v1/conflicts/{job_id}",
    summary="冲突分析汇总 / conflict summary by township and rule",
    dependencies=[requires(CHECKS_READ)],
)
def read_conflicts(job_id: str, engine: EngineDep) -> dict[str, Any]:
    return _document(get_job(engine, job_id, kind="conflicts"))


@router.get(
    "/api/v1/conflicts/{job_id}/features.geojson",
    summary="冲突图斑 (GeoJSON 图层) / conflict polygons",
    dependencies=[requires(CHECKS_READ)],
)
def conflict_features(
    job_id: str,
    engine: EngineDep,
    bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat", pattern=r"^[-0-9.,eE ]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_GEOJSON_FEATURES)] = MAX_GEOJSON_FEATURES,
) -> JSONResponse:
    box = None
    if bbox:
        try:
            values = [float(v) for v in bbox.split(",")]
        except ValueError:
            values = []
        if len(values) != 4:
            raise ParcelError(f"bbox {bbox!r} must be four numbers minlon,minlat,maxlon,maxlat")
        box = (values[0], values[1], values[2], values[3])
    collection = conflict_features_geojson(engine, job_id, bbox=box, limit=limit)
    return JSONResponse(collection, media_type="application/geo+json")


@router.get(
    "/api/v1/conflicts/{job_id}/features.gpkg",
    summary="冲突图斑下载 / conflict polygons as a GeoPackage",
    dependencies=[requires(CHECKS_READ)],
)
def conflict_features_gpkg(job_id: str, engine: EngineDep) -> FileResponse:
    tmp = tempfile.mkdtemp(prefix="gis-results-")
    try:
        return _download(export_conflicts_gpkg(engine, job_id, Path(tmp)), "gpkg", tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
