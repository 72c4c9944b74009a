"""Search box: townships by name or code, features by code, past checks by project number."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from gis_platform.accounts import CHECKS_READ, MAP_READ, Principal
from gis_platform.analysis.search import DEFAULT_LIMIT, MAX_LIMIT, MAX_QUERY_LENGTH, search

from ..deps import CatalogDep, EngineDep
from ..security import requires

router = APIRouter(tags=["search"])


@router.get("/api/v1/search", summary="搜索乡镇、图斑编号、审查项目编号 / search townships, codes, checks")
def search_map(
    engine: EngineDep,
    catalog: CatalogDep,
    principal: Annotated[Principal, requires(MAP_READ)],
    q: Annotated[str, Query(max_length=MAX_QUERY_LENGTH, description="name, code or project number (prefix)")],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> list[dict[str, Any]]:
    # past checks only for those who may read check records (a viewer sees places, not projects)
    return search(engine, catalog, q, limit=limit, include_checks=principal.can(CHECKS_READ))
