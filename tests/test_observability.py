"""Operations: request ids, JSON logs, Prometheus metrics, liveness and readiness (issue #5)."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import Engine

from api import metrics, observability
from api.app import create_app
from api.routes import health
from gis_platform import migrate
from gis_platform.settings import Settings

pytestmark = pytest.mark.db

REPO_ROOT = Path(__file__).resolve().parents[1]


def api_key_headers(engine: Engine) -> dict[str, str]:
    """An API key for the test (the access layer of issue #5), or no header while there is none."""
    try:
        from gis_platform import accounts, audit
    except ImportError:  # pragma: no cover - before access control exists
        return {}
    _record, secret = accounts.create_api_key(
        engine, name="observability tests", actor=audit.Actor(name="tests", kind="cli"), rate_limit_per_minute=0
    )
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def app(settings: Settings, engine: Engine) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def log_stream(app: FastAPI) -> Iterator[io.StringIO]:
    """The platform's log handler, writing JSON lines into a buffer for the test."""
    stream = io.StringIO()
    observability.configure_logging("json", "INFO", stream=stream)
    yield stream
    observability.configure_logging("json", "INFO")


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


# --------------------------------------------------------------------------------------------------
# Request id and logs
# --------------------------------------------------------------------------------------------------


def test_request_id_is_made_or_kept_and_returned(client: TestClient) -> None:
    made = client.get("/api/v1/health/live").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert client.get("/api/v1/health/live").headers["x-request-id"] != made
    kept = client.get("/api/v1/health/live", headers={"X-Request-ID": "approval-42.7"})
    assert kept.headers["x-request-id"] == "approval-42.7"
    # unsafe ids (spaces, control characters, too long) are replaced, never echoed into logs and headers
    for bad in ("two words", "x" * 200):
        replaced = client.get("/api/v1/health/live", headers={"X-Request-ID": bad}).headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", replaced)
    # also on errors
    missing = client.get("/api/v1/no-such-route", headers={"X-Request-ID": "r-404"})
    assert missing.status_code == 404 and missing.headers["x-request-id"] == "r-404"


def test_access_line_is_json_with_request_id_route_status_and_duration(
    log_stream: io.StringIO, client: TestClient
) -> None:
    client.get(f"/api/v1/checks/{uuid.uuid4()}", headers={"X-Request-ID": "req-access-1"})
    lines = [line for line in json_lines(log_stream) if line["logger"] == "gis_platform.access"]
    assert len(lines) == 1
    line = lines[0]
    assert line["request_id"] == "req-access-1"
    assert line["method"] == "GET" and line["path"].startswith("/api/v1/checks/")
    assert line["route"] == "/api/v1/checks/{check_id}"
    assert line["status"] in (401, 404) and isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["level"] == "INFO" and line["time"].endswith("+00:00")


def test_every_log_record_of_a_request_carries_its_id(app: FastAPI, log_stream: io.StringIO) -> None:
    def sync_route() -> dict[str, str]:  # runs in the thread pool
        logging.getLogger("gis_platform.test").warning("inside a sync route")
        return {}

    async def async_route() -> dict[str, str]:
        logging.getLogger("gis_platform.test").warning("inside an async route")
        return {}

    def state_route(request: Request) -> dict[str, str]:  # what the audit trail reads
        return {"request_id": request.state.request_id}

    app.add_api_route("/test/log-sync", sync_route)
    app.add_api_route("/test/log-async", async_route)
    app.add_api_route("/test/state", state_route)
    with TestClient(app) as client:
        assert client.get("/test/state", headers={"X-Request-ID": "req-state"}).json() == {"request_id": "req-state"}
        client.get("/test/log-sync", headers={"X-Request-ID": "req-sync"})
        client.get("/test/log-async", headers={"X-Request-ID": "req-async"})
        logging.getLogger("gis_platform.test").warning("outside any request")
    records = {line["message"]: line for line in json_lines(log_stream) if line["logger"] == "gis_platform.test"}
    assert records["inside a sync route"]["request_id"] == "req-sync"
    assert records["inside an async route"]["request_id"] == "req-async"
    assert records["outside any request"]["request_id"] is None


def test_text_format_and_level_are_settings(client: TestClient) -> None:
    stream = io.StringIO()
    try:
        observability.configure_logging("text", "WARNING", stream=stream)
        client.get("/api/v1/health/live", headers={"X-Request-ID": "req-text"})  # INFO: below the level
        logging.getLogger("gis_platform.test").warning("a warning")
        assert stream.getvalue().count("\n") == 1
        assert "WARNING gis_platform.test [None] a warning" in stream.getvalue()
    finally:
        observability.configure_logging("json", "INFO")
    assert Settings(_env_file=None).log_format == "json"  # type: ignore[call-arg]
    os.environ["GIS_LOG_FORMAT"] = "text"
    try:
        assert Settings().log_format == "text"
    finally:
        del os.environ["GIS_LOG_FORMAT"]


def test_json_formatter_keeps_unicode_extras_and_tracebacks() -> None:
    try:
        raise ValueError("坏")
    except ValueError:
        record = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, __file__, 1, "检查 %s", ("地块",), sys.exc_info(), extra={"parcel": 7}
        )
    doc = json.loads(observability.JsonFormatter().format(record))
    assert doc["message"] == "检查 地块" and doc["parcel"] == 7 and "ValueError: 坏" in doc["exc_info"]


# --------------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------------


def test_request_metrics_are_labelled_by_route_template(client: TestClient) -> None:
    labels = {"method": "GET", "route": "/api/v1/checks/{check_id}"}
    response = client.get(f"/api/v1/checks/{uuid.uuid4()}")
    status = str(response.status_code)
    before = sample("gis_http_requests_total", {**labels, "status": status})
    for _ in range(3):
        client.get(f"/api/v1/checks/{uuid.uuid4()}")
    assert sample("gis_http_requests_total", {**labels, "status": status}) == before + 3
    assert sample("gis_http_request_duration_seconds_count", {**labels, "status": status}) >= before + 3

    text = client.get("/metrics").text
    assert 'route="/api/v1/checks/{check_id}"' in text
    assert "gis_http_request_duration_seconds_bucket" in text
    assert not re.search(r'route="/api/v1/checks/[0-9a-f]{8}-', text)  # never the raw path
    client.get("/nothing/here/123")
    assert 'route="<unmatched>",status="404"' in client.get("/metrics").text
    assert client.get("/metrics").headers["content-type"].startswith("text/plain")


def test_tile_routes_use_the_template_without_converters(client: TestClient) -> None:
    client.get("/tiles/YJJBNT/14/13398/6484.pbf")
    assert 'route="/tiles/{code}/{z}/{x}/{y}.pbf"' in client.get("/metrics").text


def test_pool_and_job_queue_gauges_are_read_at_scrape_time(client: TestClient, app: FastAPI) -> None:
    text = client.get("/metrics").text
    assert re.search(r"^gis_db_pool_size 5\.0$", text, re.M)
    assert re.search(r"^gis_db_pool_max_overflow 5\.0$", text, re.M)
    assert re.search(r"^gis_database_up 1\.0$", text, re.M)
    assert re.search(r'^gis_job_queue_depth\{status="queued"\} 0\.0$', text, re.M)
    with app.state.engine.connect():  # one connection held: the scrape sees it checked out
        held = client.get("/metrics").text
        assert float(re.search(r"^gis_db_pool_checked_out (\S+)$", held, re.M).group(1)) >= 1  # type: ignore[union-attr]


def test_check_verdicts_are_counted() -> None:
    before = sample("gis_check_verdicts_total", {"verdict": "禁止"})
    metrics.record_check_verdict("禁止")
    metrics.record_check_verdict("禁止")
    assert sample("gis_check_verdicts_total", {"verdict": "禁止"}) == before + 2
    assert sample("gis_check_verdicts_total", {"verdict": "通过"}) is not None


# --------------------------------------------------------------------------------------------------
# Liveness and readiness
# --------------------------------------------------------------------------------------------------


def test_live_and_ready(client: TestClient, settings: Settings) -> None:
    live = client.get("/api/v1/health/live")
    assert live.status_code == 200 and live.json()["status"] == "ok"
    ready = client.get("/api/v1/health/ready")
    assert ready.status_code == 200, ready.text
    checks = ready.json()["checks"]
    assert checks["database"]["ok"] and checks["postgis"]["version"].startswith("3.")
    assert checks["migrations"] == {
        "ok": True,
        "current": migrate.head_revision(settings),
        "head": checks["migrations"]["head"],
    }
    assert client.get("/api/v1/health").status_code == 200  # the overall status stays


def test_ready_names_migrations_behind_head(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "_head", ["9999_not_applied"])
    response = client.get("/api/v1/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["migrations"] and body["error"] == "not_ready"
    assert "9999_not_applied" in body["checks"]["migrations"]["message"]


def test_ready_names_missing_postgis(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "postgis_version", lambda _conn: None)
    body = client.get("/api/v1/health/ready").json()
    assert body["failed"] == ["postgis"] and "postgis" in body["checks"]["postgis"]["message"]


# --------------------------------------------------------------------------------------------------
# gis-platform serve: one log format, no duplicate access lines, metrics summed over workers
# --------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_serve_with_two_workers_logs_json_once_and_sums_metrics(settings: Settings, engine: Engine) -> None:
    port = _free_port()
    env = {**os.environ, "GIS_DATABASE_URL": settings.database_url, "GIS_LOG_FORMAT": "json"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    gp = str(Path(sys.executable).with_name("gis-platform"))
    proc = subprocess.Popen(
        [gp, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(trust_env=False, timeout=5) as http:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if http.get(base + "/api/v1/health/live").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline and proc.poll() is None, "the server did not start"
                time.sleep(0.2)
            time.sleep(1.0)  # both workers up
            for i in range(40):  # new connections: both workers answer some
                with httpx.Client(trust_env=False, timeout=5) as fresh:
                    fresh.get(base + "/api/v1/health/ready", headers={"X-Request-ID": f"serve-{i}"})
            totals = set()
            for _ in range(6):
                with httpx.Client(trust_env=False, timeout=5) as fresh:
                    text = fresh.get(base + "/metrics").text
                found = re.search(
                    r'^gis_http_requests_total\{method="GET",route="/api/v1/health/ready",status="200"\} (\S+)$',
                    text,
                    re.M,
                )
                assert found, text[:2000]
                totals.add(float(found.group(1)))
            assert totals == {40.0}  # whichever worker answers, the count is over both
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    lines = [json.loads(line) for line in err.decode().splitlines() if line.strip()]  # every line is JSON
    access = [
        line for line in lines if line["logger"] == "gis_platform.access" and line["path"] == "/api/v1/health/ready"
    ]
    assert sorted(line["request_id"] for line in access) == sorted(f"serve-{i}" for i in range(40))
    assert not [line for line in lines if line["logger"] == "uvicorn.access"]
    assert any(line["logger"] == "uvicorn.error" for line in lines)  # uvicorn's own lines: same handler, JSON
