"""Leadership dashboard: indicators by township (townships sum to the county total)."""

from __future__ import annotations

import threading
from typing import Any

from fastapi import APIRouter, Request

from gis_platform.accounts import DASHBOARD_READ
from gis_platform.analysis.dashboard import DashboardService

from ..deps import CatalogDep, EngineDep, SettingsDep
from ..security import requires

router = APIRouter(tags=["dashboard"], dependencies=[requires(DASHBOARD_READ)])
_lock = threading.Lock()


@router.get("/api/v1/dashboard", summary="领导驾驶舱指标（按乡镇）/ leadership indicators by township")
def dashboard(request: Request, engine: EngineDep, catalog: CatalogDep, settings: SettingsDep) -> dict[str, Any]:
    with _lock:  # one service (and cache) per application, made on first use
        service = getattr(request.app.state, "dashboard_service", None)
        if service is None:
            service = request.app.state.dashboard_service = DashboardService(engine, catalog, settings)
    return service.dashboard()
