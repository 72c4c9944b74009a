"""Issue 13's hostile files over HTTP: each gets its clear 4xx at once, nothing is stored, no file is left behind,
and a second client is answered while the server is under attack (a real server with two worker processes).

The files are built in code (tests/hostile_files.py), small, with limits lowered to match; the full-size ones are
timed by bench/bench_hostile.py.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from gis_platform.budget import install, time_budget
from gis_platform.errors import TimeBudgetError
from gis_platform.sandbox import shared_pool
from gis_platform.settings import REPO_ROOT, Settings

from . import hostile_files as hostile
from .helpers import auth_headers
from .test_limits import PARCEL, assert_refused, db_counts, limited_client

pytestmark = pytest.mark.db

UPLOAD_ROUTES = ("/api/v1/checks/upload", "/api/v1/checks/inspect", "/api/v1/checks/batch")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hostile")
    return {
        "view": hostile.recursive_view_gpkg(folder / "recursive_view.gpkg"),
        "trigger": hostile.trigger_gpkg(folder / "trigger.gpkg"),
        "real": hostile.real_gpkg(folder / "parcels.gpkg"),
        "dxf_200": hostile.polylines_dxf(folder / "polylines_200.dxf", 200),
        "dxf_5000": hostile.polylines_dxf(folder / "polylines_5000.dxf", 5000),
        "spline": hostile.spline_hatch_dxf(folder / "hatch_spline.dxf"),
        "txt_declared": hostile.points_txt(folder / "declared.txt", 20_000),
        "txt_lying": hostile.points_txt(folder / "lying.txt", 20_000, declared=50),
        "txt_lines": hostile.points_txt(folder / "lines.txt", 900, parcels=8),
        "parts": hostile.multipart_geojson(folder / "parts_4999.geojson", 4999),
    }


def upload(client: TestClient, url: str, path: Path, **form: str) -> httpx.Response:
    data = {"crs": "EPSG:4547", **form} if path.suffix == ".dxf" else form
    return client.post(url, files={"file": (path.name, path.read_bytes())}, data=data)


def refused_everywhere(
    client: TestClient, engine: Engine, path: Path, status: int, error: str, *words: str, routes: tuple[str, ...] = ()
) -> None:
    """Every upload route refuses ``path`` quickly with ``status``/``error`` naming ``words``; nothing stored."""
    before = db_counts(engine)
    for url in routes or UPLOAD_ROUTES:
        started = time.perf_counter()
        body = assert_refused(upload(client, url, path), status, error, *words)
        assert time.perf_counter() - started < 10, (url, body)
        assert "/tmp" not in json.dumps(body, ensure_ascii=False), body  # no server path in what a client sees
    assert db_counts(engine) == before
    assert not [p for p in shared_pool(client.app.state.settings).directory.iterdir() if p.name.startswith("job-")]


@pytest.fixture
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    with limited_client(settings, engine) as test_client:
        yield test_client


def test_a_geopackage_layer_that_is_a_view_is_refused_before_gdal_opens_it(
    client: TestClient, engine: Engine, files: dict[str, Path]
) -> None:
    routes = (*UPLOAD_ROUTES, "/api/v1/layers/YJJBNT/versions")
    refused_everywhere(
        client, engine, files["view"], 422, "input_file_error", "SQL 视图", "views (parcels)", routes=routes
    )


def test_a_geopackage_with_a_trigger_of_its_own_is_refused(
    client: TestClient, engine: Engine, files: dict[str, Path]
) -> None:
    refused_everywhere(client, engine, files["trigger"], 422, "input_file_error", "触发器", "wipe_contents")


def test_a_geopackage_as_gdal_writes_it_is_read(client: TestClient, files: dict[str, Path]) -> None:
    response = upload(client, "/api/v1/checks/inspect", files["real"])  # GDAL's R-tree triggers are standard
    assert response.status_code == 200, response.text
    assert response.json()["count"] == 1 and response.json()["format"] == "gpkg"


def test_a_dxf_with_more_entities_than_the_limit_is_refused_before_it_is_parsed(
    settings: Settings, engine: Engine, files: dict[str, Path]
) -> None:
    with limited_client(settings, engine, max_dxf_entities=50) as client:
        refused_everywhere(client, engine, files["dxf_200"], 413, "file_too_complex", "200 个图元", "200 entities")


def test_a_dxf_that_takes_longer_to_parse_than_the_cpu_limit_is_stopped(
    settings: Settings, engine: Engine, files: dict[str, Path]
) -> None:
    with limited_client(settings, engine, sandbox_cpu_s=0.2) as client:
        body = assert_refused(
            upload(client, "/api/v1/checks/inspect", files["dxf_5000"]),
            413,
            "processing_limit_exceeded",
            "CPU 时间上限 0.2 s",
            "CPU time limit of 0.2 s",
        )
        assert body["details"] == {"limit": "cpu_time", "value": 0.2, "unit": "s"}
        assert upload(client, "/api/v1/checks/inspect", files["real"]).status_code == 200  # a fresh worker


def test_a_hatch_spline_is_stopped_at_a_parcels_worth_of_vertices(
    client: TestClient, engine: Engine, files: dict[str, Path]
) -> None:
    refused_everywhere(client, engine, files["spline"], 422, "invalid_parcel", "more than 20000 vertices")


def test_boundary_txt_limits_stop_the_read_early(settings: Settings, engine: Engine, files: dict[str, Path]) -> None:
    with limited_client(settings, engine, max_parcel_vertices=1000, max_file_vertices=50_000) as client:
        refused_everywhere(client, engine, files["txt_declared"], 422, "invalid_parcel", "界址点数 20001", "1000")
        refused_everywhere(client, engine, files["txt_lying"], 422, "invalid_parcel", "1001 vertices", "1000")
    with limited_client(settings, engine, max_file_vertices=5000) as client:  # 8 parcels of 900 points
        refused_everywhere(client, engine, files["txt_lines"], 413, "file_too_complex", "5000")


def test_a_parcel_of_4999_parts_is_refused_at_once(client: TestClient, engine: Engine, files: dict[str, Path]) -> None:
    words = ("4999 个部分", "4999 parts, more than the limit of 200")
    refused_everywhere(client, engine, files["parts"], 422, "invalid_parcel", *words, routes=UPLOAD_ROUTES[:2])
    geometry = json.loads(files["parts"].read_text())["features"][0]["geometry"]
    started = time.perf_counter()
    assert_refused(client.post("/api/v1/checks", json={"geometry": geometry}), 422, "invalid_parcel", *words)
    assert time.perf_counter() - started < 5


# ---------------------------------------------------------------------------------------------------------------
# The time budget of a check (gis_platform/budget.py)
# ---------------------------------------------------------------------------------------------------------------


def test_a_check_past_its_time_budget_is_a_503_naming_it(settings: Settings, engine: Engine) -> None:
    with limited_client(settings, engine, check_time_budget_s=1e-6) as client:
        before = db_counts(engine)
        response = client.post("/api/v1/checks", json={"geometry": PARCEL, "land_use": "0701"})
        body = assert_refused(response, 503, "time_budget_exceeded", "时间预算 1e-06 秒", "time budget of 1e-06 s")
        assert response.headers["retry-after"] == "5" and body["details"]["budget_s"] == 1e-6
        assert db_counts(engine) == before


def test_the_budget_cancels_a_running_statement_and_does_not_outlive_its_transaction(engine: Engine) -> None:
    install(engine)
    started = time.perf_counter()
    with pytest.raises(TimeBudgetError) as caught, time_budget(0.3), engine.begin() as conn:
        conn.execute(text("SELECT pg_sleep(10)"))
    assert time.perf_counter() - started < 3
    assert caught.value.details["budget_s"] == 0.3
    with engine.connect() as conn:  # the pooled connection went back without the budget's timeout
        assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "0"


# ---------------------------------------------------------------------------------------------------------------
# A real server under attack: a second client is answered
# ---------------------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_a_second_client_is_answered_while_hostile_files_are_uploaded(
    settings: Settings, engine: Engine, files: dict[str, Path], tmp_path: Path
) -> None:
    """Two uvicorn worker processes, one sandbox worker each, a CPU limit the 5,000-polyline DXF always passes:
    while one client uploads it again and again (and the recursive-view GeoPackage), another lists checks."""
    port = _free_port()
    env = {
        **os.environ,
        "GIS_DATABASE_URL": settings.database_url,
        "GIS_SANDBOX_WORKERS": "1",
        "GIS_SANDBOX_CPU_S": "0.3",
        "GIS_SANDBOX_DIR": str(tmp_path / "sandbox"),
        "GIS_SANDBOX_QUEUE_TIMEOUT_S": "2",
        "GIS_LOG_LEVEL": "WARNING",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("gis-platform")), "serve", "--port", str(port), "--workers", "2"],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    headers = auth_headers(engine)
    try:
        _wait_until_up(base, server)
        outcomes: list[tuple[int, str]] = []
        stop = threading.Event()

        def attack() -> None:
            with httpx.Client(base_url=base, headers=headers, timeout=60, trust_env=False) as http:
                while not stop.is_set():
                    for key in ("dxf_5000", "view"):
                        path = files[key]
                        data = {"crs": "EPSG:4547"} if path.suffix == ".dxf" else {}
                        response = http.post(
                            "/api/v1/checks/inspect", files={"file": (path.name, path.read_bytes())}, data=data
                        )
                        outcomes.append((response.status_code, response.json().get("error", "")))

        attackers = [threading.Thread(target=attack) for _ in range(3)]
        for thread in attackers:
            thread.start()
        latencies = _second_client(base, headers, seconds=4)
        stop.set()
        for thread in attackers:
            thread.join(60)
        with httpx.Client(base_url=base, headers=headers, timeout=60, trust_env=False) as http:
            ok = http.post("/api/v1/checks/inspect", files={"file": ("p.gpkg", files["real"].read_bytes())})
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    assert {error for _status, error in outcomes} <= {"processing_limit_exceeded", "input_file_error", "sandbox_busy"}
    assert ("processing_limit_exceeded" in {e for _s, e in outcomes}) and (413, "processing_limit_exceeded") in outcomes
    assert ok.status_code == 200, ok.text
    latencies.sort()
    p95 = latencies[int(len(latencies) * 0.95)]
    print(
        f"attack: {len(outcomes)} uploads {sorted(set(outcomes))}; second client: {len(latencies)} requests,"
        f" p50 {latencies[len(latencies) // 2] * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms,"
        f" max {latencies[-1] * 1000:.1f} ms"
    )
    assert len(latencies) > 20 and p95 < 1.0, latencies[-10:]
    assert not list((tmp_path / "sandbox").glob("*/job-*"))  # every upload removed, killed worker or not


def _wait_until_up(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(base + "/api/v1/health/live", timeout=2, trust_env=False).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline and server.poll() is None, "the server did not start"
        time.sleep(0.2)
    time.sleep(3.0)  # both workers up, their sandbox workers warm


def _second_client(base: str, headers: dict[str, str], *, seconds: float) -> list[float]:
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=base, headers=headers, timeout=30, trust_env=False) as http:
        while time.monotonic() < deadline:
            for url in ("/api/v1/health/live", "/api/v1/checks?limit=1"):
                started = time.perf_counter()
                response = http.get(url)
                latencies.append(time.perf_counter() - started)
                assert response.status_code == 200, response.text
            time.sleep(0.05)
    return latencies
