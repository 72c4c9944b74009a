"""Fault: an import killed with SIGKILL mid-way, on the benchmark county's farmland layer (130,315 patches).

Run: ``scripts/bench.sh fault-import [--dir data/bench] [--kills 0.1,0.5,0.95,attached]``.

``tests/test_import.py::test_killed_process_keeps_previous_version`` does this on 60 features; here the same idea
runs at scale. YJJBNT is imported once (the previous version), then re-imported in a child process that sends
itself SIGKILL — after the given fraction of features has been COPYed into the new version's table, or
(``attached``) after that table has been attached as a partition and its statistics read, just before the commit.
After each kill: PostgreSQL notices the dead client and rolls its transaction back; the previous version must be
current and complete (same version id, feature count, area total and checksum of its features), no version row,
partition or table of the killed import may remain, and the layer must not stay locked (a normal import right
after the last kill succeeds and becomes current).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import psycopg2
from sqlalchemy.engine.url import make_url

from .bench_tiles import exit_cleanly_on_sigterm, gis_platform_cmd, machine_load
from .common import BENCH_DIR, bench_database_url, ensure_scale_county
from .load import write_result

LAYER = "YJJBNT"

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from gis_platform.catalog import load_catalog
    from gis_platform.db import make_engine
    from gis_platform.ingest import pipeline
    from gis_platform.settings import Settings

    url, path, layer, when = sys.argv[1:5]
    settings = Settings(database_url=url)

    def die(*_args):
        print("killing myself", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    on_progress = None
    if when == "attached":  # the partition is attached and measured; only the commit is missing
        original = pipeline.version_stats

        def stats_then_die(*args, **kwargs):
            original(*args, **kwargs)
            die()

        pipeline.version_stats = stats_then_die
    else:
        fraction = float(when)

        def on_progress(done, total):
            if done >= fraction * total:
                die()

    pipeline.import_file(make_engine(settings), load_catalog(settings.layers_dir), settings, Path(path), layer,
                         imported_by="fault-bench", on_progress=on_progress)
    print("the import finished: it was not killed", flush=True)
    sys.exit(3)
    """
)


def connect(url: str) -> Any:
    u = make_url(url)
    conn = psycopg2.connect(host=u.host, port=u.port or 5432, user=u.username or "postgres", dbname=u.database)
    conn.autocommit = True
    return conn


def snapshot(conn: Any) -> dict[str, Any]:
    """The layer's current version and its features, every version row, partition and feature table."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT l.current_version_id, v.version_no, v.feature_count, v.status"
            " FROM layer l JOIN layer_version v ON v.id = l.current_version_id WHERE l.code = %s",
            (LAYER,),
        )
        current_id, version_no, recorded_count, status = cur.fetchone()
        cur.execute(
            "SELECT count(*), round(sum(area_m2)::numeric, 2)::text,"
            " md5(string_agg(md5(ST_AsBinary(geom)::text), '' ORDER BY id))"
            " FROM feature WHERE version_id = %s",
            (current_id,),
        )
        count, area, digest = cur.fetchone()
        cur.execute("SELECT count(*) FROM layer_version")
        versions = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = 'feature'::regclass")
        partitions = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM pg_class WHERE relkind IN ('r', 'p') AND relname LIKE 'feature%%'")
        tables = cur.fetchone()[0]
    return {
        "current_version_id": current_id,
        "version_no": version_no,
        "status": status,
        "recorded_feature_count": recorded_count,
        "feature_count": count,
        "area_total_m2": area,
        "features_md5": digest,
        "version_rows": versions,
        "partitions": partitions,
        "feature_tables": tables,
    }


def wait_for_rollback(conn: Any, before: dict[str, Any], seconds: float = 30.0) -> tuple[dict[str, Any], float]:
    """Until the server has rolled the dead client's transaction back (its backend gone): the state and the wait."""
    started = time.perf_counter()
    while True:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND state IS NOT NULL AND backend_type = 'client backend'"
            )
            others = cur.fetchone()[0]
        state = snapshot(conn)
        if (others == 0 and state == before) or time.perf_counter() - started > seconds:
            return state, time.perf_counter() - started
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, default=BENCH_DIR, help="county (generated with --scale when missing)")
    parser.add_argument("--kills", default="0.1,0.5,0.95,attached", help="fractions of features COPYed, or attached")
    args = parser.parse_args()
    exit_cleanly_on_sigterm()
    url = bench_database_url()
    manifest = ensure_scale_county(args.dir)
    entry = next(e for e in manifest["layers"] if e["code"] == LAYER)
    path = args.dir / entry["file"]
    env = {**os.environ, "GIS_DATABASE_URL": url}
    subprocess.run([gis_platform_cmd(), "db", "upgrade"], env=env, check=True, stdout=subprocess.DEVNULL)
    t0 = time.perf_counter()
    subprocess.run(
        [gis_platform_cmd(), "import", str(path), "--layer", LAYER], env=env, check=True, stdout=subprocess.DEVNULL
    )
    first_import_s = time.perf_counter() - t0
    conn = connect(url)
    before = snapshot(conn)
    print(f"previous version: {json.dumps(before)} (imported in {first_import_s:.1f} s)")
    machine_before = machine_load()
    runs = []
    for when in [w.strip() for w in args.kills.split(",") if w.strip()]:
        script_started = time.perf_counter()
        child = subprocess.run(
            [sys.executable, "-c", CHILD, url, str(path), LAYER, when], env=env, capture_output=True, timeout=900
        )
        killed_after_s = time.perf_counter() - script_started
        after, rollback_wait_s = wait_for_rollback(conn, before)
        run = {
            "kill_at": when,
            "returncode": child.returncode,
            "killed_by_sigkill": child.returncode == -signal.SIGKILL,
            "killed_after_s": round(killed_after_s, 2),
            "rollback_seen_after_s": round(rollback_wait_s, 2),
            "state_unchanged": after == before,
            "state_after": after,
        }
        if child.returncode != -signal.SIGKILL:
            run["child_output"] = (child.stdout + child.stderr).decode(errors="replace")[-2000:]
        runs.append(run)
        print(
            f"kill at {when:>8}: {'SIGKILL' if run['killed_by_sigkill'] else child.returncode}"
            f" after {killed_after_s:.1f} s; previous version intact: {run['state_unchanged']}"
            f" (rolled back within {rollback_wait_s:.1f} s)"
        )
    t0 = time.perf_counter()
    subprocess.run(
        [gis_platform_cmd(), "import", str(path), "--layer", LAYER], env=env, check=True, stdout=subprocess.DEVNULL
    )
    final = snapshot(conn)
    final_ok = (
        final["version_no"] == before["version_no"] + 1
        and final["feature_count"] == before["feature_count"]
        and final["features_md5"] == before["features_md5"]
    )
    print(
        f"a normal import afterwards: version {final['version_no']} current, {final['feature_count']} features,"
        f" same geometries: {final_ok} ({time.perf_counter() - t0:.1f} s)"
    )
    conn.close()
    verdicts = {
        "every child was killed by SIGKILL": all(r["killed_by_sigkill"] for r in runs),
        "previous version current and complete after every kill": all(r["state_unchanged"] for r in runs),
        "the next import succeeds and becomes current": final_ok,
    }
    for name, ok in verdicts.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    result = {
        "config": {"dir": str(args.dir), "layer": LAYER, "features": entry.get("features"), "kills": args.kills},
        "machine_before": machine_before,
        "machine_after": machine_load(),
        "first_import_s": round(first_import_s, 2),
        "previous_version": before,
        "runs": runs,
        "final": final,
        "verdicts": verdicts,
    }
    print(f"load average before {machine_before['loadavg']}, after {result['machine_after']['loadavg']}")
    print(f"written: {write_result('fault-import', result)}")
    if not all(verdicts.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
