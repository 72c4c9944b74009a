"""Database outages: 503 with a JSON body (never 500), recovery by itself, a job runner that keeps going (issue #5)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg2
import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import Engine, exc, text

from api.app import create_app
from gis_platform import jobs
from gis_platform.catalog import Catalog
from gis_platform.db import is_database_unavailable, make_engine
from gis_platform.rules import load_rules
from gis_platform.settings import Settings

from .test_observability import api_key_headers

pytestmark = pytest.mark.db

UNAVAILABLE = "database_unavailable"
# shaped like an API key, so the access layer looks it up in the (unreachable) database
SOME_KEY = {"Authorization": "Bearer gpk_0123abcd_" + "x" * 40}
PARCEL = {
    "type": "Polygon",
    "coordinates": [[[114.80, 34.80], [114.803, 34.80], [114.803, 34.802], [114.80, 34.802], [114.80, 34.80]]],
}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens there once the socket is closed


@pytest.fixture
def down_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"database_url": f"postgresql://postgres@127.0.0.1:{closed_port()}/gis"})


def assert_unavailable(response: Any) -> None:
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["error"] == UNAVAILABLE and "unavailable" in body["message"]


def test_requests_during_an_outage_get_503_json_and_live_stays_up(down_settings: Settings) -> None:
    app = create_app(down_settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert_unavailable(client.get("/api/v1/checks", headers=SOME_KEY))
        assert_unavailable(
            client.post("/api/v1/checks", json={"geometry": PARCEL, "land_use": "0701"}, headers=SOME_KEY)
        )
        assert_unavailable(client.get("/api/v1/identify?lon=114.8&lat=34.8", headers=SOME_KEY))
        assert_unavailable(client.get("/api/v1/health"))
        assert client.get("/api/v1/checks", headers=SOME_KEY).headers["retry-after"] == "5"

        live = client.get("/api/v1/health/live")
        assert live.status_code == 200 and live.json()["status"] == "ok"
        # a probe that happens to send credentials is not failed by the unreachable credential store
        assert client.get("/api/v1/health/live", headers=SOME_KEY).status_code == 200
        ready = client.get("/api/v1/health/ready")
        assert ready.status_code == 503
        body = ready.json()
        assert body["failed"] == ["database"] and body["status"] == "not_ready"
        assert "cannot be reached" in body["checks"]["database"]["message"]

        scrape = client.get("/metrics")
        assert scrape.status_code == 200 and "gis_database_up 0.0" in scrape.text
        time.sleep(0.3)
        assert app.state.job_runner._thread.is_alive()  # the runner keeps retrying


@pytest.fixture
def error_app(settings: Settings) -> FastAPI:
    """An app with routes that raise the driver errors an outage produces (and one that is a bug)."""
    app = create_app(settings)
    orig_closed = psycopg2.InterfaceError("connection already closed")
    raising: dict[str, BaseException] = {
        "invalidated": exc.InterfaceError("SELECT 1", {}, orig_closed, connection_invalidated=True),
        "dbapi-invalidated": exc.DBAPIError(
            "SELECT 1", {}, psycopg2.DatabaseError("server closed the connection"), connection_invalidated=True
        ),
        "operational": exc.OperationalError("SELECT 1", {}, psycopg2.OperationalError("terminating connection")),
        "raw-psycopg2": psycopg2.OperationalError("could not connect to server"),
        "raw-interface": psycopg2.InterfaceError("connection already closed"),
        "pool-timeout": exc.TimeoutError("QueuePool limit of size 5 overflow 5 reached"),
        "wrapped": RuntimeError("while reading the layer"),
        "bug": exc.ProgrammingError("SELECT nope", {}, psycopg2.ProgrammingError("column nope does not exist")),
    }
    raising["wrapped"].__cause__ = raising["operational"]

    def make(error: BaseException) -> Any:
        def route() -> None:
            raise error

        return route

    for name, error in raising.items():
        app.add_api_route(f"/test/raise/{name}", make(error))

    def stream_fails_first() -> StreamingResponse:
        def body() -> Iterator[bytes]:
            raise exc.OperationalError("SELECT 1", {}, psycopg2.OperationalError("server closed the connection"))
            yield b""  # a generator

        return StreamingResponse(body(), media_type="application/json")

    app.add_api_route("/test/stream-fails-first", stream_fails_first)
    return app


@pytest.mark.parametrize(
    "name", ["invalidated", "dbapi-invalidated", "operational", "raw-psycopg2", "raw-interface", "pool-timeout"]
)
def test_connection_errors_are_503(error_app: FastAPI, name: str) -> None:
    with TestClient(error_app, raise_server_exceptions=False) as client:
        assert_unavailable(client.get(f"/test/raise/{name}"))


def test_an_outage_error_behind_another_error_and_in_a_stream_is_503(error_app: FastAPI) -> None:
    with TestClient(error_app, raise_server_exceptions=False) as client:
        assert_unavailable(client.get("/test/raise/wrapped"))
        streamed = client.get("/test/stream-fails-first")
        assert_unavailable(streamed)
        assert streamed.headers["x-request-id"]


def test_a_bad_statement_is_still_a_500(error_app: FastAPI) -> None:
    labels = {"method": "GET", "route": "/test/raise/bug", "status": "500"}
    before = REGISTRY.get_sample_value("gis_http_requests_total", labels) or 0.0
    with TestClient(error_app, raise_server_exceptions=False) as client:
        assert client.get("/test/raise/bug").status_code == 500
    assert REGISTRY.get_sample_value("gis_http_requests_total", labels) == before + 1  # counted as the 500 it was


def test_statement_timeout_is_not_an_outage_for_jobs() -> None:
    cancelled = exc.OperationalError("SELECT 1", {}, psycopg2.errors.QueryCanceled("canceling statement"))
    assert not is_database_unavailable(cancelled)
    assert is_database_unavailable(exc.OperationalError("SELECT 1", {}, psycopg2.OperationalError("gone")))


def terminate_other_connections(engine: Engine) -> int:
    """What a PostgreSQL restart does to the app: every other backend of this database is terminated."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
        )


def test_terminated_connections_are_replaced_on_the_next_request(settings: Settings, engine: Engine) -> None:
    headers = api_key_headers(engine)
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        barrier = threading.Barrier(4)

        def busy() -> None:  # several pooled connections at once
            barrier.wait(timeout=10)
            client.get("/api/v1/checks", headers=headers)

        workers = [threading.Thread(target=busy) for _ in range(4)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=30)
        assert client.get("/api/v1/checks", headers=headers).status_code == 200
        side = make_engine(settings, pool_size=1)
        try:
            assert terminate_other_connections(side) >= 1
        finally:
            side.dispose()
        # the pool pings each connection on checkout and replaces the dead ones: no failed request at all
        for _ in range(6):
            response = client.get("/api/v1/checks", headers=headers)
            assert response.status_code == 200, response.text
        assert client.get("/api/v1/health/ready").status_code == 200


@pytest.fixture
def runner_engine(settings: Settings, engine: Engine) -> Iterator[Engine]:
    own = make_engine(settings, pool_size=2)
    yield own
    own.dispose()


def wait_for_status(engine: Engine, job_id: Any, statuses: set[str], seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while True:
        status = jobs.get_job(engine, job_id)["status"]
        if status in statuses or time.monotonic() > deadline:
            return str(status)
        time.sleep(0.1)


def test_job_runner_survives_terminated_connections(
    runner_engine: Engine, engine: Engine, catalog: Catalog, settings: Settings
) -> None:
    rules = load_rules(settings.layers_dir, catalog)
    runner = jobs.JobRunner(runner_engine, catalog, rules, settings, poll_s=0.2)
    runner.start()
    try:
        time.sleep(0.5)  # it LISTENs and has pooled connections
        assert terminate_other_connections(engine) >= 1
        time.sleep(0.5)
        with engine.begin() as conn:  # a job that fails at once: it shows the runner is still taking jobs
            job_id = jobs.create_job(conn, kind="conflicts", params={"plan_layer": "NOPE"}, created_by="test")
        assert wait_for_status(engine, job_id, {"failed", "succeeded"}, 15) == "failed"
        assert "NOPE" in (jobs.get_job(engine, job_id)["error"] or "")
        assert runner._thread is not None and runner._thread.is_alive()
    finally:
        runner.stop(timeout_s=10)


def test_job_runner_keeps_retrying_while_the_database_is_down(
    down_settings: Settings, catalog: Catalog, settings: Settings
) -> None:
    down = make_engine(down_settings, pool_size=1)
    runner = jobs.JobRunner(down, catalog, load_rules(settings.layers_dir, catalog), down_settings, poll_s=0.1)
    try:
        runner.start()
        time.sleep(0.6)  # several failed rounds
        assert runner._thread is not None and runner._thread.is_alive()
    finally:
        runner.stop(timeout_s=10)
        down.dispose()
    assert not runner._thread.is_alive()


def test_a_job_hit_by_an_outage_goes_back_to_the_queue(
    engine: Engine, catalog: Catalog, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = load_rules(settings.layers_dir, catalog)

    def outage(*_args: object) -> dict[str, Any]:
        raise exc.OperationalError("SELECT 1", {}, psycopg2.OperationalError("server closed the connection"))

    monkeypatch.setattr(jobs, "_handler", lambda _kind: outage)
    with engine.begin() as conn:
        job_id = jobs.create_job(conn, kind="conflicts", params={}, created_by="test")
    job = jobs.claim_next(engine, worker="test")
    assert job is not None and job.id == job_id
    assert jobs.execute_job(engine, catalog, rules, settings, job) == "queued"
    assert jobs.get_job(engine, job_id)["status"] == "queued"  # not failed: it runs again later

    # the database still away when releasing: the runner keeps the job and releases it later
    job = jobs.claim_next(engine, worker="test")
    assert job is not None

    def release_fails(*_args: object) -> bool:
        raise exc.OperationalError("UPDATE job", {}, psycopg2.OperationalError("connection refused"))

    monkeypatch.setattr(jobs, "release_job", release_fails)
    assert jobs.execute_job(engine, catalog, rules, settings, job) == "unreleased"
    assert jobs.get_job(engine, job_id)["status"] == "running"
