"""Real-browser fixtures: a small county in the test database, the real API on a loopback port, headless
Debian Chromium driven by Playwright (no browser download: the system Chromium is launched by path).

The API needs a login: ``page`` is logged in as an admin, ``new_page(role)`` as a user of any role (or nobody),
each through ``POST /api/v1/auth/login`` with the context's own request client, so the page has the cookie."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

import pytest
import shapely
from sqlalchemy import Engine, text

from bench.common import CHROMIUM, CHROMIUM_ARGS, VIEWPORT
from gis_platform.catalog import Catalog
from gis_platform.ingest.pipeline import import_file
from gis_platform.settings import Settings

from ..conftest import empty_layer_store
from ..helpers import TEST_PASSWORD, auth_headers, ensure_user, write_geojson

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
WEB = Path(__file__).resolve().parents[2] / "web"

# A small synthetic county near 114.8°E 34.8°N (zone 38), in EPSG:4490, as in tests/test_checks.py.
TOWN_A = shapely.box(114.70, 34.70, 114.80, 34.90)
TOWN_B = shapely.box(114.80, 34.70, 114.90, 34.90)
FARMLAND = [shapely.box(114.780, 34.800, 114.790, 34.810), shapely.box(114.790, 34.800, 114.800, 34.810)]
ECOLOGY = [shapely.box(114.820, 34.820, 114.840, 34.840), shapely.box(114.830, 34.830, 114.850, 34.850)]
URBAN = [shapely.box(114.750, 34.750, 114.780, 34.780)]
PLAN = [
    shapely.box(114.750, 34.750, 114.765, 34.780),
    shapely.box(114.765, 34.750, 114.780, 34.780),
    shapely.box(114.780, 34.800, 114.800, 34.810),  # residential planned on the farmland: a conflict
]
PLAN_USES = [("0701", "城镇住宅用地"), ("1001", "工业用地"), ("0701", "城镇住宅用地")]
DLTB = [shapely.box(114.780, 34.800, 114.790, 34.810), shapely.box(114.790, 34.800, 114.800, 34.810)]
DLTB_PROPS = [
    {"BSM": "1", "TBBH": "T1", "DLBM": "0103", "DLMC": "旱地", "KCXS": 0.1},
    {"BSM": "2", "TBBH": "T2", "DLBM": "0301", "DLMC": "乔木林地", "KCXS": 0.0},
]
HAZARD_POINTS = [shapely.Point(114.725, 34.725)]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: real headless Chromium against a real server (Playwright)")


@dataclass
class Server:
    """The running API. ``get``/``post`` call it as an admin (a bearer session of the user ``test-admin``)."""

    url: str
    settings: Settings
    engine: Engine
    app: Any = None
    _auth: dict[str, str] = field(default_factory=dict)

    def _headers(self) -> dict[str, str]:
        if not self._auth:
            self._auth.update(auth_headers(self.engine, "admin"))
        return self._auth

    def get(self, path: str) -> Any:
        with urlopen(Request(self.url + path, headers=self._headers()), timeout=30) as response:
            return json.loads(response.read())

    def post(self, path: str, body: dict[str, Any]) -> Any:
        request = Request(
            self.url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", **self._headers()},
            method="POST",
        )
        with urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def end_sessions(self, username: str) -> None:
        """Every session of ``username`` ends now (as if expired), and this server forgets what it had checked."""
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    "DELETE FROM user_session WHERE user_id IN"
                    " (SELECT id FROM app_user WHERE lower(username) = lower(:u))"
                ),
                {"u": username},
            )
        self.app.state.authenticator.clear()

    @contextmanager
    def anonymous_read(self) -> Iterator[None]:
        """GIS_ANONYMOUS_READ=true for the duration (the app reads the setting on every request)."""
        self.app.state.settings.anonymous_read = True
        try:
            yield
        finally:
            self.app.state.settings.anonymous_read = False


@dataclass
class PageLog:
    """Everything a page did that a test may want to assert on."""

    origin: str
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    responses: list[tuple[str, int]] = field(default_factory=list)

    def foreign_requests(self) -> list[str]:
        allowed = urlsplit(self.origin).netloc
        return [u for u in self.requests if not u.startswith(("data:", "blob:")) and urlsplit(u).netloc != allowed]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def web_county(migrated_engine: Engine, catalog: Catalog, settings: Settings, tmp_path_factory: Any) -> Engine:
    """The test database holding the small county (imported through the bureau's import path)."""
    empty_layer_store(migrated_engine)
    with migrated_engine.begin() as conn:  # no queued job of another test module may run in ours
        if conn.execute(text("SELECT to_regclass('job') IS NOT NULL")).scalar():
            conn.execute(text("TRUNCATE job CASCADE"))
    folder = tmp_path_factory.mktemp("web-county")

    def load(code: str, geoms: list[Any], props: list[dict[str, Any]]) -> None:
        path = write_geojson(folder / f"{code}.geojson", geoms, props)
        import_file(migrated_engine, catalog, settings, path, code)

    load(
        "XZQ", [TOWN_A, TOWN_B], [{"XZQDM": "410001001", "XZQMC": "城关镇"}, {"XZQDM": "410001002", "XZQMC": "王庄乡"}]
    )
    load(
        "YJJBNT",
        FARMLAND,
        [{"YJJBNTTBBH": f"JB{i}", "TBBH": f"T{i + 1}", "DLBM": "0103", "GDPDJB": "2"} for i in range(2)],
    )
    load("STBHHX", ECOLOGY, [{"BSM": f"ST{i}", "HXMC": "黄河湿地", "LHLX": "生物多样性维护"} for i in range(2)])
    load("CZKFBJ", URBAN, [{"BSM": "U1", "GHFQDM": "010", "GHFQMC": "城镇集中建设区", "XZQMC": "城关镇"}])
    load(
        "YDYHGHFQ",
        PLAN,
        [{"BSM": f"P{i}", "DKBH": f"DK-{i}", "YDYHFLDM": c, "YDYHFLMC": n} for i, (c, n) in enumerate(PLAN_USES)],
    )
    load("DLTB", DLTB, DLTB_PROPS)
    load("DZZHD", HAZARD_POINTS, [{"YHDBH": "H1", "YHDMC": "北坡滑坡", "ZHLX": "滑坡", "WXRS": 12}])
    return migrated_engine


def _missing(reason: str) -> NoReturn:
    """Skip on a developer machine without the browser stack; fail in CI, where scripts/test.sh installs it."""
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def server(web_county: Engine, settings: Settings) -> Iterator[Server]:
    """The real API (``create_app``) served by uvicorn in a thread on a free loopback port."""
    import uvicorn

    from api.app import create_app

    if not (WEB / "node_modules" / "leaflet" / "dist" / "leaflet.js").exists():
        _missing("web/node_modules is missing: run `npm ci` in web/ (scripts/lib.sh does)")
    port = _free_port()
    app = create_app(settings.model_copy())  # its own settings: a test may open anonymous read on this app only
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, name="web-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    yield Server(f"http://127.0.0.1:{port}", app.state.settings, web_county, app)
    uv.should_exit = True
    thread.join(timeout=15)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        import playwright.sync_api as playwright_api
    except ImportError:
        _missing("the playwright package is not installed (pip install -r requirements.lock)")
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        _missing("Debian chromium is not installed (apt-get install chromium chromium-driver fonts-noto-cjk)")
    with playwright_api.sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def web_username(request: pytest.FixtureRequest, role: str) -> str:
    """A user per test and role (so no test meets another's login rate limit or ended session)."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", request.node.name.removeprefix("test_"))
    return f"web-{role}-{name}"[:64]


def login(context: Any, server: Server, username: str) -> dict[str, Any]:
    """Log in through the API with the context's own request client: the session cookie is the page's."""
    response = context.request.post(
        server.url + "/api/v1/auth/login", data={"username": username, "password": TEST_PASSWORD}
    )
    assert response.ok, (response.status, response.text())
    body: dict[str, Any] = response.json()
    return body


NewPage = Callable[..., tuple[Any, PageLog]]


@pytest.fixture
def new_page(browser: Any, server: Server, request: pytest.FixtureRequest) -> Iterator[NewPage]:
    """``new_page(role=None | "admin" | "planner" | "viewer")``: a fresh page in its own context (empty storage,
    Chinese by default) that records what it requests; logged in as a user of ``role`` (created in the test
    database, password ``TEST_PASSWORD``) unless ``role`` is None. ``timezone`` (e.g. "Asia/Shanghai") sets the
    browser's local time zone (default: the machine's)."""
    contexts: list[Any] = []

    def make(
        role: str | None = "admin", username: str | None = None, timezone: str | None = None
    ) -> tuple[Any, PageLog]:
        options = {"timezone_id": timezone} if timezone else {}
        context = browser.new_context(viewport=VIEWPORT, locale="zh-CN", accept_downloads=True, **options)
        contexts.append(context)
        if role is not None:
            user = ensure_user(server.engine, role, username or web_username(request, role))
            login(context, server, user["username"])
        new = context.new_page()
        log = PageLog(origin=server.url)
        new.on("request", lambda r: log.requests.append(r.url))
        new.on("response", lambda r: log.responses.append((r.url, r.status)))
        new.on("console", lambda m: log.console_errors.append(m.text) if m.type == "error" else None)
        new.on("pageerror", lambda e: log.page_errors.append(str(e)))
        new.set_default_timeout(20_000)
        return new, log

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page: NewPage) -> tuple[Any, PageLog]:
    """A fresh page logged in as an admin (everything the web map offers is allowed)."""
    return new_page("admin")


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"web-{name}.png"
    page.screenshot(path=str(path))
    return path
