"""Access control: every route declares who may call it, roles and keys get what they should, and the audit
trail records it all and cannot be changed."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from starlette.routing import Mount

from api.app import create_app
from api.security import SESSION_COOKIE, Access
from gis_platform import accounts
from gis_platform.audit import cli_actor
from gis_platform.settings import Settings

from .helpers import TEST_PASSWORD, audit_entries, audit_mark, auth_headers, ensure_user

pytestmark = pytest.mark.db

PARCEL = {"type": "Polygon", "coordinates": [[[114.8, 34.8], [114.801, 34.8], [114.801, 34.801], [114.8, 34.8]]]}

#: Every route open without login, and why. Anything else must answer 401 to an anonymous caller.
PUBLIC_ROUTES = {
    ("GET", "/"): "the web map page",
    ("GET", "/api/v1/health"): "monitoring",
    ("GET", "/api/v1/health/live"): "liveness probe",
    ("GET", "/api/v1/health/ready"): "readiness probe",
    ("GET", "/metrics"): "Prometheus scrape",
    ("POST", "/api/v1/auth/login"): "logging in",
    ("POST", "/api/v1/auth/token"): "logging in",
    ("POST", "/api/v1/auth/logout"): "logging out",
}
DOC_ROUTES = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def _api_routes(client: TestClient) -> list[Any]:
    """Every API route with its effective (router-level included) dependencies and full path."""
    contexts = iter_route_contexts(client.app.routes)  # type: ignore[attr-defined]
    return [c for c in contexts if isinstance(c.original_route, APIRoute)]


def _access_declarations(route: Any) -> list[Access]:
    found: list[Access] = []

    def walk(dependant: Any) -> None:
        for dep in dependant.dependencies:
            if isinstance(dep.call, Access):
                found.append(dep.call)
            walk(dep)

    walk(route.dependant)
    return found


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


@pytest.fixture
def app_client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def test_every_route_declares_its_access(app_client: TestClient) -> None:
    routes = _api_routes(app_client)
    assert len(routes) > 30
    undeclared = [r.path for r in routes if len(_access_declarations(r)) != 1]
    assert undeclared == [], f"routes without exactly one access declaration: {undeclared}"
    mounts = [r.path for r in app_client.app.routes if isinstance(r, Mount)]  # type: ignore[attr-defined]
    assert mounts == ["/web"], "only the web map's static files may be mounted"


def test_anonymous_callers_get_401_except_on_public_routes(app_client: TestClient) -> None:
    seen_public = set()
    checked = 0
    for route in _api_routes(app_client):
        declaration = _access_declarations(route)[0]
        for method in route.methods:
            key = (method, route.path)
            if not declaration.login:
                assert key in PUBLIC_ROUTES, f"{method} {route.path} is public but not in the reviewed list"
                seen_public.add(key)
                continue
            response = app_client.request(method, _concrete(route.path))
            checked += 1
            assert response.status_code == 401, f"{method} {route.path} answered {response.status_code} anonymously"
            assert response.json()["error"] == "not_authenticated"
            assert response.headers["www-authenticate"] == "Bearer"
    assert checked > 30
    assert seen_public == set(PUBLIC_ROUTES)


def test_docs_and_static_files_are_reachable(app_client: TestClient) -> None:
    assert app_client.get("/openapi.json").status_code == 200
    assert app_client.get("/").status_code == 200


@pytest.mark.parametrize(
    ("role", "path", "allowed"),
    [
        ("viewer", "/api/v1/layers", True),
        ("viewer", "/api/v1/checks", False),
        ("viewer", "/api/v1/users", False),
        ("viewer", "/api/v1/audit", False),
        ("planner", "/api/v1/checks", True),
        ("planner", "/api/v1/users", False),
        ("planner", "/api/v1/audit", False),
        ("admin", "/api/v1/users", True),
        ("admin", "/api/v1/audit", True),
    ],
)
def test_roles(app_client: TestClient, engine: Engine, role: str, path: str, allowed: bool, mark: int) -> None:
    response = app_client.get(path, headers=auth_headers(engine, role))
    assert response.status_code == (200 if allowed else 403), response.text
    if not allowed:
        assert response.json()["error"] == "forbidden"
        denied = audit_entries(engine, "access.denied", mark)
        assert denied[-1]["actor"] == f"test-{role}" and denied[-1]["outcome"] == "denied"


def test_viewer_may_not_run_a_check(app_client: TestClient, engine: Engine) -> None:
    response = app_client.post("/api/v1/checks", json={"geometry": PARCEL}, headers=auth_headers(engine, "viewer"))
    assert response.status_code == 403
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM check_record")).scalar_one() == 0


@pytest.fixture
def mark(engine: Engine) -> int:
    """The newest audit entry before the test."""
    return audit_mark(engine)


def test_web_login_sets_a_session_cookie_and_logout_ends_it(app_client: TestClient, engine: Engine, mark: int) -> None:
    ensure_user(engine, "planner", "planner01")
    wrong = app_client.post("/api/v1/auth/login", json={"username": "planner01", "password": "nope-nope-1"})
    assert wrong.status_code == 401 and "wrong username or password" in wrong.json()["message"]
    unknown = app_client.post("/api/v1/auth/login", json={"username": "nobody", "password": TEST_PASSWORD})
    assert unknown.json()["message"] == wrong.json()["message"]  # no hint which of the two was wrong

    response = app_client.post("/api/v1/auth/login", json={"username": "PLANNER01", "password": TEST_PASSWORD})
    assert response.status_code == 200, response.text
    cookie = response.headers["set-cookie"]
    assert SESSION_COOKIE in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    token = app_client.cookies[SESSION_COOKIE]
    with engine.connect() as conn:  # only the hash is stored
        stored = conn.execute(
            text("SELECT count(*) FROM user_session WHERE token_hash = :h"), {"h": accounts.token_hash(token)}
        ).scalar_one()
    assert stored == 1
    me = app_client.get("/api/v1/auth/me").json()
    assert me["name"] == "planner01" and me["role"] == "planner" and "checks:run" in me["permissions"]

    assert app_client.post("/api/v1/auth/logout").json() == {"logged_out": True}
    app_client.cookies.set(SESSION_COOKIE, token)  # a copy of the old cookie no longer works
    assert app_client.get("/api/v1/auth/me").status_code == 401

    logins = audit_entries(engine, "auth.login", mark)
    assert [(e["actor"], e["outcome"]) for e in logins] == [
        ("planner01", "failed"),
        ("nobody", "failed"),
        ("planner01", "ok"),
    ]
    assert logins[0]["ip"] == "testclient"
    assert audit_entries(engine, "auth.logout", mark)[0]["actor"] == "planner01"


def test_oauth2_password_flow_gives_a_short_lived_bearer_token(
    app_client: TestClient, engine: Engine, settings: Settings
) -> None:
    ensure_user(engine, "viewer", "leader")
    response = app_client.post("/api/v1/auth/token", data={"username": "leader", "password": TEST_PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == settings.access_token_minutes * 60
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert app_client.get("/api/v1/auth/me", headers=headers).json()["role"] == "viewer"
    with engine.begin() as conn:  # expire it
        conn.execute(text("UPDATE user_session SET expires_at = now() - interval '1 s'"))
    app_client.app.state.authenticator.clear()  # type: ignore[attr-defined]
    assert app_client.get("/api/v1/auth/me", headers=headers).status_code == 401


def test_logout_ends_a_bearer_token_but_not_an_api_key(app_client: TestClient, engine: Engine) -> None:
    ensure_user(engine, "viewer", "leader")
    token = app_client.post("/api/v1/auth/token", data={"username": "leader", "password": TEST_PASSWORD})
    bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
    assert app_client.post("/api/v1/auth/logout", headers=bearer).json() == {"logged_out": True}
    assert app_client.get("/api/v1/auth/me", headers=bearer).status_code == 401

    _record, secret = accounts.create_api_key(engine, name="approval system", actor=cli_actor())
    for key in ({"Authorization": f"Bearer {secret}"}, {"X-API-Key": secret}):
        assert app_client.post("/api/v1/auth/logout", headers=key).json() == {"logged_out": False}
        assert app_client.get("/api/v1/auth/me", headers=key).status_code == 200  # revoked by an admin only


def test_disabled_account_cannot_log_in_and_loses_its_sessions(
    app_client: TestClient, engine: Engine, settings: Settings
) -> None:
    headers = auth_headers(engine, "planner", "leaving")
    assert app_client.get("/api/v1/checks", headers=headers).status_code == 200
    accounts.update_user(engine, settings, "leaving", actor=cli_actor(), is_active=False)
    app_client.app.state.authenticator.clear()  # type: ignore[attr-defined]
    assert app_client.get("/api/v1/checks", headers=headers).status_code == 401
    login = app_client.post("/api/v1/auth/login", json={"username": "leaving", "password": TEST_PASSWORD})
    assert login.status_code == 401 and "disabled" in login.json()["message"]


def test_api_key_scopes_expiry_and_revocation(app_client: TestClient, engine: Engine, mark: int) -> None:
    record, secret = accounts.create_api_key(engine, name="审批系统", actor=cli_actor(), scopes=["checks:read"])
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT secret_hash, prefix FROM api_key")).one()
    assert secret not in stored.secret_hash and stored.secret_hash == accounts.token_hash(secret)
    assert record["prefix"] == f"gpk_{stored.prefix}" and secret.startswith(record["prefix"] + "_")

    by_header = {"X-API-Key": secret}
    by_bearer = {"Authorization": f"Bearer {secret}"}
    assert app_client.get("/api/v1/checks", headers=by_header).status_code == 200
    assert app_client.get("/api/v1/checks", headers=by_bearer).status_code == 200
    assert app_client.post("/api/v1/checks", json={"geometry": PARCEL}, headers=by_header).status_code == 403
    assert app_client.get("/api/v1/dashboard", headers=by_header).status_code == 403  # keys never get it

    wrong = secret[:-4] + ("aaaa" if not secret.endswith("aaaa") else "bbbb")
    assert app_client.get("/api/v1/checks", headers={"X-API-Key": wrong}).status_code == 401

    accounts.revoke_api_key(engine, record["prefix"], cli_actor())
    app_client.app.state.authenticator.clear()  # type: ignore[attr-defined]
    assert app_client.get("/api/v1/checks", headers=by_header).status_code == 401

    _r, expiring = accounts.create_api_key(
        engine, name="expiring", actor=cli_actor(), expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    )
    assert app_client.get("/api/v1/checks", headers={"X-API-Key": expiring}).status_code == 200
    with engine.begin() as conn:
        conn.execute(text("UPDATE api_key SET expires_at = now() - interval '1 s' WHERE name = 'expiring'"))
    app_client.app.state.authenticator.clear()  # type: ignore[attr-defined]
    assert app_client.get("/api/v1/checks", headers={"X-API-Key": expiring}).status_code == 401
    assert [e["action"] for e in audit_entries(engine, "api_key.create", mark)] == ["api_key.create"] * 2
    assert audit_entries(engine, "api_key.revoke", mark)[0]["target"] == record["prefix"].join(["api_key:", ""])


@pytest.mark.parametrize(
    "header",
    [{"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer "}, {"X-API-Key": ""},
     {"Authorization": "Bearer ' OR 1=1 --"}, {"X-API-Key": "gpk_00000000_" + "x" * 40}],
)  # fmt: skip
def test_malformed_credentials_are_401(app_client: TestClient, header: dict[str, str]) -> None:
    response = app_client.get("/api/v1/layers", headers=header)
    assert response.status_code == 401 and response.json()["error"] == "not_authenticated"


def test_admin_manages_users_and_keys_over_http(app_client: TestClient, engine: Engine) -> None:
    admin = auth_headers(engine, "admin")
    weak = app_client.post(
        "/api/v1/users", json={"username": "p2", "password": "short", "role": "planner"}, headers=admin
    )
    assert weak.status_code == 422 and "password too short" in weak.json()["message"]
    created = app_client.post(
        "/api/v1/users", json={"username": "p2", "password": "Good-password-9", "role": "planner"}, headers=admin
    )
    assert created.status_code == 201 and created.json()["role"] == "planner"
    again = app_client.post(
        "/api/v1/users", json={"username": "P2", "password": "Good-password-9", "role": "viewer"}, headers=admin
    )
    assert again.status_code == 422 and "already exists" in again.json()["message"]
    changed = app_client.patch("/api/v1/users/p2", json={"role": "viewer"}, headers=admin)
    assert changed.status_code == 200 and changed.json()["role"] == "viewer"
    assert app_client.patch("/api/v1/users/nobody", json={"role": "viewer"}, headers=admin).status_code == 404

    key = app_client.post("/api/v1/api-keys", json={"name": "不动产登记系统"}, headers=admin)
    assert key.status_code == 201
    secret = key.json()["secret"]
    assert app_client.get("/api/v1/checks", headers={"X-API-Key": secret}).status_code == 200
    listed = app_client.get("/api/v1/api-keys", headers=admin).json()["api_keys"]
    assert [k["name"] for k in listed] == ["不动产登记系统"] and "secret" not in listed[0]
    assert app_client.delete(f"/api/v1/api-keys/{key.json()['prefix']}", headers=admin).json()["status"] == "revoked"
    assert app_client.get("/api/v1/checks", headers={"X-API-Key": secret}).status_code == 401
    bad_scope = app_client.post("/api/v1/api-keys", json={"name": "x", "scopes": ["users:admin"]}, headers=admin)
    assert bad_scope.status_code == 422 and "scopes" in bad_scope.json()["message"]

    actions = [e["action"] for e in app_client.get("/api/v1/audit?limit=50", headers=admin).json()["items"]]
    for action in ("user.create", "user.update", "api_key.create", "api_key.revoke"):
        assert action in actions
    csv_text = app_client.get("/api/v1/audit/export.csv?action=user.create", headers=admin).text
    assert csv_text.startswith("\ufeffid,at,actor") and "user:p2" in csv_text


def test_audit_trail_is_append_only(engine: Engine, mark: int) -> None:
    accounts.create_api_key(engine, name="trail", actor=cli_actor())
    for statement in ("UPDATE audit_event SET actor = 'x'", "DELETE FROM audit_event", "TRUNCATE audit_event"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    with engine.begin() as conn:  # even with replication triggers off, as a superuser could do
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        with pytest.raises(DBAPIError, match="append-only"):
            conn.execute(text("DELETE FROM audit_event"))
    assert audit_entries(engine, "api_key.create", mark)[-1]["target"].startswith("api_key:gpk_")


def test_rate_limit_per_user_gives_429_with_retry_after(settings: Settings, engine: Engine) -> None:
    limited = settings.model_copy(update={"rate_limit_user_per_minute": 5})
    with TestClient(create_app(limited), headers=auth_headers(engine, "viewer")) as client:
        statuses = [client.get("/api/v1/layers").status_code for _ in range(7)]
        assert statuses == [200] * 5 + [429] * 2
        refused = client.get("/api/v1/layers")
        assert refused.json()["error"] == "rate_limited" and int(refused.headers["retry-after"]) >= 1
        # another user is not affected
        assert client.get("/api/v1/layers", headers=auth_headers(engine, "planner")).status_code == 200


def test_login_attempts_are_rate_limited(settings: Settings, engine: Engine) -> None:
    ensure_user(engine, "planner", "target")
    limited = settings.model_copy(update={"login_attempts_per_minute": 3})
    with TestClient(create_app(limited)) as client:
        statuses = [
            client.post("/api/v1/auth/login", json={"username": "target", "password": f"guess-{i}"}).status_code
            for i in range(5)
        ]
    assert statuses == [401, 401, 401, 429, 429]


def test_anonymous_read_only_map_when_opened(settings: Settings, engine: Engine) -> None:
    opened = settings.model_copy(update={"anonymous_read": True})
    with TestClient(create_app(opened)) as client:
        assert client.get("/api/v1/layers").status_code == 200
        assert client.get("/api/v1/checks").status_code == 401  # still no check records
        assert client.post("/api/v1/checks", json={"geometry": PARCEL}).status_code == 401


def test_cli_user_and_key_commands(
    settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch, mark: int
) -> None:
    from typer.testing import CliRunner

    from gis_platform.cli import app

    monkeypatch.setenv("GIS_DATABASE_URL", settings.database_url)
    runner = CliRunner()
    added = runner.invoke(app, ["user", "add", "ops", "--role", "admin", "--password-stdin"], input="Ops-password-1\n")
    assert added.exit_code == 0, added.output
    accounts.verify_login(engine, "ops", "Ops-password-1")
    bad = runner.invoke(app, ["user", "add", "ops2", "--role", "boss", "--password-stdin"], input="Ops-password-1\n")
    assert bad.exit_code == 2 and "unknown role 'boss'" in bad.output
    created = runner.invoke(app, ["key", "create", "OA 系统", "--expires-days", "30"])
    assert created.exit_code == 0, created.output
    secret = created.output.strip().splitlines()[-1]
    assert accounts.Authenticator(engine, settings).principal(secret).name == "key:OA 系统"
    revoked = runner.invoke(app, ["key", "revoke", secret.split("_")[0] + "_" + secret.split("_")[1]])
    assert revoked.exit_code == 0, revoked.output
    with pytest.raises(accounts.AuthenticationError):
        accounts.Authenticator(engine, settings).principal(secret)
    entries = audit_entries(engine, "user.create", mark)
    assert entries[-1]["actor"].startswith("cli:") and entries[-1]["actor_kind"] == "cli"


def test_changing_my_password_ends_my_sessions(app_client: TestClient, engine: Engine, mark: int) -> None:
    ensure_user(engine, "planner", "mover")
    login = app_client.post("/api/v1/auth/login", json={"username": "mover", "password": TEST_PASSWORD})
    assert login.status_code == 200
    wrong = app_client.post(
        "/api/v1/auth/password", json={"current_password": "not-it-1234", "new_password": "New-password-2"}
    )
    assert wrong.status_code == 401
    weak = app_client.post("/api/v1/auth/password", json={"current_password": TEST_PASSWORD, "new_password": "abc"})
    assert weak.status_code == 422 and "too short" in weak.json()["message"]
    changed = app_client.post(
        "/api/v1/auth/password", json={"current_password": TEST_PASSWORD, "new_password": "New-password-2"}
    )
    assert changed.status_code == 200
    assert app_client.get("/api/v1/auth/me").status_code == 401  # the session ended with the old password
    assert (
        app_client.post("/api/v1/auth/login", json={"username": "mover", "password": TEST_PASSWORD}).status_code == 401
    )
    again = app_client.post("/api/v1/auth/login", json={"username": "mover", "password": "New-password-2"})
    assert again.status_code == 200
    update = audit_entries(engine, "user.update", mark)[-1]
    assert update["actor"] == "mover" and update["details"] == {"password_hash": "***"}


def test_api_keys_have_no_password(app_client: TestClient, engine: Engine) -> None:
    _record, secret = accounts.create_api_key(engine, name="no-password", actor=cli_actor())
    response = app_client.post(
        "/api/v1/auth/password",
        json={"current_password": "x", "new_password": "New-password-2"},
        headers={"X-API-Key": secret},
    )
    assert response.status_code == 403


def test_the_last_admin_cannot_be_disabled_or_demoted(engine: Engine, settings: Settings) -> None:
    ensure_user(engine, "admin", "only-admin")
    for change in ({"is_active": False}, {"role": "planner"}):
        with pytest.raises(accounts.AccountError, match="last active admin"):
            accounts.update_user(engine, settings, "only-admin", actor=cli_actor(), **change)
    ensure_user(engine, "admin", "second-admin")
    accounts.update_user(engine, settings, "only-admin", actor=cli_actor(), role="planner")  # now allowed
    with pytest.raises(accounts.AccountError, match="last active admin"):
        accounts.update_user(engine, settings, "second-admin", actor=cli_actor(), is_active=False)


def test_responses_carry_security_headers(app_client: TestClient) -> None:
    for path in ("/", "/api/v1/health/live", "/api/v1/layers"):
        headers = app_client.get(path).headers
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "SAMEORIGIN" and headers["referrer-policy"] == "same-origin"


def test_a_report_link_opened_without_a_session_goes_back_to_the_login(app_client: TestClient) -> None:
    url = "/api/v1/checks/00000000-0000-0000-0000-000000000000/report.html"
    page = app_client.get(url, headers={"Accept": "text/html,application/xhtml+xml"}, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/"
    fetched = app_client.get(url, headers={"Accept": "text/html", "Sec-Fetch-Mode": "cors"}, follow_redirects=False)
    assert fetched.status_code == 401  # the web map's own fetches still get the JSON 401
    assert app_client.get(url, follow_redirects=False).status_code == 401  # scripts too


def test_demo_accounts_are_labelled_private_and_kept_while_valid(
    engine: Engine, settings: Settings, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    import stat

    from gis_platform.cli_admin import ensure_demo_accounts

    monkeypatch.setenv("GIS_DATABASE_URL", settings.database_url)
    path = tmp_path / "var" / "demo-credentials.json"
    first = ensure_demo_accounts(engine, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert {(a["username"], a["role"]) for a in first["accounts"]} == {
        ("demo-admin", "admin"), ("demo-planner", "planner"), ("demo-viewer", "viewer")
    }  # fmt: skip
    for account in first["accounts"]:
        user = accounts.verify_login(engine, account["username"], account["password"])
        assert "DEMO" in user["display_name"] and user["role"] == account["role"]
    key = first["api_key"]["secret"]
    assert accounts.Authenticator(engine, settings).principal(key).role == "approval"

    again = ensure_demo_accounts(engine, path)  # still valid: nothing changes
    assert again["accounts"] == first["accounts"] and again["api_key"]["secret"] == key
    assert json.loads(path.read_text(encoding="utf-8")) == again

    accounts.update_user(engine, settings, "demo-viewer", actor=cli_actor(), password="Changed-by-someone-1")
    repaired = ensure_demo_accounts(engine, path)  # a changed password is replaced and written down
    viewer = next(a for a in repaired["accounts"] if a["username"] == "demo-viewer")
    assert viewer["password"] != "Changed-by-someone-1"
    accounts.verify_login(engine, "demo-viewer", viewer["password"])
