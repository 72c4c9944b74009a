"""Who may call what.

Every route declares its access with exactly one of :func:`requires` (a permission of
``gis_platform.accounts``), :func:`authenticated` (any logged-in user or key) or :func:`public` (with the
reason it is open). ``tests/test_access.py`` enumerates the routes and fails on any without a declaration.

Credentials, in this order: ``Authorization: Bearer <token or API key>``, ``X-API-Key: <key>``, the
``gis_session`` cookie of the web map. The rate limit (per user, per key, per address for anonymous reads)
is applied here too, after authentication, so every protected route has it.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from gis_platform import audit
from gis_platform.accounts import (
    AuthenticationError,
    Authenticator,
    PermissionDenied,
    Principal,
    RateLimitExceeded,
    anonymous_principal,
)
from gis_platform.audit import Actor, AuditEntry
from gis_platform.db import is_database_unavailable

SESSION_COOKIE = "gis_session"


class RateLimiter:
    """Moving-window limits per principal, in this worker process (the ``limits`` library, memory storage)."""

    def __init__(self) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._items: dict[int, RateLimitItemPerMinute] = {}

    def hit(self, key: str, per_minute: int, what: str) -> None:
        if per_minute <= 0:
            return
        item = self._items.get(per_minute)
        if item is None:
            item = self._items.setdefault(per_minute, RateLimitItemPerMinute(per_minute))
        if not self._limiter.hit(item, key):
            reset_at, _remaining = self._limiter.get_window_stats(item, key)
            retry = max(1, int(reset_at - time.time()) + 1)
            raise RateLimitExceeded(
                f"请求过于频繁 / more than {per_minute} requests per minute for {what}; retry in {retry} s",
                limit_per_minute=per_minute,
                retry_after_s=retry,
            )


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def request_actor(request: Request, principal: Principal | None = None) -> Actor:
    """The audit actor of a request (anonymous when nobody is authenticated)."""
    principal = principal or getattr(request.state, "principal", None) or anonymous_principal()
    return principal.actor(ip=client_ip(request), request_id=getattr(request.state, "request_id", None))


def request_credential(request: Request) -> str | None:
    """The credential a request carries: a bearer token or API key, an ``X-API-Key``, or the session cookie."""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise AuthenticationError("Authorization header must be 'Bearer <token or API key>'")
        return value.strip()
    key = request.headers.get("x-api-key")
    if key is not None:
        if not key.strip():
            raise AuthenticationError("X-API-Key header is empty")
        return key.strip()
    return request.cookies.get(SESSION_COOKIE) or None


async def current_principal(request: Request) -> Principal | None:
    """The authenticated caller, None when the request carries no credentials (bad ones are a 401).

    A credential checked in the last ``auth_cache_ttl_s`` seconds is answered from memory on the event loop;
    only a lookup goes to the thread pool (the database driver blocks).
    """
    credential = request_credential(request)
    if credential is None:
        return None
    authenticator: Authenticator = request.app.state.authenticator
    if len(credential) > 512:
        raise AuthenticationError("credential too long")
    cached = authenticator.cached(credential)
    if cached is not None:
        return cached
    return await run_in_threadpool(authenticator.principal, credential)


class Access:
    """A route's access declaration, used as a FastAPI dependency; returns the caller's principal."""

    def __init__(self, *, permission: str | None = None, login: bool = True, reason: str | None = None) -> None:
        self.permission = permission
        self.login = login
        self.reason = reason

    def __repr__(self) -> str:
        if not self.login:
            return f"public({self.reason!r})"
        return f"requires({self.permission!r})" if self.permission else "authenticated()"

    async def __call__(self, request: Request) -> Principal:
        state = request.app.state
        if not self.login:
            request.state.principal = await _optional(request) or anonymous_principal()
            return request.state.principal
        found = await current_principal(request)
        if found is not None:
            principal = found
        elif state.settings.anonymous_read and self.permission in anonymous_principal().permissions:
            principal = anonymous_principal()
        else:
            raise AuthenticationError("请先登录 / authentication required: log in, or send an API key")
        request.state.principal = principal
        if self.permission and not principal.can(self.permission):
            await run_in_threadpool(
                audit.record_now,
                state.engine,
                AuditEntry(
                    request_actor(request, principal),
                    "access.denied",
                    f"{request.method} {request.url.path}",
                    outcome="denied",
                    details={"permission": self.permission},
                ),
            )
            raise PermissionDenied(
                f"无权访问 / {principal.role or 'anonymous'} may not do this (needs {self.permission})",
                permission=self.permission,
            )
        limiter: RateLimiter = state.rate_limiter
        if principal.kind == "anonymous":
            limiter.hit(f"ip:{client_ip(request)}", state.settings.rate_limit_anonymous_per_minute, "this address")
        else:
            limiter.hit(f"{principal.kind}:{principal.id}", principal.rate_limit_per_minute or 0, principal.name)
        return principal


async def _optional(request: Request) -> Principal | None:
    """The caller on a public route, if its credentials are good; never an error (a probe must not fail on them)."""
    try:
        return await current_principal(request)
    except AuthenticationError:
        return None
    except Exception as exc:
        if is_database_unavailable(exc):  # liveness must answer while the database is down
            return None
        raise


def requires(permission: str) -> Any:
    """``Depends`` for a route that needs ``permission`` (see ``gis_platform.accounts.PERMISSIONS``)."""
    return Depends(Access(permission=permission))


def authenticated() -> Any:
    """``Depends`` for a route any logged-in user or API key may call."""
    return Depends(Access())


def public(reason: str) -> Any:
    """``Depends`` for a route open to everyone; ``reason`` says why (it shows in the access test's listing)."""
    return Depends(Access(login=False, reason=reason))
