"""This tree against another checkout of the platform (the code before a change), interleaved, on one machine.

Each tree runs its own code on its own database; the same benchmark county and the same parcels go to both.
Rounds alternate which tree goes first; each figure is reported per round, and as the median of the per-round
ratios (this tree ÷ the other) with their spread (min–max). Absolute times move 1.5–2× between machines of this
kind; ratios from interleaved rounds much less.

    scripts/bench.sh compare checks --base /work/baseline --rounds 5
    scripts/bench.sh compare import --base /work/baseline --rounds 5

``checks``: the HTTP check (p50 over ``--parcels`` parcels, one keep-alive client per tree, the trees taking
turns request by request), throughput (``--clients`` clients for ``--seconds``, tree after tree) and a
``--batch``-parcel batch job, against a ``--workers``-worker server of each tree. Before that, the time the
database migration takes on the benchmark county (this tree's ``db upgrade`` on a copy of the other tree's
loaded database). ``import``: ``gis-platform import`` of the benchmark farmland
Shapefile (≥ 100,000 patches) by each tree and by ``ogr2ogr``, each in a fresh process.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg2
import shapely

from bench.bench_checks import RED_LINES, bench_batch, bench_http, bench_throughput, make_parcels
from bench.common import (
    BENCH_DIR,
    OUT_DIR,
    REPO_ROOT,
    bench_api_key,
    ensure_scale_county,
    ogr_pg_connection,
    percentile,
    run_measured,
)


@dataclass
class Tree:
    name: str
    root: Path
    url: str
    port: int = 0
    server: subprocess.Popen[bytes] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def cli(self) -> str:
        return str(self.root / ".venv" / "bin" / "gis-platform")

    def env(self) -> dict[str, str]:
        return {**os.environ, "GIS_DATABASE_URL": self.url}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _admin_sql(server_url: str, *statements: str) -> None:
    """Statements outside a transaction (CREATE/DROP DATABASE) on the server's postgres database."""
    conn = psycopg2.connect(server_url + "/postgres")
    conn.autocommit = True  # psycopg2's `with conn` would open a transaction: no context manager here
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
    finally:
        conn.close()


def _fresh_database(server_url: str, name: str, template: str | None = None) -> str:
    _admin_sql(
        server_url,
        f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
        f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""),
    )
    if not template:
        db = psycopg2.connect(f"{server_url}/{name}")
        db.autocommit = True
        with db.cursor() as cur:
            cur.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        db.close()
    return f"{server_url}/{name}"


#: Database names of this run: the server is shared, and another engineer's comparison must not drop ours.
RUN = os.getpid()
THIS_DB, BASE_DB, MIGRATE_DB = f"gis_cmp_this_{RUN}", f"gis_cmp_base_{RUN}", f"gis_cmp_migrate_{RUN}"


def _drop(server_url: str, name: str) -> None:
    _admin_sql(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _start(tree: Tree, workers: int) -> None:
    tree.server = subprocess.Popen(
        [tree.cli, "serve", "--host", "127.0.0.1", "--port", str(tree.port), "--workers", str(workers)],
        env=tree.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{tree.port}/api/v1/health/live", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise RuntimeError(f"the {tree.name} server did not answer in 90 s")


def _stop(tree: Tree) -> None:
    if tree.server is not None:
        os.killpg(tree.server.pid, signal.SIGTERM)
        tree.server.wait(timeout=30)
        tree.server = None


_TICKS = os.sysconf("SC_CLK_TCK")


def _descendants(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True).stdout.split()
    children: dict[int, list[int]] = {}
    for child, parent in zip(out[::2], out[1::2], strict=True):
        children.setdefault(int(parent), []).append(int(child))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def _process_cpu(pids: list[int]) -> dict[int, float]:
    cpu = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        cpu[pid] = (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime
    return cpu


def _cpu_snapshot(tree: Tree) -> dict[int, float]:
    """CPU seconds so far of the tree's server processes and of its database's backends."""
    assert tree.server is not None
    conn = psycopg2.connect(tree.url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            backends = [int(r[0]) for r in cur.fetchall()]
    finally:
        conn.close()
    return _process_cpu(_descendants(tree.server.pid) + backends)


def _cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def _alternating_http(trees: list[Tree], bodies: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Each body checked by every tree in turn, one keep-alive client per tree; milliseconds per tree."""
    clients = {
        t.name: httpx.Client(base_url=f"http://127.0.0.1:{t.port}", timeout=30, headers=t.headers) for t in trees
    }
    times: dict[str, list[float]] = {t.name: [] for t in trees}
    try:
        for body in bodies:
            for tree in trees:
                started = time.perf_counter()
                response = clients[tree.name].post("/api/v1/checks", json=body)
                times[tree.name].append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
    finally:
        for client in clients.values():
            client.close()
    return times


def _ratios(rounds: list[dict[str, dict[str, float]]], metric: str) -> dict[str, Any]:
    ours = [r["this"][metric] for r in rounds]
    theirs = [r["base"][metric] for r in rounds]
    ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
    return {
        "this": ours,
        "base": theirs,
        "ratio_median": round(statistics.median(ratios), 3),
        "ratio_min": round(min(ratios), 3),
        "ratio_max": round(max(ratios), 3),
    }


def compare_checks(args: argparse.Namespace, server_url: str) -> dict[str, Any]:
    ensure_scale_county(args.dir)
    trees = [
        Tree("this", REPO_ROOT, _fresh_database(server_url, THIS_DB), port=args.port or _free_port()),
        Tree(
            "base",
            args.base.resolve(),
            _fresh_database(server_url, BASE_DB),
            port=args.port + 1 if args.port else _free_port(),
        ),
    ]
    loads = {}
    for tree in trees:
        run_measured([tree.cli, "db", "upgrade"], env=tree.env())
        loads[tree.name] = round(
            run_measured([tree.cli, "demo", "load", "--dir", str(args.dir)], env=tree.env()).seconds, 1
        )
        tree.headers = bench_api_key(tree.url, f"compare {tree.name}")
    # the migration on the benchmark county: this tree's db upgrade on a copy of the other tree's database
    copy = _fresh_database(server_url, MIGRATE_DB, template=BASE_DB)
    migration = run_measured([trees[0].cli, "db", "upgrade"], env={**os.environ, "GIS_DATABASE_URL": copy})
    _drop(server_url, MIGRATE_DB)

    conn = psycopg2.connect(trees[0].url)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT v.id FROM layer l JOIN layer_version v ON v.id = l.current_version_id WHERE l.code = 'YJJBNT'"
        )
        (farmland,) = cur.fetchone()
    parcels = make_parcels(conn, farmland, args.parcels, args.seed)
    conn.close()
    bodies = [
        {"geometry": json.loads(shapely.to_geojson(p)), "land_use": "0701", "layers": list(RED_LINES)} for p in parcels
    ]
    rounds: list[dict[str, dict[str, float]]] = []
    try:
        for tree in trees:
            _start(tree, args.workers)
            bench_http(tree.port, bodies[:30], tree.headers)  # warm both workers
        for k in range(args.rounds):
            order = trees if k % 2 == 0 else trees[::-1]
            cpu_before = {tree.name: _cpu_snapshot(tree) for tree in order}
            times = _alternating_http(order, bodies)  # request by request: load changes hit both alike
            cpu = {tree.name: _cpu_used(cpu_before[tree.name], _cpu_snapshot(tree)) for tree in order}
            figures: dict[str, dict[str, float]] = {
                tree.name: {
                    "http_p50_ms": round(percentile(times[tree.name], 0.5), 2),
                    "http_p95_ms": round(percentile(times[tree.name], 0.95), 2),
                    # CPU of the server and its database backends per check: what contention does not change
                    "cpu_ms_per_check": round(cpu[tree.name] * 1000 / len(bodies), 2),
                }
                for tree in order
            }
            for tree in order:
                throughput = bench_throughput(tree.port, bodies, args.clients, args.seconds, tree.headers)
                figures[tree.name]["checks_per_s"] = throughput["checks_per_s"]
            for tree in order:
                if not args.batch:
                    break
                before = _cpu_snapshot(tree)
                batch = bench_batch(tree.port, parcels, args.batch, tree.headers)
                figures[tree.name]["batch_s"] = batch["seconds"]
                figures[tree.name]["batch_cpu_ms_per_parcel"] = round(
                    _cpu_used(before, _cpu_snapshot(tree)) * 1000 / args.batch, 2
                )
            for tree in order:
                print(f"round {k + 1} {tree.name}: {figures[tree.name]}", flush=True)
            rounds.append(figures)
    finally:
        for tree in trees:
            _stop(tree)
    metrics: tuple[str, ...] = ("http_p50_ms", "http_p95_ms", "cpu_ms_per_check", "checks_per_s")
    metrics += ("batch_s", "batch_cpu_ms_per_parcel") if args.batch else ()
    return {
        "benchmark": "checks, this tree vs base tree, interleaved rounds",
        "base": str(args.base),
        "parcels": len(parcels),
        "clients": args.clients,
        "workers": args.workers,
        "batch_parcels": args.batch,
        "county_load_s": loads,
        "migration_on_base_county_s": round(migration.seconds, 1),
        "rounds": rounds,
        "ratios": {m: _ratios(rounds, m) for m in metrics},
    }


def compare_import(args: argparse.Namespace, server_url: str) -> dict[str, Any]:
    manifest = ensure_scale_county(args.dir)
    entry = next(layer for layer in manifest["layers"] if layer["code"] == "YJJBNT")
    shp = args.dir / entry["file"]
    trees = [
        Tree("this", REPO_ROOT, _fresh_database(server_url, THIS_DB)),
        Tree("base", args.base.resolve(), _fresh_database(server_url, BASE_DB)),
    ]
    for tree in trees:
        run_measured([tree.cli, "db", "upgrade"], env=tree.env())
    ogr_url = trees[0].url
    ogr = [
        "ogr2ogr", "-f", "PostgreSQL", ogr_pg_connection(ogr_url), str(shp), "-nln", "bench_ogr_yjjbnt",
        "-overwrite", "-t_srs", "EPSG:4490", "-lco", "GEOMETRY_NAME=geom", "-lco", "SPATIAL_INDEX=GIST",
        "-nlt", "PROMOTE_TO_MULTI", "--config", "PG_USE_COPY", "YES",
    ]  # fmt: skip
    rounds: list[dict[str, dict[str, float]]] = []
    for k in range(args.rounds):
        order = trees if k % 2 == 0 else trees[::-1]
        figures: dict[str, dict[str, float]] = {}
        for tree in order:
            run = run_measured([tree.cli, "import", str(shp), "--layer", "YJJBNT", "--no-progress"], env=tree.env())
            figures[tree.name] = {"seconds": round(run.seconds, 2), "peak_rss_mib": round(run.peak_rss_mib, 1)}
        run = run_measured(ogr)
        figures["ogr2ogr"] = {"seconds": round(run.seconds, 2), "peak_rss_mib": round(run.peak_rss_mib, 1)}
        print(f"round {k + 1}: {figures}", flush=True)
        rounds.append(figures)
    ogr_ratio = [r["ogr2ogr"]["seconds"] / r["this"]["seconds"] for r in rounds]
    return {
        "benchmark": f"import of {shp.name} ({entry['features']:,} features), this tree vs base tree vs ogr2ogr",
        "base": str(args.base),
        "rounds": rounds,
        "ratios": {m: _ratios(rounds, m) for m in ("seconds", "peak_rss_mib")},
        "this_speed_vs_ogr2ogr": {
            "median": round(statistics.median(ogr_ratio), 3),
            "min": round(min(ogr_ratio), 3),
            "max": round(max(ogr_ratio), 3),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("checks", "import"))
    parser.add_argument("--base", type=Path, required=True, help="the other checkout (with its own .venv)")
    parser.add_argument("--dir", type=Path, default=BENCH_DIR)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--parcels", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--port", type=int, default=0, help="first of two ports (default: two free ones)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    server_url = os.environ.get("GIS_BENCH_SERVER_URL", "postgresql://postgres@127.0.0.1:5432")
    try:
        result = compare_checks(args, server_url) if args.what == "checks" else compare_import(args, server_url)
    finally:
        for name in (THIS_DB, BASE_DB):
            _drop(server_url, name)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    out = OUT_DIR / f"compare_{args.what}.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "rounds"}, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
