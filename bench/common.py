"""Helpers shared by the benchmarks: a bench database, child-process timing and peak memory."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine.url import make_url

REPO_ROOT = Path(__file__).resolve().parents[1]
# Debian's Chromium launched by path (no downloaded browser), as the browser tests and the paint bench run it.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1366, "height": 768}
OUT_DIR = REPO_ROOT / "bench" / "out"
BENCH_DIR = REPO_ROOT / "data" / "bench"


@dataclass
class Run:
    seconds: float
    peak_rss_mib: float


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> Run:
    """Run a command in a fresh process (wait4 gives its own peak RSS) and time it."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    out = proc.stdout.read().decode() if proc.stdout else ""
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{cmd[0]} failed ({status}):\n{out}\n{err}")
    return Run(seconds, usage.ru_maxrss / 1024)


def median_run(runs: list[Run]) -> Run:
    return Run(statistics.median(r.seconds for r in runs), max(r.peak_rss_mib for r in runs))


def bench_database_url() -> str:
    url = os.environ.get("GIS_BENCH_DATABASE_URL")
    if not url:
        raise SystemExit("set GIS_BENCH_DATABASE_URL (scripts/bench.sh does) to a PostGIS database the bench may fill")
    return url


def ogr_pg_connection(url: str) -> str:
    """The GDAL ``PG:`` connection string for a SQLAlchemy URL."""
    u = make_url(url)
    parts = [
        f"dbname={u.database}",
        f"host={u.host or '127.0.0.1'}",
        f"port={u.port or 5432}",
        f"user={u.username or 'postgres'}",
    ]
    if u.password:
        parts.append(f"password={u.password}")
    return "PG:" + " ".join(parts)


def self_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ensure_scale_county(directory: Path) -> dict[str, Any]:
    """The benchmark county's manifest, generating it (``--scale``) when missing."""
    import json
    import sys

    manifest = directory / "manifest.json"
    if not manifest.exists():
        print(f"generating the benchmark county in {directory} …", file=sys.stderr)
        generator = REPO_ROOT / "data" / "generate_demo_county.py"
        run_measured([sys.executable, str(generator), "--out", str(directory), "--scale"])
    return json.loads(manifest.read_text(encoding="utf-8"))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


# --------------------------------------------------------------------------------------------------
# Credentials for the benchmarks (every /api/v1 route but health, /metrics and login needs them)
# --------------------------------------------------------------------------------------------------


def bench_api_key(database_url: str, name: str) -> dict[str, str]:
    """``Authorization`` for a new API key with no rate limit, made directly in the bench database."""
    from gis_platform import accounts, audit
    from gis_platform.db import make_engine
    from gis_platform.settings import Settings

    engine = make_engine(Settings(database_url=database_url), pool_size=1)
    try:
        _record, secret = accounts.create_api_key(engine, name=name, actor=audit.cli_actor(), rate_limit_per_minute=0)
    finally:
        engine.dispose()
    return {"Authorization": f"Bearer {secret}"}


def bench_user(database_url: str, username: str, role: str = "viewer") -> tuple[str, str]:
    """A web user of ``role`` in the bench database (created, or given a fresh password): (username, password).

    For benchmarks that drive the web map, which logs in with a session cookie (POST /api/v1/auth/login).
    """
    import secrets

    from gis_platform import accounts, audit
    from gis_platform.db import make_engine
    from gis_platform.errors import NotFoundError
    from gis_platform.settings import Settings

    settings = Settings(database_url=database_url)
    password = f"Bench-{secrets.token_urlsafe(12)}"
    engine = make_engine(settings, pool_size=1)
    try:
        try:
            accounts.update_user(
                engine, settings, username, actor=audit.cli_actor(), role=role, is_active=True, password=password
            )
        except NotFoundError:
            accounts.create_user(
                engine,
                settings,
                username=username,
                password=password,
                role=role,
                display_name=f"bench {role}",
                actor=audit.cli_actor(),
            )
    finally:
        engine.dispose()
    return username, password
