"""Logging in and out: a web session cookie, or an OAuth2 password-flow bearer token for scripts."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from gis_platform import accounts, audit
from gis_platform.audit import AuditEntry

from ..deps import EngineDep, SettingsDep
from ..security import SESSION_COOKIE, authenticated, client_ip, public, request_actor, request_credential

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class LoginBody(BaseModel):
    username: str = Field(min_length=1, max_length=64, examples=["planner01"])
    password: str = Field(min_length=1, max_length=256)


class PasswordBody(BaseModel):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


def _verify(request: Request, username: str, password: str) -> dict[str, Any]:
    """Check a login attempt (rate-limited per address and name); every outcome is audited."""
    state = request.app.state
    actor = audit.Actor(name=username[:64], kind="user", ip=client_ip(request))
    state.rate_limiter.hit(
        f"login:{client_ip(request)}:{username.lower()}", state.settings.login_attempts_per_minute, "login attempts"
    )
    try:
        return accounts.verify_login(state.engine, username, password)
    except accounts.AuthenticationError as exc:
        audit.record_now(
            state.engine,
            AuditEntry(actor, "auth.login", f"user:{username[:64]}", outcome="failed", details={"why": exc.message}),
        )
        raise


@router.post(
    "/login",
    summary="登录（网页会话 Cookie）/ log in to the web map (session cookie)",
    dependencies=[public("logging in")],
)
async def login(body: LoginBody, request: Request, response: Response, settings: SettingsDep, engine: EngineDep) -> Any:
    user = await run_in_threadpool(_verify, request, body.username, body.password)
    actor = audit.Actor(name=user["username"], kind="user", role=user["role"], ip=client_ip(request))
    token, _expires = await run_in_threadpool(
        accounts.create_session,
        engine,
        user,
        kind="cookie",
        lifetime=dt.timedelta(minutes=settings.session_idle_minutes),
        actor=actor,
    )
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_max_hours * 3600,
        httponly=True,
        samesite="strict",
        secure=settings.session_cookie_secure,
        path="/",
    )
    return {"user": user, "permissions": sorted(accounts.ROLE_PERMISSIONS[user["role"]])}


@router.post(
    "/token",
    summary="OAuth2 密码模式取短期令牌 / OAuth2 password flow: a short-lived bearer token",
    dependencies=[public("logging in")],
)
async def token(
    request: Request,
    settings: SettingsDep,
    engine: EngineDep,
    username: Annotated[str, Form(min_length=1, max_length=64)],
    password: Annotated[str, Form(min_length=1, max_length=256)],
) -> Any:
    user = await run_in_threadpool(_verify, request, username, password)
    actor = audit.Actor(name=user["username"], kind="user", role=user["role"], ip=client_ip(request))
    minutes = settings.access_token_minutes
    secret, _expires = await run_in_threadpool(
        accounts.create_session, engine, user, kind="bearer", lifetime=dt.timedelta(minutes=minutes), actor=actor
    )
    return {"access_token": secret, "token_type": "bearer", "expires_in": minutes * 60}


@router.post("/logout", summary="退出登录 / log out (ends this session)", dependencies=[public("logging out")])
def logout(request: Request, response: Response, engine: EngineDep) -> Any:
    credential = request_credential(request)
    if credential is not None and credential.startswith(accounts.API_KEY_PREFIX):
        credential = request.cookies.get(SESSION_COOKIE)  # an API key is revoked by an admin, not logged out
    if credential:
        principal = request.state.principal
        accounts.revoke_session(engine, credential, request_actor(request, principal))
        request.app.state.authenticator.forget(credential)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return {"logged_out": bool(credential)}


@router.get("/me", summary="当前用户与权限 / who am I, and what may I do")
def me(principal: Annotated[accounts.Principal, authenticated()]) -> Any:
    return principal.public()


@router.post("/password", summary="修改本人密码 / change my password")
def change_password(
    body: PasswordBody,
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    principal: Annotated[accounts.Principal, authenticated()],
) -> Any:
    if principal.kind != "user":
        raise accounts.PermissionDenied("only a person's account has a password (API keys are revoked, not changed)")
    accounts.verify_login(engine, principal.name, body.current_password)
    user = accounts.update_user(
        engine, settings, principal.name, actor=request_actor(request, principal), password=body.new_password
    )
    request.app.state.authenticator.clear()
    return {"user": user, "message": "密码已修改，请重新登录 / password changed; log in again"}
