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
