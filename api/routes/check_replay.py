"""Replaying and rechecking a stored check over HTTP (thin: the work is in ``gis_platform.replay``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from gis_platform.accounts import CHECKS_READ, CHECKS_RUN, Principal
from gis_platform.replay import recheck_check, replay_check

from ..deps import CatalogDep, EngineDep, RulesDep, SettingsDep
from ..security import request_actor, requires
from .checks import DocumentResponse

router = APIRouter(prefix="/api/v1/checks", tags=["checks"])


@router.post(
    "/{check_id}/replay",
    summary="复核：按原数据版本、目录与规则重算，结果是否一致 / replay a check exactly as recorded: is it identical?",
    description=(
        "Recomputes the check with the layer versions, catalogue, rule set, overlay method and parcel it recorded, "
        "and stores nothing (the replay is audited). `status` is `identical`, `different` (with `differences`: "
        "path, before, after, and `changes`: verdict, findings, per-layer areas) or `earlier_method` (the check was "
        "computed before replays existed or with another overlay method: no diff is given). A layer version that no "
        "longer exists or a catalogue/rule set the platform holds no copy of is a 409 naming it."
    ),
)
async def replay(
    check_id: str,
    request: Request,
    engine: EngineDep,
    catalog: CatalogDep,
    rules: RulesDep,
    settings: SettingsDep,
    principal: Annotated[Principal, requires(CHECKS_READ)],
) -> Any:
    actor = request_actor(request, principal)
    answer = await run_in_threadpool(replay_check, engine, catalog, rules, settings, check_id, actor=actor)
    return DocumentResponse(answer)


@router.post(
    "/{check_id}/recheck",
    status_code=201,
    summary="重新核验：用今天的数据与规则重新检查 / recheck with today's layer versions, catalogue and rules",
    description=(
        "Runs the check's parcel (as sent) and options against today's current data and rules and stores a new "
        "check with `rechecked_from` (the old check is not changed). Answers `check` (the new document), "
        "`original` and `changes`: verdict before/after, findings added/removed/changed by rule id, per-layer "
        "areas before/after/delta in m², 公顷 and 亩, and the layer versions that changed. Rechecks are not "
        "counted in the monthly check statistics. A check stored before replays existed is a 409."
    ),
)
async def recheck(
    check_id: str,
    request: Request,
    engine: EngineDep,
    catalog: CatalogDep,
    rules: RulesDep,
    settings: SettingsDep,
    principal: Annotated[Principal, requires(CHECKS_RUN)],
) -> Any:
    actor = request_actor(request, principal)
    answer = await run_in_threadpool(
        recheck_check, engine, catalog, rules, settings, check_id, actor=actor, created_by=principal.name
    )
    return DocumentResponse(answer, status_code=201)
