"""Logging in to the web map, roles in the interface, and what the page does when access is refused.

Real headless Chromium against the real API: the login form, logout, a viewer's read-only map, a session
that ends while the map is open, 403 / 429 answers, and the anonymous read-only map (GIS_ANONYMOUS_READ).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from ..helpers import TEST_PASSWORD, ensure_user
from .conftest import NewPage, PageLog, Server, screenshot
from .test_web_map import assert_clean, number, open_map

pytestmark = [pytest.mark.browser, pytest.mark.db]

Page = Any
CHECK_TABS = ("check", "history", "conflicts")
WRONG = "用户名或密码错误 / wrong username or password"


def wait_for_login_screen(page: Page) -> Any:
    screen = page.locator("#login")
    screen.wait_for(state="visible")
    return screen


def log_in_with_form(page: Page, username: str, password: str = TEST_PASSWORD) -> None:
    form = page.locator("#login form")
    form.locator('input[name="username"]').fill(username)
    form.locator('input[name="password"]').fill(password)
    form.locator('button[type="submit"]').click()


def visible_tabs(page: Page) -> list[str]:
    return [b.get_attribute("data-tab") for b in page.locator("[data-tab]").all() if b.is_visible()]


def me_status(page: Page, server: Server) -> int:
    """GET /api/v1/auth/me with the page's own cookies."""
    return int(page.context.request.get(server.url + "/api/v1/auth/me").status)


def no_secret_in_storage(page: Page) -> None:
    stored = page.evaluate("JSON.stringify({local: {...localStorage}, session: {...sessionStorage}})")
    assert TEST_PASSWORD not in stored
    assert "gis_session" not in page.evaluate("document.cookie")  # the session cookie is HttpOnly


def test_login_form_wrong_password_login_and_logout(new_page: NewPage, server: Server) -> None:
    pg, log = new_page(None)
    user = ensure_user(server.engine, "planner", "web-login-form")
    pg.goto(server.url + "/")
    screen = wait_for_login_screen(pg)
    assert screen.locator("h2").inner_text() == "用户登录"
    assert pg.locator('#map[data-ready="true"]').count() == 0
    assert visible_tabs(pg) == ["layers"]
    # the language switch stays usable on the login screen
    pg.locator('[data-lang="en"]').click()
    assert screen.locator("h2").inner_text() == "Log in"
    assert screen.locator('button[type="submit"]').inner_text() == "Log in"
    pg.locator('[data-lang="zh"]').click()
    # nothing typed: said before any request
    screen.locator('button[type="submit"]').click()
    assert screen.locator('[data-error-for="login"]').inner_text() == "请输入用户名和密码。"
    # a wrong password: the server's message, and the password field is emptied
    with pg.expect_response(lambda r: r.url.endswith("/api/v1/auth/login") and r.status == 401) as answer:
        log_in_with_form(pg, user["username"], "not-the-password")
    assert answer.value.json()["message"] == WRONG
    error = screen.locator('[data-error-for="login"]')
    error.wait_for()
    assert error.inner_text() == WRONG
    assert screen.locator('input[name="password"]').input_value() == ""
    screenshot(pg, "11-login-wrong-password")
    # the right one: the map, the user's name and role in the header, the planner's tools
    log_in_with_form(pg, user["username"])
    pg.wait_for_selector('#map[data-ready="true"]', state="attached")
    assert screen.is_hidden()
    account = pg.locator("#account")
    assert account.locator("[data-account-name]").inner_text() == "测试 planner"
    assert account.locator("[data-account-role]").inner_text() == "规划人员"
    assert visible_tabs(pg) == ["layers", *CHECK_TABS]
    assert pg.locator('[data-view="dashboard"]').is_visible()
    pg.wait_for_function("window.gisFirstTiles > 0")
    no_secret_in_storage(pg)
    screenshot(pg, "12-logged-in")
    # 退出登录: the session ends on the server, and the login screen is back
    with pg.expect_response(lambda r: r.url.endswith("/api/v1/auth/logout") and r.status == 200):
        account.locator('[data-action="logout"]').click()
    wait_for_login_screen(pg)
    assert me_status(pg, server) == 401
    assert pg.locator('#map[data-ready="true"]').count() == 0
    no_secret_in_storage(pg)
    assert_clean(log, allow_status=(401,))


def test_viewer_sees_the_map_and_dashboard_but_no_check_tools(new_page: NewPage, server: Server) -> None:
    pg, log = new_page("viewer")
    open_map(pg, server)
    account = pg.locator("#account")
    assert account.locator("[data-account-role]").inner_text() == "领导（只读）"
    assert account.locator('[data-action="logout"]').is_visible()
    assert visible_tabs(pg) == ["layers"]
    for tab in CHECK_TABS:
        assert pg.locator(f'[data-tab="{tab}"]').is_hidden(), tab
    assert pg.locator("#check-panel").is_hidden() and pg.locator("#conflicts-panel").is_hidden()
    pg.wait_for_function("window.gisFirstTiles > 0")
    # the dashboard works, with the API's numbers
    pg.locator('[data-view="dashboard"]').click()
    pg.wait_for_selector('#dashboard[data-charts="2"]', state="attached")
    data = server.get("/api/v1/dashboard")
    for indicator in data["indicators"]:
        shown = pg.locator(f'.card[data-indicator="{indicator["code"]}"] [data-value]').inner_text()
        assert shown == "—" if indicator["value"] is None else number(shown) == indicator["value"]
    screenshot(pg, "13-viewer-dashboard")
    pg.locator('[data-lang="en"]').click()
    assert account.locator("[data-account-role]").inner_text() == "Leadership (read only)"
    assert account.locator('[data-action="logout"]').inner_text() == "Log out"
    # nothing the viewer may not do was asked of the API
    assert not [u for u, status in log.responses if status == 403]
    assert_clean(log)


def test_an_ended_session_brings_the_login_screen_back(new_page: NewPage, server: Server) -> None:
    username = "web-planner-session-ends"
    pg, log = new_page("planner", username=username)
    open_map(pg, server)
    pg.wait_for_function("window.gisFirstTiles > 0")
    pg.wait_for_load_state("networkidle")  # the first view is drawn: the next request is the user's action
    server.end_sessions(username)  # expired or revoked: the cookie no longer opens anything
    with pg.expect_response(lambda r: "/api/v1/checks" in r.url and r.status == 401):
        pg.locator('[data-tab="history"]').click()
    screen = wait_for_login_screen(pg)
    assert screen.locator("[data-login-reason]").inner_text() == "登录已失效，请重新登录。"
    assert screen.locator('[data-action="cancel-login"]').is_hidden()
    screenshot(pg, "14-session-ended")
    # logging in again continues where the user was: the map is still there, the history loads
    log_in_with_form(pg, username)
    screen.wait_for(state="hidden")
    assert pg.locator('#map[data-ready="true"]').count() == 1
    with pg.expect_response(lambda r: "/api/v1/checks" in r.url and r.status == 200):
        pg.locator('[data-tab="layers"]').click()
        pg.locator('[data-tab="history"]').click()
    pg.locator(".history-list table, .history-list p.muted").first.wait_for()
    assert pg.locator(".history-list .error").count() == 0
    assert me_status(pg, server) == 200
    no_secret_in_storage(pg)
    assert_clean(log, allow_status=(401,))


def test_forbidden_and_rate_limited_answers_are_explained(page: tuple[Page, PageLog], server: Server) -> None:
    pg, log = page
    open_map(pg, server)
    pg.route(
        "**/api/v1/search?*",
        lambda route: route.fulfill(
            status=429,
            headers={"Retry-After": "7", "Content-Type": "application/json"},
            body=json.dumps({"error": "rate_limited", "message": "请求过于频繁 / more than 600 requests per minute"}),
        ),
    )
    pg.route(
        "**/api/v1/dashboard",
        lambda route: route.fulfill(
            status=403,
            content_type="application/json",
            body=json.dumps(
                {"error": "forbidden", "message": "无权访问 / forbidden", "details": {"permission": "dashboard:read"}}
            ),
        ),
    )
    pg.locator("#search input").fill("城关")
    results = pg.locator(".search-results li")
    results.first.wait_for()
    assert results.first.inner_text() == "搜索失败：请求过于频繁，请 7 秒后再试。"
    notice = pg.locator("#notice")
    notice.wait_for()
    assert notice.inner_text() == "请求过于频繁，请 7 秒后再试。"
    pg.locator('[data-view="dashboard"]').click()
    error = pg.locator("#dashboard .error")
    error.wait_for()
    assert error.inner_text() == "无法读取指标：当前账号无权执行此操作（需要权限：dashboard:read）。"
    assert notice.inner_text() == "当前账号无权执行此操作（需要权限：dashboard:read）。"
    # neither is a lost session: no login screen
    assert pg.locator("#login").is_hidden()
    screenshot(pg, "15-forbidden")
    assert_clean(log, allow_status=(403, 429))


def test_anonymous_read_shows_the_map_with_a_login_button(new_page: NewPage, server: Server) -> None:
    user = ensure_user(server.engine, "planner", "web-planner-from-anonymous")
    with server.anonymous_read():
        pg, log = new_page(None)
        open_map(pg, server)
        account = pg.locator("#account")
        assert account.locator("[data-account-name]").inner_text() == "未登录（只读）"
        assert account.locator('[data-action="logout"]').is_hidden()
        assert visible_tabs(pg) == ["layers"]
        assert pg.locator('[data-view="dashboard"]').is_visible()
        pg.wait_for_function("window.gisFirstTiles > 0")
        # 登录 opens the login screen over the map; it can be left without logging in
        account.locator('[data-action="login"]').click()
        screen = wait_for_login_screen(pg)
        screen.locator('[data-action="cancel-login"]').click()
        assert screen.is_hidden()
        account.locator('[data-action="login"]').click()
        log_in_with_form(pg, user["username"])
        screen.wait_for(state="hidden")
        assert account.locator("[data-account-name]").inner_text() == "测试 planner"
        assert visible_tabs(pg) == ["layers", *CHECK_TABS]
        assert me_status(pg, server) == 200
    assert_clean(log, allow_status=(401,))
