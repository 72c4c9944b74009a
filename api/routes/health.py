"""Service health: liveness, readiness (database, PostGIS, migrations) and the overall status."""

from __future__ import annotations

import threading
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

import gis_platform
from gis_platform import migrate
from gis_platform.db import is_database_unavailable, postgis_version
from gis_platform.settings import Settings

from ..deps import CatalogDep, EngineDep, SettingsDep
from ..security import public

router = APIRouter(tags=["health"], dependencies=[public("monitoring: service status, no planning data")])

_head_lock = threading.Lock()
_head: list[str | None] = []  # the migrations' head revision, read once per process


def migrations_head(settings: Settings) -> str | None:
    """The Alembic head revision of the migrations this code ships (read from the scripts once)."""
    with _head_lock:
        if not _head:
            _head.append(migrate.head_revision(settings))
        return _head[0]


@router.get("/api/v1/health", summary="服务、数据库与 PostGIS 状态 / service, database and PostGIS status")
def health(engine: EngineDep) -> dict[str, Any]:
    with engine.connect() as conn:
        server = conn.execute(text("SHOW server_version")).scalar()
        postgis = postgis_version(conn)
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return {
        "status": "ok",
        "service": "gis-platform",
        "version": gis_platform.__version__,
        "database": {"server_version": server, "postgis": postgis, "migration": revision},
    }


@router.get("/api/v1/health/live", summary="存活检查 (不访问数据库) / liveness: the process answers")
async def live() -> dict[str, Any]:
    return {"status": "ok", "service": "gis-platform", "version": gis_platform.__version__}


@router.get(
    "/api/v1/health/ready",
    summary="就绪检查: 数据库、PostGIS、迁移、测量平面 / readiness: database, PostGIS, migrations at head, layers in"
    " the survey plane",
    responses={503: {"description": "not ready: the body names the failed check"}},
)
def ready(engine: EngineDep, settings: SettingsDep, catalog: CatalogDep) -> JSONResponse:
    head = migrations_head(settings)
    not_checked = "not checked: the database cannot be reached"
    checks: dict[str, dict[str, Any]] = {
        "database": {"ok": False},
        "postgis": {"ok": None, "message": not_checked},
        "migrations": {"ok": None, "head": head, "message": not_checked},
        "survey_plane": {"ok": None, "epsg": catalog.survey_plane.epsg, "message": not_checked},
    }
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            checks["database"] = {"ok": True}
            version = postgis_version(conn)
            checks["postgis"] = {"ok": version is not None, "version": version}
            if version is None:
                checks["postgis"]["message"] = "the postgis extension is not installed in this database"
            exists = conn.execute(text("SELECT to_regclass('alembic_version') IS NOT NULL")).scalar()
            current = sorted(conn.execute(text("SELECT version_num FROM alembic_version")).scalars()) if exists else []
            checks["migrations"] = {"ok": current == [head], "current": current[0] if len(current) == 1 else current}
            checks["migrations"]["head"] = head
            if current != [head]:
                at = current or "no revision"
                checks["migrations"]["message"] = (
                    f"the database is at {at}, the code expects {head}: gis-platform db upgrade"
                )
            else:
                checks["survey_plane"] = _plane_check(conn, catalog.survey_plane.epsg)
    except Exception as exc:
        if not is_database_unavailable(exc):
            raise
        failed_check = next(name for name, check in checks.items() if not check["ok"])
        checks[failed_check] = {**checks[failed_check], "ok": False, "message": _outage_message(exc)}
    failed = [name for name, check in checks.items() if check["ok"] is False]
    if all(check["ok"] for check in checks.values()):
        return JSONResponse({"status": "ready", "checks": checks})
    return JSONResponse(
        {
            "status": "not_ready",
            "error": "not_ready",
            "message": "未就绪 / not ready: " + ", ".join(failed),
            "failed": failed,
            "checks": checks,
        },
        status_code=503,
    )


def _outage_message(exc: Exception) -> str:
    orig = getattr(exc, "orig", None) or exc
    first_line = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    return f"the database cannot be reached: {first_line[:300]}"


def _plane_check(conn: Any, epsg: int) -> dict[str, Any]:
    """Whether every stored layer version is in the catalogue's survey plane (overlays read it there)."""
    stale = conn.execute(
        text("SELECT count(*) FROM layer_version WHERE plane_srid IS DISTINCT FROM :s"), {"s": epsg}
    ).scalar_one()
    check: dict[str, Any] = {"ok": stale == 0, "epsg": epsg}
    if stale:
        check["message"] = f"{stale} layer version(s) are not in the survey plane EPSG:{epsg}: gis-platform db upgrade"
    return check
