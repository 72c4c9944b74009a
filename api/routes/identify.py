"""Identify at a point."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from gis_platform.accounts import MAP_READ
from gis_platform.analysis.identify import identify

from ..deps import CatalogDep, EngineDep
from ..security import requires

router = APIRouter(tags=["identify"], dependencies=[requires(MAP_READ)])


@router.get("/api/v1/identify", summary="点查询：各图层在该点的属性 / what every layer says at a point")
def identify_point(
    engine: EngineDep,
    catalog: CatalogDep,
    lon: Annotated[float, Query(ge=-180, le=180, description="CGCS2000 longitude")],
    lat: Annotated[float, Query(ge=-90, le=90, description="CGCS2000 latitude")],
    layers: Annotated[
        str | None, Query(description="comma-separated layer codes (default: all)", max_length=500)
    ] = None,
) -> Any:
    codes = [c.strip() for c in layers.split(",") if c.strip()] if layers else None
    return identify(engine, catalog, lon, lat, layers=codes)
