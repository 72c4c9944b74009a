"""Service health: the API, the database and PostGIS."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

import gis_platform
from gis_platform.db import postgis_version

from ..deps import EngineDep

router = APIRouter(tags=["health"])


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
