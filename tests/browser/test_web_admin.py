"""The administration view (管理) of the web map: users, API keys and the audit trail, for admins only.

Real headless Chromium against the real API: an admin adds a planner (a weak password first: the server's
reason is shown), changes the role, resets the password and disables the account; creates an API key whose
secret is shown once and works, then revokes it; reads the audit trail with filters and exports it as CSV.
A planner and a viewer never see the view, nor ask the API for it.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from typing import Any
from urllib.error import HTTPError
from urllib.parse import parse_qs, urlsplit
from urllib.request import Request, urlopen
from zoneinfo import ZoneInfo

import pytest

from ..helpers import TEST_PASSWORD
from .conftest import NewPage, PageLog, Server, screenshot
from .test_web_map import assert_clean, open_map

pytestmark = [pytest.mark.browser, pytest.mark.db]

Page = Any
ADMIN_PATHS = ("/api/v1/users", "/api/v1/api-keys", "/api/v1/audit")


def open_admin(page: Page, server: Server, tab: str) -> Any:
    """The map, then 管理 and one of its tabs; returns that tab's panel once its list has loaded."""
    open_map(page, server)
    view = page.locator('[data-view="admin"]')
    assert view.inner_text() == "管理"
    view.click()
    page.locator(f'[data-admin-tab="{tab}"]').click()
    panel = page.locator(f'[data-admin-panel="{tab}"]')
    panel.locator("table.admin-table, p.empty").first.wait_for()
    return panel


def status_of(url: str, headers: dict[str, str] | None = None, body: dict[str, Any] | None = None) -> int:
    """The HTTP status of a request made outside the browser (another client: no cookie of the page)."""
    data = json.dumps(body).encode() if body is not None else None
    request = Request(url, data=data, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urlopen(request, timeout=30) as response:
            return int(response.status)
    except HTTPError as exc:
        return int(exc.code)


def wait_text(locator: Any, text: str, timeout_s: float = 10) -> None:
    """Wait until the element (found again at each try: lists are redrawn) shows exactly ``text``."""
    deadline = time.monotonic() + timeout_s
    while (shown := locator.inner_text().strip()) != text:
        assert time.monotonic() < deadline, f"{shown!r} != {text!r}"
        time.sleep(0.05)


def accept_next_dialog(page: Page) -> list[str]:
    """Accept the next confirm(); the messages it showed are collected in the returned list."""
    seen: list[str] = []

    def accept(dialog: Any) -> None:
        seen.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    return seen


def test_admin_adds_a_planner_changes_and_disables_the_account(page: tuple[Page, PageLog], server: Server) -> None:
    pg, log = page
    everyone = server.get("/api/v1/users")["users"]
    panel = open_admin(pg, server, "users")
    assert pg.locator('[data-admin-tab="users"]').inner_text() == "用户"
    assert panel.locator("tr[data-user]").count() == len(everyone) > 0
    form = panel.locator('form[data-form="new-user"]')
    name = f"web-new-{uuid.uuid4().hex[:8]}"
    form.locator('input[name="username"]').fill(name)
    form.locator('input[name="display_name"]').fill("王芳 <b>")
    form.locator('select[name="role"]').select_option("planner")
    # a weak password: the server's own reason, next to the password
    form.locator('input[name="password"]').fill("short")
    with pg.expect_response(lambda r: r.url.endswith("/api/v1/users") and r.request.method == "POST") as answer:
        form.locator('button[type="submit"]').click()
    assert answer.value.status == 422
    message = answer.value.json()["message"]
    error = form.locator('[data-error-for="password"]')
    error.wait_for()
    assert error.inner_text() == message
    assert form.locator('input[name="password"]').get_attribute("aria-invalid") == "true"
    assert panel.locator(f'tr[data-user="{name}"]').count() == 0
    # a good one: the user is in the list, with the name escaped, the role and never logged in
    form.locator('input[name="password"]').fill(TEST_PASSWORD)
    with pg.expect_response(lambda r: r.url.endswith("/api/v1/users") and r.request.method == "POST") as answer:
        form.locator('button[type="submit"]').click()
    assert answer.value.status == 201
    row = panel.locator(f'tr[data-user="{name}"]')
    row.wait_for()
    assert row.locator('[data-col="display_name"]').inner_text() == "王芳 <b>"
    assert row.locator('select[data-field="role"]').input_value() == "planner"
    assert row.locator("select option:checked").inner_text() == "规划人员"
    assert row.locator('[data-col="status"]').inner_text() == "启用"
    assert row.locator('[data-col="last_login"]').inner_text() == "从未"
    assert form.locator('input[name="username"]').input_value() == ""
    assert form.locator('input[name="password"]').input_value() == ""
    assert panel.locator("[data-admin-status]").inner_text() == f"已新增用户 {name}。"
    screenshot(pg, "21-admin-users")
    # change the role (confirmed)
    seen = accept_next_dialog(pg)
    with pg.expect_response(lambda r: r.url.endswith(f"/api/v1/users/{name}") and r.status == 200):
        row.locator('select[data-field="role"]').select_option("viewer")
    assert seen and name in seen[0] and "领导（只读）" in seen[0]
    wait_text(panel.locator("[data-admin-status]"), f"已将 {name} 的角色改为“领导（只读）”。")
    assert row.locator('select[data-field="role"]').input_value() == "viewer"
    # reset the password: weak first (the server's reason), then a good one, which then logs in
    row.locator('[data-action="reset-password"]').click()
    reset = panel.locator(f'tr[data-reset-for="{name}"] form')
    reset.locator('input[name="password"]').fill("alllowercaseletters")
    with pg.expect_response(lambda r: r.url.endswith(f"/api/v1/users/{name}")) as answer:
        reset.locator('button[type="submit"]').click()
    assert answer.value.status == 422
    reset.locator('[data-error-for="password"]').wait_for()
    assert reset.locator('[data-error-for="password"]').inner_text() == answer.value.json()["message"]
    new_password = TEST_PASSWORD + "-2"
    reset.locator('input[name="password"]').fill(new_password)
    with pg.expect_response(lambda r: r.url.endswith(f"/api/v1/users/{name}") and r.status == 200):
        reset.locator('button[type="submit"]').click()
    panel.locator(f'tr[data-reset-for="{name}"]').wait_for(state="detached")
    login = server.url + "/api/v1/auth/login"
    assert status_of(login, body={"username": name, "password": new_password}) == 200
    # disable: confirmed, shown, and the account no longer logs in
    seen = accept_next_dialog(pg)
    with pg.expect_response(lambda r: r.url.endswith(f"/api/v1/users/{name}") and r.status == 200) as answer:
        row.locator('[data-action="toggle-active"]').click()
    assert answer.value.request.post_data_json == {"is_active": False}
    assert seen and "停用用户" in seen[0]
    wait_text(panel.locator(f'tr[data-user="{name}"] [data-col="status"]'), "已停用")
    assert panel.locator(f'tr[data-user="{name}"] [data-action="toggle-active"]').inner_text() == "启用"
    assert next(u for u in server.get("/api/v1/users")["users"] if u["username"] == name)["is_active"] is False
    assert status_of(login, body={"username": name, "password": new_password}) == 401
    # the page's own admin cannot disable or demote itself
    own = panel.locator("tr[data-user]", has_text="（本人）")
    assert own.count() == 1
    assert own.locator('[data-action="toggle-active"]').is_disabled()
    assert own.locator('select[data-field="role"]').is_disabled()
    # English
    pg.locator('[data-lang="en"]').click()
    assert [pg.locator(f'[data-admin-tab="{t}"]').inner_text() for t in ("users", "keys", "audit")] == [
        "Users",
        "API keys",
        "Audit trail",
    ]
    assert pg.locator('[data-view="admin"]').inner_text() == "Administration"
    assert panel.locator(f'tr[data-user="{name}"] [data-col="status"]').inner_text() == "disabled"
    pg.locator('[data-lang="zh"]').click()
    assert_clean(log, allow_status=(422,))


def test_admin_creates_an_api_key_sees_the_secret_once_and_revokes_it(
    page: tuple[Page, PageLog], server: Server
) -> None:
    pg, log = page
    panel = open_admin(pg, server, "keys")
    form = panel.locator('form[data-form="new-key"]')
    scopes = form.locator('input[name="scopes"]')
    assert [scopes.nth(i).get_attribute("value") for i in range(scopes.count())] == [
        "map:read",
        "checks:read",
        "checks:run",
        "reports:read",
        "batch:run",
    ]
    name = f"不动产登记系统 {uuid.uuid4().hex[:6]}"
    form.locator('input[name="name"]').fill(name)
    form.locator('input[name="scopes"][value="batch:run"]').uncheck()
    expiry = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    form.locator('input[name="expires_at"]').fill(expiry)
    form.locator('input[name="rate_limit_per_minute"]').fill("600")
    with pg.expect_response(lambda r: r.url.endswith("/api/v1/api-keys") and r.request.method == "POST") as answer:
        form.locator('button[type="submit"]').click()
    assert answer.value.status == 201
    sent = answer.value.request.post_data_json
    assert sent["scopes"] == ["map:read", "checks:read", "checks:run", "reports:read"]
    assert sent["rate_limit_per_minute"] == 600
    created = answer.value.json()
    secret, prefix = created["secret"], created["prefix"]
    assert secret.startswith(prefix + "_")
    # the secret, once, in a copyable box with the warning
    box = panel.locator("[data-secret-box]")
    box.wait_for()
    assert box.locator('input[name="secret"]').input_value() == secret
    assert "只显示这一次" in box.inner_text()
    row = panel.locator(f'tr[data-key="{prefix}"]')
    row.wait_for()
    assert row.locator('[data-col="status"]').inner_text() == "有效"
    assert row.locator('[data-col="scopes"] .chip').all_inner_texts() == sorted(sent["scopes"])
    assert row.locator('[data-col="expires"]').inner_text().startswith(expiry)
    assert row.locator('[data-col="last_used"]').inner_text() == "从未"
    screenshot(pg, "22-admin-key-secret")
    me = server.url + "/api/v1/auth/me"
    assert status_of(me, {"Authorization": f"Bearer {secret}"}) == 200
    pg.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    box.locator('[data-action="copy-secret"]').click()
    wait_text(box.locator("[data-copy-status]"), "已复制到剪贴板。")
    assert pg.evaluate("navigator.clipboard.readText()") == secret
    box.locator('[data-action="close-secret"]').click()
    assert box.is_hidden()
    assert box.locator('input[name="secret"]').input_value() == ""
    assert secret not in pg.content()
    assert secret not in pg.evaluate("JSON.stringify({...localStorage, ...sessionStorage})")
    # the list reloaded: no secret in it, ever
    with pg.expect_response(lambda r: r.url.endswith("/api/v1/api-keys") and r.request.method == "GET") as listed:
        pg.locator('[data-admin-tab="users"]').click()
        pg.locator('[data-admin-tab="keys"]').click()
    assert secret not in listed.value.text()
    # revoke: asked first (dismissed: nothing happens), then confirmed
    pg.once("dialog", lambda d: d.dismiss())
    row.locator('[data-action="revoke"]').click()
    assert status_of(me, {"Authorization": f"Bearer {secret}"}) == 200
    seen = accept_next_dialog(pg)
    with pg.expect_response(lambda r: r.url.endswith(f"/api/v1/api-keys/{prefix}") and r.status == 200) as answer:
        row.locator('[data-action="revoke"]').click()
    assert answer.value.request.method == "DELETE"
    assert seen and prefix in seen[0] and name in seen[0]
    wait_text(row.locator('[data-col="status"]'), "已吊销")
    assert row.locator('[data-action="revoke"]').count() == 0
    assert panel.locator("[data-admin-status]").inner_text() == f"已吊销密钥 {prefix}。"
    assert status_of(me, {"Authorization": f"Bearer {secret}"}) == 401
    assert_clean(log)


def test_audit_trail_shows_the_user_create_entry_and_exports_the_filtered_csv(
    new_page: NewPage, server: Server
) -> None:
    name = f"web-audited-{uuid.uuid4().hex[:8]}"
    server.post("/api/v1/users", {"username": name, "password": TEST_PASSWORD, "role": "viewer"})
    actor = server.get("/api/v1/auth/me")["name"]
    entry = server.get(f"/api/v1/audit?action=user.create&actor={actor}&limit=10")
    stored = next(e for e in entry["items"] if e["target"] == f"user:{name}")
    zone = ZoneInfo("Asia/Shanghai")
    pg, log = new_page("admin", timezone="Asia/Shanghai")
    panel = open_admin(pg, server, "audit")
    assert pg.locator('[data-admin-tab="audit"]').inner_text() == "审计日志"
    # the newest first, the page's own login among them
    assert panel.locator("tr[data-event]").first.locator('[data-col="action"] code').inner_text() != ""
    filters = panel.locator("form.audit-filters")
    filters.locator('input[name="actor"]').fill(actor)
    filters.locator('input[name="action"]').fill("user.create")
    filters.locator('select[name="outcome"]').select_option("ok")
    today = dt.datetime.now(zone).date()
    filters.locator('input[name="since"]').fill(today.isoformat())
    filters.locator('input[name="until"]').fill(today.isoformat())
    filtered = lambda r: "/api/v1/audit?" in r.url and "until=" in r.url and "outcome=ok" in r.url  # noqa: E731
    with pg.expect_response(filtered) as answer:
        filters.locator('button[type="submit"]').click()
    query = parse_qs(urlsplit(answer.value.url).query)
    midnight = dt.datetime.combine(today, dt.time(), zone)
    assert query["since"] == [midnight.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")]
    assert query["until"] == [(midnight + dt.timedelta(days=1)).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")]
    row = panel.locator(f'tr[data-event="{stored["id"]}"]')
    row.wait_for()
    assert row.locator('[data-col="actor"]').inner_text() == actor
    assert row.locator('[data-col="role"]').inner_text() == "管理员"
    assert row.locator('[data-col="action"]').inner_text().split() == ["user.create", "新增用户"]
    assert row.locator('[data-col="target"]').inner_text() == f"user:{name}"
    assert row.locator('[data-col="outcome"]').inner_text() == "成功"
    local = dt.datetime.fromisoformat(stored["at"]).astimezone(zone)  # the time in the browser's time zone
    assert row.locator('[data-col="at"]').inner_text() == local.strftime("%Y-%m-%d %H:%M:%S")
    total = answer.value.json()["total"]
    assert panel.locator("[data-range]").inner_text().endswith(f"共 {total} 条")
    for item in answer.value.json()["items"]:
        assert item["action"] == "user.create" and item["actor"] == actor and item["outcome"] == "ok"
    screenshot(pg, "23-admin-audit")
    # 导出 CSV: a plain link carrying the same filters; the page's cookie opens it
    link = panel.locator("[data-audit-csv]")
    assert link.inner_text() == "导出 CSV"
    href = link.get_attribute("href")
    assert href.startswith("/api/v1/audit/export.csv?")
    assert parse_qs(urlsplit(href).query) == {k: v for k, v in query.items() if k not in ("limit", "offset")}
    csv = pg.context.request.get(server.url + href)
    assert csv.status == 200 and csv.headers["content-type"].startswith("text/csv")
    lines = csv.text().lstrip("\ufeff").splitlines()
    assert lines[0].startswith("id,at,actor")
    assert any(f"user:{name}" in line for line in lines[1:])
    assert all(",user.create," in line for line in lines[1:])
    # a date range the wrong way round is said, not sent
    filters.locator('input[name="since"]').fill((today + dt.timedelta(days=2)).isoformat())
    assert panel.locator('[data-error-for="dates"]').inner_text() == "截止日期不能早于起始日期。"
    assert_clean(log)


@pytest.mark.parametrize("role", ["planner", "viewer"])
def test_planner_and_viewer_do_not_see_the_admin_view(new_page: NewPage, server: Server, role: str) -> None:
    pg, log = new_page(role)
    open_map(pg, server, "/#admin")
    assert pg.locator('[data-view="admin"]').is_hidden()
    assert pg.locator("#view-admin").is_hidden()
    assert pg.locator("#view-map").is_visible()
    assert not [u for u in log.requests if any(p in u for p in ADMIN_PATHS)]
    assert not [u for u, status in log.responses if status == 403]
    assert_clean(log)
