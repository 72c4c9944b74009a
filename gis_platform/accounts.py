"""Accounts, roles, sessions and API keys.

Four roles (DOMAIN: who uses the one map):

- ``admin`` — layers, imports, users, keys, the audit trail;
- ``planner`` — checks, uploads, batch and conflict jobs, reports, the map and dashboard;
- ``approval`` — an approval system calling with an **API key**: checks and reads (a key's scopes may narrow it);
- ``viewer`` — leadership: the map and the dashboard, read only.

Passwords are Argon2id hashes (argon2-cffi). Session tokens and API key secrets are random 256-bit values of
which only the SHA-256 is stored: a stolen database gives no usable credential. Every change to users and
keys writes an audit entry in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Engine, text

from . import audit
from .audit import Actor, AuditEntry
from .errors import NotFoundError, PlatformError
from .settings import Settings

MAP_READ = "map:read"
DASHBOARD_READ = "dashboard:read"
CHECKS_READ = "checks:read"
CHECKS_RUN = "checks:run"
REPORTS_READ = "reports:read"
BATCH_RUN = "batch:run"
CONFLICTS_RUN = "conflicts:run"
LAYERS_ADMIN = "layers:admin"
USERS_ADMIN = "users:admin"
AUDIT_READ = "audit:read"

PERMISSIONS: dict[str, str] = {
    MAP_READ: "一张图、图层目录、瓦片、点查询、搜索 / the map, catalogue, tiles, identify, search",
    DASHBOARD_READ: "领导驾驶舱 / the leadership dashboard",
    CHECKS_READ: "检查记录与任务 / stored checks and jobs",
    CHECKS_RUN: "合规性检查（含上传）/ run compliance checks, uploads included",
    REPORTS_READ: "检查报告 HTML/PDF / check reports",
    BATCH_RUN: "批量检查任务 / batch check jobs",
    CONFLICTS_RUN: "规划冲突分析任务 / conflict analysis jobs",
    LAYERS_ADMIN: "图层导入与版本 / layer imports and versions",
    USERS_ADMIN: "用户与 API 密钥 / users and API keys",
    AUDIT_READ: "审计日志查询与导出 / the audit trail",
}

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "viewer": frozenset({MAP_READ, DASHBOARD_READ}),
    "approval": frozenset({MAP_READ, CHECKS_READ, CHECKS_RUN, REPORTS_READ, BATCH_RUN}),
    "planner": frozenset({MAP_READ, DASHBOARD_READ, CHECKS_READ, CHECKS_RUN, REPORTS_READ, BATCH_RUN, CONFLICTS_RUN}),
    "admin": frozenset(PERMISSIONS),
}
ROLE_LABELS = {"admin": "管理员", "planner": "规划人员", "approval": "审批系统", "viewer": "领导（只读）"}
#: Roles of people; ``approval`` is the role of API keys only.
USER_ROLES = ("admin", "planner", "viewer")
#: What an API key may be granted (its scopes), all by default.
API_KEY_SCOPES = ROLE_PERMISSIONS["approval"]
API_KEY_PREFIX = "gpk_"
USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{2,64}$")
_API_KEY = re.compile(r"^gpk_([0-9a-f]{8})_([A-Za-z0-9_-]{20,100})$")

_hasher = PasswordHasher()  # Argon2id with the library's current defaults (RFC 9106 low-memory profile)
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class AuthenticationError(PlatformError):
    """No usable credentials: missing, wrong, expired or revoked (HTTP 401)."""

    code = "not_authenticated"


class PermissionDenied(PlatformError):
    """Authenticated, but the role or key scope does not allow the action (HTTP 403)."""

    code = "forbidden"


class RateLimitExceeded(PlatformError):
    """Too many requests from one user, key or address (HTTP 429)."""

    code = "rate_limited"


class AccountError(PlatformError):
    """A user or key change that cannot be made: bad name, weak password, unknown role, duplicate (HTTP 422)."""

    code = "account_error"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user (session), an API key, or anonymous (when the read-only map is opened)."""

    kind: str  # "user" | "api_key" | "anonymous"
    name: str
    role: str | None
    permissions: frozenset[str]
    id: int | None = None
    rate_limit_per_minute: int | None = None
    display_name: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    def actor(self, ip: str | None = None, request_id: str | None = None) -> Actor:
        return Actor(name=self.name, kind=self.kind, role=self.role, ip=ip, request_id=request_id)

    def public(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "display_name": self.display_name,
            "role": self.role,
            "role_label": ROLE_LABELS.get(self.role or ""),
            "permissions": sorted(self.permissions),
        }


def anonymous_principal() -> Principal:
    return Principal(kind="anonymous", name="anonymous", role=None, permissions=ROLE_PERMISSIONS["viewer"])


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- users -------------------------------------------------------------------------------------------


def _check_username(username: str) -> str:
    if not USERNAME.match(username or ""):
        raise AccountError(
            f"用户名不合规 / username {username!r} is not allowed: 2–64 letters, digits or . _ @ -",
            field="username",
        )
    return username


def _check_role(role: str, allowed: Iterable[str] = USER_ROLES) -> str:
    allowed = tuple(allowed)
    if role not in allowed:
        raise AccountError(f"未知角色 / unknown role {role!r}; one of {', '.join(allowed)}", field="role")
    return role


def check_password_strength(password: str, settings: Settings) -> None:
    """Refuse short or single-class passwords (the hash protects storage, not a guessable password)."""
    if len(password) < settings.min_password_length:
        raise AccountError(
            f"密码太短 / password too short: at least {settings.min_password_length} characters",
            field="password",
        )
    classes = sum(bool(re.search(p, password)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^A-Za-z0-9]"))
    if classes < 2:
        raise AccountError(
            "密码太简单，请混合字母与数字或符号 / password too simple: mix letters with digits or symbols",
            field="password",
        )


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _user_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "username": row.username,
        "display_name": row.display_name,
        "role": row.role,
        "role_label": ROLE_LABELS[row.role],
        "is_active": row.is_active,
        "created_at": row.created_at.isoformat(),
        "last_login_at": row.last_login_at.isoformat() if row.last_login_at else None,
    }


_USER_COLUMNS = "id, username, display_name, role, is_active, created_at, last_login_at"


def _find_user(conn: Connection, username: str, *, lock: bool = False) -> Any:
    row = conn.execute(
        text(
            f"SELECT {_USER_COLUMNS}, password_hash FROM app_user WHERE lower(username) = lower(:u)"
            + (" FOR UPDATE" if lock else "")
        ),
        {"u": username},
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"no user named {username!r}")
    return row


def create_user(
    engine: Engine,
    settings: Settings,
    *,
    username: str,
    password: str,
    role: str,
    display_name: str | None = None,
    actor: Actor,
) -> dict[str, Any]:
    _check_username(username)
    _check_role(role)
    check_password_strength(password, settings)
    with engine.begin() as conn:
        exists = conn.execute(text("SELECT 1 FROM app_user WHERE lower(username) = lower(:u)"), {"u": username}).first()
        if exists:
            raise AccountError(f"用户已存在 / user {username!r} already exists", field="username")
        row = conn.execute(
            text(
                "INSERT INTO app_user (username, display_name, role, password_hash)"
                f" VALUES (:u, :d, :r, :h) RETURNING {_USER_COLUMNS}"
            ),
            {"u": username, "d": display_name, "r": role, "h": hash_password(password)},
        ).one()
        audit.record(conn, AuditEntry(actor, "user.create", f"user:{username}", details={"role": role}))
    return _user_dict(row)


def list_users(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT {_USER_COLUMNS} FROM app_user ORDER BY lower(username)"))
        return [_user_dict(r) for r in rows]


def update_user(
    engine: Engine,
    settings: Settings,
    username: str,
    *,
    actor: Actor,
    role: str | None = None,
    is_active: bool | None = None,
    display_name: str | None = None,
    password: str | None = None,
) -> dict[str, Any]:
    """Change a user's role, status, name or password; disabling or a new password ends their sessions."""
    changes: dict[str, Any] = {}
    if role is not None:
        changes["role"] = _check_role(role)
    if is_active is not None:
        changes["is_active"] = is_active
    if display_name is not None:
        changes["display_name"] = display_name
    if password is not None:
        check_password_strength(password, settings)
        changes["password_hash"] = hash_password(password)
    if not changes:
        raise AccountError("nothing to change: give role, is_active, display_name or password")
    with engine.begin() as conn:
        user = _find_user(conn, username, lock=True)
        if user.role == "admin" and user.is_active and (is_active is False or (role is not None and role != "admin")):
            conn.execute(text("LOCK TABLE app_user IN SHARE ROW EXCLUSIVE MODE"))  # two admins demoting each other
            others = conn.execute(
                text("SELECT count(*) FROM app_user WHERE role = 'admin' AND is_active AND id <> :id"), {"id": user.id}
            ).scalar_one()
            if others == 0:
                raise AccountError(
                    "不能停用或降级最后一个管理员 / the last active admin cannot be disabled or demoted", field="role"
                )
        assignments = ", ".join(f"{column} = :{column}" for column in changes)
        row = conn.execute(
            text(f"UPDATE app_user SET {assignments}, updated_at = now() WHERE id = :id RETURNING {_USER_COLUMNS}"),
            {**changes, "id": user.id},
        ).one()
        if is_active is False or password is not None or role is not None:
            conn.execute(
                text("UPDATE user_session SET revoked_at = now() WHERE user_id = :id AND revoked_at IS NULL"),
                {"id": user.id},
            )
        shown = {k: ("***" if k == "password_hash" else v) for k, v in changes.items()}
        audit.record(conn, AuditEntry(actor, "user.update", f"user:{row.username}", details=shown))
    return _user_dict(row)


def verify_login(engine: Engine, username: str, password: str) -> dict[str, Any]:
    """The user, if the password is right and the account active; AuthenticationError otherwise.

    The error does not say which of name or password was wrong, and an unknown name costs the same hash
    verification as a known one.
    """
    wrong = AuthenticationError("用户名或密码错误 / wrong username or password")
    with engine.connect() as conn:
        row = conn.execute(
            text(f"SELECT {_USER_COLUMNS}, password_hash FROM app_user WHERE lower(username) = lower(:u)"),
            {"u": username},
        ).one_or_none()
    try:
        _hasher.verify(row.password_hash if row else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError) as exc:
        raise wrong from exc
    if row is None:
        raise wrong
    if not row.is_active:
        raise AuthenticationError("账号已停用 / this account is disabled")
    if _hasher.check_needs_rehash(row.password_hash):
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE app_user SET password_hash = :h WHERE id = :id"),
                {"h": hash_password(password), "id": row.id},
            )
    return _user_dict(row)


# --- sessions ----------------------------------------------------------------------------------------


def create_session(
    engine: Engine, user: dict[str, Any], *, kind: str, lifetime: dt.timedelta, actor: Actor
) -> tuple[str, dt.datetime]:
    """A new session token for a verified user (a web cookie or a bearer token) and its expiry."""
    token = secrets.token_urlsafe(32)
    expires = _now() + lifetime
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO user_session (token_hash, user_id, kind, expires_at, ip)"
                " VALUES (:h, :uid, :kind, :exp, :ip)"
            ),
            {"h": token_hash(token), "uid": user["id"], "kind": kind, "exp": expires, "ip": actor.ip},
        )
        conn.execute(text("UPDATE app_user SET last_login_at = now() WHERE id = :id"), {"id": user["id"]})
        # the user's sessions that ended more than a day ago are of no further use (logins are audited)
        conn.execute(
            text(
                "DELETE FROM user_session WHERE user_id = :id"
                " AND coalesce(revoked_at, expires_at) < now() - interval '1 day'"
            ),
            {"id": user["id"]},
        )
        audit.record(conn, AuditEntry(actor, "auth.login", f"user:{user['username']}", details={"via": kind}))
    return token, expires


def revoke_session(engine: Engine, token: str, actor: Actor) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE user_session SET revoked_at = now() WHERE token_hash = :h AND revoked_at IS NULL"),
            {"h": token_hash(token)},
        )
        audit.record(conn, AuditEntry(actor, "auth.logout", f"user:{actor.name}"))


# --- API keys ----------------------------------------------------------------------------------------


def _key_dict(row: Any) -> dict[str, Any]:
    now = _now()
    status = "active"
    if row.revoked_at:
        status = "revoked"
    elif row.expires_at and row.expires_at <= now:
        status = "expired"
    return {
        "id": row.id,
        "prefix": API_KEY_PREFIX + row.prefix,
        "name": row.name,
        "scopes": sorted(row.scopes),
        "rate_limit_per_minute": row.rate_limit_per_minute,
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
        "last_used_at": row.last_used_at.isoformat() if row.last_used_at else None,
        "status": status,
    }


_KEY_COLUMNS = (
    "id, prefix, name, scopes, rate_limit_per_minute, created_by, created_at, expires_at, revoked_at, last_used_at"
)


def create_api_key(
    engine: Engine,
    *,
    name: str,
    actor: Actor,
    scopes: Iterable[str] | None = None,
    expires_at: dt.datetime | None = None,
    rate_limit_per_minute: int | None = None,
) -> tuple[dict[str, Any], str]:
    """A new key for an approval system: its record and the secret, which is shown this once only."""
    name = (name or "").strip()
    if not 1 <= len(name) <= 200:
        raise AccountError("an API key needs a name of 1–200 characters (the system that uses it)", field="name")
    granted = sorted(set(scopes) if scopes is not None else API_KEY_SCOPES)
    unknown = [s for s in granted if s not in API_KEY_SCOPES]
    if unknown or not granted:
        raise AccountError(
            f"API key scopes must be some of {', '.join(sorted(API_KEY_SCOPES))}; got {', '.join(unknown) or 'none'}",
            field="scopes",
        )
    if expires_at is not None and expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=dt.UTC)
    if expires_at is not None and expires_at <= _now():
        raise AccountError("到期时间须在将来 / the expiry date of a new key must be in the future", field="expires_at")
    if rate_limit_per_minute is not None and not 0 <= rate_limit_per_minute <= 1_000_000:
        raise AccountError("rate_limit_per_minute must be 0–1,000,000 (0: unlimited)", field="rate_limit_per_minute")
    prefix = secrets.token_hex(4)
    secret = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    with engine.begin() as conn:
        row = conn.execute(
            text(
                "INSERT INTO api_key (prefix, secret_hash, name, scopes, rate_limit_per_minute, created_by, expires_at)"
                f" VALUES (:p, :h, :n, :s, :r, :by, :exp) RETURNING {_KEY_COLUMNS}"
            ),
            {
                "p": prefix,
                "h": token_hash(secret),
                "n": name,
                "s": granted,
                "r": rate_limit_per_minute,
                "by": actor.name,
                "exp": expires_at,
            },
        ).one()
        audit.record(
            conn,
            AuditEntry(
                actor, "api_key.create", f"api_key:{API_KEY_PREFIX}{prefix}", details={"name": name, "scopes": granted}
            ),
        )
    return _key_dict(row), secret


def list_api_keys(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [_key_dict(r) for r in conn.execute(text(f"SELECT {_KEY_COLUMNS} FROM api_key ORDER BY id"))]


def revoke_api_key(engine: Engine, key: str, actor: Actor) -> dict[str, Any]:
    """Revoke by the public prefix (``gpk_1a2b3c4d``; the whole key works too) or by the numeric id."""
    by_id = key.isdigit() and len(key) <= 9
    where = "id = :k" if by_id else "prefix = :k"
    value: Any = int(key) if by_id else key.removeprefix(API_KEY_PREFIX).split("_")[0]
    with engine.begin() as conn:
        row = conn.execute(
            text(f"UPDATE api_key SET revoked_at = coalesce(revoked_at, now()) WHERE {where} RETURNING {_KEY_COLUMNS}"),
            {"k": value},
        ).one_or_none()
        if row is None:
            raise NotFoundError(f"no API key {key!r}")
        audit.record(conn, AuditEntry(actor, "api_key.revoke", f"api_key:{API_KEY_PREFIX}{row.prefix}"))
    return _key_dict(row)


# --- authenticating requests -------------------------------------------------------------------------


class Authenticator:
    """Turns a session token or API key into a :class:`Principal`.

    Results are remembered for ``auth_cache_ttl_s`` seconds so a check does not pay a database round trip
    for its credentials. A logout, revocation or disabled account empties the cache of every worker process as
    soon as it is committed (:mod:`gis_platform.credential_watch`, LISTEN/NOTIFY); should that channel be down,
    the time limit is the bound.
    """

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    def forget(self, credential: str) -> None:
        with self._lock:
            self._cache.pop(token_hash(credential), None)

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def cached(self, credential: str) -> Principal | None:
        """The principal from the cache, without touching the database; None when it must be looked up."""
        with self._lock:
            hit = self._cache.get(token_hash(credential))
        if hit is not None and hit[1] is not None and time.monotonic() - hit[0] < self.settings.auth_cache_ttl_s:
            return hit[1]
        return None

    def principal(self, credential: str) -> Principal:
        """The principal of a session token or API key; AuthenticationError when it is not (or no longer) valid."""
        digest = token_hash(credential)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(digest)
        if hit is not None and now - hit[0] < self.settings.auth_cache_ttl_s:
            found = hit[1]
        else:
            found = self._lookup_key(credential, digest) if credential.startswith(API_KEY_PREFIX) else None
            if found is None and not credential.startswith(API_KEY_PREFIX):
                found = self._lookup_session(digest)
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[digest] = (now, found)
        if found is None:
            raise AuthenticationError(
                "登录已失效或凭据无效 / the session or API key is not valid (expired, revoked or unknown)"
            )
        return found

    def _lookup_session(self, digest: str) -> Principal | None:
        idle = dt.timedelta(minutes=self.settings.session_idle_minutes)
        with self.engine.begin() as conn:
            row = conn.execute(
                text(
                    "SELECT s.kind, s.created_at, s.expires_at, s.last_seen_at,"
                    " u.id, u.username, u.display_name, u.role"
                    " FROM user_session s JOIN app_user u ON u.id = s.user_id"
                    " WHERE s.token_hash = :h AND s.revoked_at IS NULL AND s.expires_at > now() AND u.is_active"
                ),
                {"h": digest},
            ).one_or_none()
            if row is None:
                return None
            now = _now()
            if row.kind == "cookie" and now - row.last_seen_at > dt.timedelta(seconds=60):
                # sliding idle timeout for web sessions, capped by the absolute session lifetime
                cap = row.created_at + dt.timedelta(hours=self.settings.session_max_hours)
                conn.execute(
                    text("UPDATE user_session SET last_seen_at = now(), expires_at = :exp WHERE token_hash = :h"),
                    {"exp": min(now + idle, cap), "h": digest},
                )
        return Principal(
            kind="user",
            name=row.username,
            role=row.role,
            permissions=ROLE_PERMISSIONS[row.role],
            id=row.id,
            rate_limit_per_minute=self.settings.rate_limit_user_per_minute,
            display_name=row.display_name,
        )

    def _lookup_key(self, secret: str, digest: str) -> Principal | None:
        match = _API_KEY.match(secret)
        if not match:
            return None
        with self.engine.begin() as conn:
            row = conn.execute(
                text(
                    "UPDATE api_key SET last_used_at = now()"
                    " WHERE prefix = :p AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())"
                    " RETURNING id, name, secret_hash, scopes, rate_limit_per_minute"
                ),
                {"p": match.group(1)},
            ).one_or_none()
        if row is None or not hmac.compare_digest(row.secret_hash, digest):
            return None
        limit = row.rate_limit_per_minute
        return Principal(
            kind="api_key",
            name=f"key:{row.name}",
            role="approval",
            permissions=frozenset(row.scopes) & API_KEY_SCOPES,
            id=row.id,
            rate_limit_per_minute=self.settings.rate_limit_api_key_per_minute if limit is None else limit,
            display_name=row.name,
            extra={"prefix": API_KEY_PREFIX + match.group(1)},
        )
