"""Administration: users, API keys and the audit trail (admin role only)."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from gis_platform import accounts, audit
from gis_platform.accounts import AUDIT_READ, USERS_ADMIN, Principal

from ..deps import EngineDep, SettingsDep
from ..schemas import MAX_OFFSET, UtcDateTime
from ..security import request_actor, requires

router = APIRouter(prefix="/api/v1", tags=["admin"])


class NewUser(BaseModel):
    username: str = Field(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$", examples=["planner02"])
    password: str = Field(min_length=1, max_length=256)
    role: Literal["admin", "planner", "viewer"]
    display_name: str | None = Field(default=None, max_length=200)


class UserChange(BaseModel):
    role: Literal["admin", "planner", "viewer"] | None = None
    is_active: bool | None = None
    display_name: str | None = Field(default=None, max_length=200)
    password: str | None = Field(default=None, min_length=1, max_length=256)


class NewApiKey(BaseModel):
    name: str = Field(min_length=1, max_length=200, examples=["不动产登记审批系统"])
    scopes: list[str] | None = Field(default=None, description="default: every approval-system permission")
    expires_at: UtcDateTime | None = None
    rate_limit_per_minute: int | None = Field(
        default=None, ge=0, le=1_000_000, description="0: unlimited; default: the setting"
    )


AdminDep = Annotated[Principal, requires(USERS_ADMIN)]


@router.get("/users", summary="用户列表 / users")
def users(engine: EngineDep, _principal: AdminDep) -> Any:
    return {"users": accounts.list_users(engine)}


@router.post("/users", status_code=201, summary="新增用户 / add a user")
def add_user(body: NewUser, request: Request, engine: EngineDep, settings: SettingsDep, principal: AdminDep) -> Any:
    return accounts.create_user(
        engine,
        settings,
        username=body.username,
        password=body.password,
        role=body.role,
        display_name=body.display_name,
        actor=request_actor(request, principal),
    )


@router.patch("/users/{username}", summary="修改用户（角色、停用、重置密码）/ change a user")
def change_user(
    username: str,
    body: UserChange,
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    principal: AdminDep,
) -> Any:
    user = accounts.update_user(
        engine,
        settings,
        username,
        actor=request_actor(request, principal),
        role=body.role,
        is_active=body.is_active,
        display_name=body.display_name,
        password=body.password,
    )
    request.app.state.authenticator.clear()
    return user


@router.get("/api-keys", summary="API 密钥列表 / API keys (secrets are never shown again)")
def api_keys(engine: EngineDep, _principal: AdminDep) -> Any:
    return {"api_keys": accounts.list_api_keys(engine)}


@router.post("/api-keys", status_code=201, summary="为审批系统创建 API 密钥 / create an API key")
def add_api_key(body: NewApiKey, request: Request, engine: EngineDep, principal: AdminDep) -> Any:
    record, secret = accounts.create_api_key(
        engine,
        name=body.name,
        actor=request_actor(request, principal),
        scopes=body.scopes,
        expires_at=body.expires_at,
        rate_limit_per_minute=body.rate_limit_per_minute,
    )
    return {**record, "secret": secret, "note": "密钥只显示这一次 / the secret is shown this once only"}


@router.delete("/api-keys/{key}", summary="吊销 API 密钥 / revoke an API key")
def revoke_api_key(key: str, request: Request, engine: EngineDep, principal: AdminDep) -> Any:
    record = accounts.revoke_api_key(engine, key, request_actor(request, principal))
    request.app.state.authenticator.clear()
    return record


def audit_filter(
    since: UtcDateTime | None = None,
    until: UtcDateTime | None = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    action: Annotated[str | None, Query(max_length=60)] = None,
    outcome: Literal["ok", "denied", "failed"] | None = None,
) -> audit.AuditFilter:
    """The audit filters shared by the listing and the export (query parameters)."""
    return audit.AuditFilter(since, until, actor, action, outcome)


AuditFilterDep = Annotated[audit.AuditFilter, Depends(audit_filter)]


@router.get("/audit", summary="审计日志查询 / query the audit trail")
def audit_events(
    engine: EngineDep,
    _principal: Annotated[Principal, requires(AUDIT_READ)],
    filters: AuditFilterDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Any:
    return audit.list_events(engine, replace(filters, limit=limit, offset=offset))


@router.get("/audit/export.csv", summary="导出审计日志 CSV / export the audit trail as CSV")
def audit_export(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, requires(AUDIT_READ)],
    filters: AuditFilterDep,
) -> Any:
    audit.record_now(
        engine,
        audit.AuditEntry(
            request_actor(request, principal),
            "audit.export",
            "audit_event",
            details={k: str(v) for k, v in vars(filters).items() if v is not None and k not in ("limit", "offset")},
        ),
    )
    return StreamingResponse(
        audit.export_csv(engine, filters),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
    )
