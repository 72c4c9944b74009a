"""Application factory: ``create_app(settings)``; the engine lives on ``app.state`` for the app's lifetime."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine

import gis_platform
from gis_platform import budget
from gis_platform.accounts import Authenticator
from gis_platform.catalog import Catalog, load_catalog
from gis_platform.config_snapshots import ensure_running_snapshot
from gis_platform.credential_watch import CredentialWatch
from gis_platform.db import is_database_unavailable, libpq_dsn, make_engine
from gis_platform.jobs import start_job_runner
from gis_platform.parcel_fields import load_parcel_fields
from gis_platform.rules import RuleSet, load_rules
from gis_platform.sandbox import shared_pool
from gis_platform.settings import REPO_ROOT, Settings, load_settings

from . import metrics
from .errors import install_error_handlers
from .limits import RequestSizeLimitMiddleware
from .observability import RequestMiddleware, configure_logging
from .routes import (
    admin,
    auth,
    check_replay,
    checks,
    dashboard,
    health,
    identify,
    jobs,
    layers,
    mapconfig,
    reports,
    search,
    tiles,
)
from .security import RateLimiter, public

WEB_DIR = REPO_ROOT / "web"
log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    configure_logging(settings.log_format, settings.log_level)  # JSON lines with the request id

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Each lifespan owns what it starts and puts back what it found: a second lifespan on the same app (a test
        # tool's client inside another) must neither leak its job runner nor close the outer one's engine.
        previous = {name: getattr(app.state, name, None) for name in ("engine", "authenticator", "job_runner")}
        engine = app.state.engine = make_engine(settings)
        budget.install(engine)  # checks run within a time budget (their statements get what is left of it)
        # uploaded files are read in this process's warm sandbox workers, started now (gis_platform/sandbox.py)
        app.state.sandbox = shared_pool(settings)
        metrics.watch_engine(engine)  # pool gauges at /metrics
        authenticator = app.state.authenticator = Authenticator(engine, settings)
        # a revoked credential is forgotten in this worker as soon as any worker, the CLI or SQL commits it
        watch = CredentialWatch(
            libpq_dsn(settings.database_url), authenticator.clear, connect_timeout_s=settings.db_connect_timeout_s
        ).start()
        runner = start_job_runner(app.state)  # batch checks and conflict analyses run in the background
        # the catalogue and rules this service runs with, kept by fingerprint for replays (insert-if-missing; in
        # the background: a database that is down or slow to answer must not hold up the start)
        snapshot = threading.Thread(
            target=_store_snapshot, args=(engine, app.state.catalog, app.state.rules), name="snapshot", daemon=True
        )
        snapshot.start()
        try:
            yield
        finally:
            snapshot.join(timeout=settings.db_connect_timeout_s + 1)
            runner.stop()
            watch.stop()
            metrics.unwatch_engine(engine)
            metrics.mark_process_dead()
            engine.dispose()
            for name, value in previous.items():
                setattr(app.state, name, value)

    app = FastAPI(
        title="国土空间规划“一张图”平台 API",
        description="County territorial spatial planning one-map platform: layers, versions, compliance checks.",
        version=gis_platform.__version__,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.rate_limiter = RateLimiter()
    # validated at start-up: a bad catalogue or rule file stops the service with a message naming it
    app.state.catalog = load_catalog(settings.layers_dir)
    app.state.rules = load_rules(settings.layers_dir, app.state.catalog)
    app.state.parcel_fields = load_parcel_fields(app.state.catalog, settings.layers_dir)
    install_error_handlers(app)
    app.add_middleware(RequestSizeLimitMiddleware, settings=settings)  # 413 past max_request_bytes (api/limits.py)
    # JS, GeoJSON, tiles and check documents compress well; level 1 costs a fraction of level 9's CPU
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=1)
    app.add_middleware(RequestMiddleware)  # outermost: request id, access log, metrics (api/observability.py)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(auth.router)
    app.include_router(admin.router)
    app.include_router(layers.router)
    app.include_router(layers.land_use_router)
    app.include_router(layers.admin_router)
    app.include_router(checks.router)
    app.include_router(check_replay.router)
    app.include_router(identify.router)
    app.include_router(reports.router)
    app.include_router(jobs.router)
    app.include_router(tiles.router)
    app.include_router(dashboard.router)
    app.include_router(search.router)
    app.include_router(mapconfig.router)
    _mount_web(app, WEB_DIR)
    return app


def _store_snapshot(engine: Engine, catalog: Catalog, rules: RuleSet) -> None:
    try:
        ensure_running_snapshot(engine, catalog, rules)
    except Exception as exc:  # the first check stores it then (gis_platform.checks.run_check)
        if not is_database_unavailable(exc):
            log.exception("the catalogue and rules snapshot could not be stored")


def _mount_web(app: FastAPI, web_dir: Path) -> None:
    index = web_dir / "index.html"
    if not index.exists():
        return

    @app.get("/", include_in_schema=False, dependencies=[public("the web map's page: its data comes from the API")])
    def home() -> FileResponse:
        return FileResponse(index)

    app.mount("/web", StaticFiles(directory=web_dir), name="web")
