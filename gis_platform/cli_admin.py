"""``gis-platform user|key|audit`` and ``demo accounts``: accounts, keys and the audit trail from the shell.

The CLI runs on the server itself, so it acts as an administrator; its audit entries name the OS user
(``cli:<user>``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from . import accounts, audit
from .errors import PlatformError
from .settings import REPO_ROOT, load_settings

user_app = typer.Typer(help="用户 / user accounts (admin, planner, viewer)", no_args_is_help=True)
key_app = typer.Typer(help="API 密钥 / API keys of approval systems", no_args_is_help=True)
audit_app = typer.Typer(help="审计日志 / the audit trail", no_args_is_help=True)

DEMO_CREDENTIALS = REPO_ROOT / "var" / "demo-credentials.json"
DEMO_USERS = (
    ("demo-admin", "admin", "演示管理员 DEMO admin"),
    ("demo-planner", "planner", "演示规划员 DEMO planner"),
    ("demo-viewer", "viewer", "演示领导 DEMO viewer (read only)"),
)
DEMO_KEY_NAME = "演示审批系统 DEMO approval system"


def _fail(error: Exception) -> None:
    typer.echo(f"错误 error: {error}", err=True)
    raise typer.Exit(code=2)


def _engine() -> Any:
    from .db import make_engine

    return make_engine(load_settings(), pool_size=1)


def _password(password_stdin: bool, prompt: bool = True) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not prompt:
        raise typer.BadParameter("give the password with --password-stdin")
    return str(typer.prompt("密码 password", hide_input=True, confirmation_prompt=True))


@user_app.command("add")
def user_add(
    username: str,
    role: Annotated[str, typer.Option(help="admin | planner | viewer")],
    display_name: Annotated[str | None, typer.Option(help="name shown in the web map")] = None,
    password_stdin: Annotated[bool, typer.Option(help="read the password from standard input")] = False,
) -> None:
    """新增用户 / add a user (asks for the password unless --password-stdin)."""
    password = _password(password_stdin)
    try:
        user = accounts.create_user(
            _engine(),
            load_settings(),
            username=username,
            password=password,
            role=role,
            display_name=display_name,
            actor=audit.cli_actor(),
        )
    except PlatformError as exc:
        _fail(exc)
    typer.echo(f"user {user['username']} ({user['role']}) created")


@user_app.command("list")
def user_list() -> None:
    """用户列表 / list users."""
    for user in accounts.list_users(_engine()):
        state = "active" if user["is_active"] else "DISABLED"
        typer.echo(
            f"{user['username']:24} {user['role']:8} {state:8} last login {user['last_login_at'] or '-'}"
            f"  {user['display_name'] or ''}"
        )


@user_app.command("set")
def user_set(
    username: str,
    role: Annotated[str | None, typer.Option(help="new role")] = None,
    active: Annotated[bool | None, typer.Option("--active/--disabled", help="enable or disable the account")] = None,
    password: Annotated[bool, typer.Option("--password", help="set a new password (prompted)")] = False,
    password_stdin: Annotated[bool, typer.Option(help="read the new password from standard input")] = False,
) -> None:
    """修改用户：角色、启用/停用、重置密码 / change a user's role, status or password (ends their sessions)."""
    new_password = _password(password_stdin) if (password or password_stdin) else None
    try:
        user = accounts.update_user(
            _engine(),
            load_settings(),
            username,
            actor=audit.cli_actor(),
            role=role,
            is_active=active,
            password=new_password,
        )
    except PlatformError as exc:
        _fail(exc)
    typer.echo(f"user {user['username']}: role {user['role']}, {'active' if user['is_active'] else 'disabled'}")


@key_app.command("create")
def key_create(
    name: Annotated[str, typer.Argument(help="the approval system that will use the key")],
    scope: Annotated[
        list[str] | None, typer.Option(help="a permission to grant (repeat); default: all of a key's")
    ] = None,
    expires_days: Annotated[int | None, typer.Option(help="days until the key expires (default: never)")] = 365,
    rate_limit: Annotated[int | None, typer.Option(help="requests per minute (0: unlimited; default: setting)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the record and secret as JSON")] = False,
) -> None:
    """创建 API 密钥（密钥只显示一次）/ create an API key; the secret is printed this once only."""
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=expires_days) if expires_days else None
    try:
        record, secret = accounts.create_api_key(
            _engine(),
            name=name,
            actor=audit.cli_actor(),
            scopes=scope or None,
            expires_at=expires,
            rate_limit_per_minute=rate_limit,
        )
    except PlatformError as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps({**record, "secret": secret}, ensure_ascii=False))
        return
    typer.echo(f"API key {record['prefix']} for {record['name']}, scopes {', '.join(record['scopes'])}")
    typer.echo(f"expires {record['expires_at'] or 'never'}; send it as 'Authorization: Bearer <key>'")
    typer.echo(secret)


@key_app.command("list")
def key_list() -> None:
    """API 密钥列表 / list API keys (never their secrets)."""
    for key in accounts.list_api_keys(_engine()):
        typer.echo(
            f"{key['prefix']:14} {key['status']:8} {key['name']}  scopes {','.join(key['scopes'])}"
            f"  expires {key['expires_at'] or 'never'}  last used {key['last_used_at'] or '-'}"
        )


@key_app.command("revoke")
def key_revoke(key: Annotated[str, typer.Argument(help="the key's prefix (gpk_xxxxxxxx) or id")]) -> None:
    """吊销 API 密钥 / revoke an API key."""
    try:
        record = accounts.revoke_api_key(_engine(), key, audit.cli_actor())
    except PlatformError as exc:
        _fail(exc)
    typer.echo(f"API key {record['prefix']} ({record['name']}) revoked")


@audit_app.command("list")
def audit_list(
    actor: str | None = None,
    action: str | None = None,
    limit: int = 50,
) -> None:
    """最近的审计记录 / the newest audit entries."""
    events = audit.list_events(_engine(), audit.AuditFilter(actor=actor, action=action, limit=limit))
    for item in events["items"]:
        typer.echo(
            f"{item['at']}  {item['actor']:24} {item['action']:18} {item['outcome']:6} {item['target'] or ''}"
            f"  {item['ip'] or ''}"
        )


@audit_app.command("export")
def audit_export(
    out: Annotated[Path, typer.Option(help="CSV file to write")],
    since: Annotated[dt.datetime | None, typer.Option(help="from this time")] = None,
    until: Annotated[dt.datetime | None, typer.Option(help="before this time")] = None,
) -> None:
    """导出审计日志 CSV / export the audit trail as CSV."""
    engine = _engine()
    filters = audit.AuditFilter(since=since, until=until)
    with out.open("w", encoding="utf-8", newline="") as handle:
        for chunk in audit.export_csv(engine, filters):
            handle.write(chunk)
    audit.record_now(engine, audit.AuditEntry(audit.cli_actor(), "audit.export", str(out)))
    typer.echo(f"audit trail written to {out}")


def ensure_demo_accounts(engine: Any, path: Path = DEMO_CREDENTIALS) -> dict[str, Any]:
    """Demo users and one demo API key, written to ``path`` (git-ignored, mode 600); reused when still valid."""
    import secrets

    settings = load_settings()
    known: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    known_passwords = {a["username"]: a["password"] for a in known.get("accounts", [])}
    existing = {u["username"]: u for u in accounts.list_users(engine)}
    actor = audit.cli_actor()
    out_accounts = []
    for username, role, label in DEMO_USERS:
        password = known_passwords.get(username)
        valid = False
        if password and username in existing:
            try:
                accounts.verify_login(engine, username, password)
                valid = existing[username]["role"] == role
            except PlatformError:
                valid = False
        if not valid:
            password = f"Demo-{secrets.token_urlsafe(9)}"
            if username in existing:
                accounts.update_user(
                    engine, settings, username, actor=actor, role=role, is_active=True, password=password
                )
            else:
                accounts.create_user(
                    engine, settings, username=username, password=password, role=role, display_name=label, actor=actor
                )
        out_accounts.append({"username": username, "password": password, "role": role, "label": label})
    key = known.get("api_key", {}).get("secret")
    if not key or not _key_valid(engine, key):
        _record, key = accounts.create_api_key(engine, name=DEMO_KEY_NAME, actor=actor)
    credentials = {
        "warning": "演示账号，仅用于试用；正式部署前请删除或停用 / DEMO accounts for trying the platform: disable them "
        "before real use (gis-platform user set NAME --disabled; gis-platform key revoke PREFIX)",
        "url": "http://127.0.0.1:8000",
        "accounts": out_accounts,
        "api_key": {"name": DEMO_KEY_NAME, "secret": key, "header": f"Authorization: Bearer {key}"},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(credentials, handle, ensure_ascii=False, indent=2)
    return credentials


def _key_valid(engine: Any, secret: str) -> bool:
    try:
        accounts.Authenticator(engine, load_settings()).principal(secret)
        return True
    except accounts.AuthenticationError:
        return False


def demo_accounts(out: Path = DEMO_CREDENTIALS) -> None:
    """创建演示账号与演示 API 密钥 / create the demo accounts and demo API key (credentials file, git-ignored)."""
    try:
        credentials = ensure_demo_accounts(_engine(), out)
    except PlatformError as exc:
        _fail(exc)
    typer.echo(f"demo accounts ready; credentials in {out} (git-ignored):")
    for account in credentials["accounts"]:
        typer.echo(f"  {account['username']:14} {account['role']:8} {account['password']}")
    typer.echo(f"  API key ({DEMO_KEY_NAME}): {credentials['api_key']['secret']}")
