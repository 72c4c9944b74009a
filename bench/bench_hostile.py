"""Issue 13's hostile files against a real server: time to refuse each, memory, and a second client's p95.

    scripts/bench.sh hostile [--dir data/demo] [--seconds 20] [--attackers 2] [--workers 2]

The demo county is loaded through ``gis-platform demo load``; ``gis-platform serve --workers N`` (uvloop, the
default sandbox settings) serves it. The full-size hostile files are built in code (tests/hostile_files.py): a
GeoPackage whose only layer is a recursive view, one with a trigger, a DXF of 200,000 polylines (~38 MB), a HATCH
spline of ~96,000 flattened vertices, a DXF of 20,000 polylines (at the entity limit: parsed, then refused for its
20,000 parcels), a boundary TXT of 1,000,000 points (~35 MB), a 4,999-part MultiPolygon.

1. Each file is uploaded once to ``/checks/upload``: status, error, seconds.
2. A second client checks parcels (``POST /checks``, the three red lines, one at a time) for ``--seconds`` with the
   server idle, then for ``--seconds`` while ``--attackers`` clients upload the recursive-view GeoPackage and the
   200,000-polyline DXF in turn, as fast as they are answered. Target: p95 under attack ≤ 2 × p95 idle.
3. The RSS of the server's processes (uvicorn workers and their sandbox workers) before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg2
import shapely

from bench.bench_checks import RED_LINES, current_versions, load_county, make_parcels, start_server
from bench.common import OUT_DIR, REPO_ROOT, bench_api_key, bench_database_url, percentile, run_measured
from tests import hostile_files as hostile

DEMO_DIR = REPO_ROOT / "data" / "demo"


def build_files(folder: Path) -> dict[str, tuple[Path, dict[str, str]]]:
    """name → (file, extra form fields)."""
    dxf = {"crs": "EPSG:4547"}
    return {
        "recursive_view.gpkg": (hostile.recursive_view_gpkg(folder / "recursive_view.gpkg"), {}),
        "trigger.gpkg": (hostile.trigger_gpkg(folder / "trigger.gpkg"), {}),
        "polylines_200000.dxf": (hostile.polylines_dxf(folder / "polylines_200000.dxf", 200_000), dxf),
        # at the entity limit: parsed in full (the most a DXF may cost), then refused for its 20,000 parcels
        "polylines_20000.dxf": (hostile.polylines_dxf(folder / "polylines_20000.dxf", 20_000), dxf),
        "hatch_spline.dxf": (hostile.spline_hatch_dxf(folder / "hatch_spline.dxf"), dxf),
        "points_1000000.txt": (hostile.points_txt(folder / "points_1000000.txt", 1_000_000), {}),
        "parts_4999.geojson": (hostile.multipart_geojson(folder / "parts_4999.geojson", 4999), {}),
    }


def process_tree_rss_mib(root: int) -> dict[str, float]:
    """RSS (MiB) of every process under ``root``, by pid and command."""
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid=,rss=,args="], capture_output=True, text=True).stdout
    rows = [line.split(None, 3) for line in out.strip().splitlines()]
    children: dict[int, list[tuple[int, int, str]]] = {}
    for pid, ppid, rss, args in rows:
        children.setdefault(int(ppid), []).append((int(pid), int(rss), args))
    found: dict[str, float] = {
        f"{pid} server process": round(int(rss) / 1024, 1) for pid, _ppid, rss, _args in rows if int(pid) == root
    }
    stack = [root]
    while stack:
        for pid, rss, args in children.get(stack.pop(), []):
            kind = "sandbox worker" if "sandbox_worker" in args else "server process"
            found[f"{pid} {kind}"] = round(rss / 1024, 1)
            stack.append(pid)
    return found


def upload(http: httpx.Client, path: Path, form: dict[str, str]) -> tuple[int, str, float]:
    started = time.perf_counter()
    response = http.post("/api/v1/checks/upload", files={"file": (path.name, path.read_bytes())}, data=form)
    seconds = time.perf_counter() - started
    body = response.json()
    return response.status_code, str(body.get("error") or body.get("count")), seconds


def second_client(port: int, headers: dict[str, str], bodies: list[dict[str, Any]], seconds: float) -> list[float]:
    times: list[float] = []
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60) as http:
        while time.monotonic() < deadline:
            body = bodies[len(times) % len(bodies)]
            started = time.perf_counter()
            http.post("/api/v1/checks", json=body).raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
    return times


def attack(
    port: int, headers: dict[str, str], files: list[tuple[Path, dict[str, str]]], stop: threading.Event
) -> list[tuple[int, str, float]]:
    outcomes: list[tuple[int, str, float]] = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=120) as http:
        while not stop.is_set():
            for path, form in files:
                outcomes.append(upload(http, path, form))
    return outcomes


def summary(times: list[float]) -> dict[str, float]:
    return {
        "requests": len(times),
        "p50_ms": round(percentile(times, 0.5), 2),
        "p95_ms": round(percentile(times, 0.95), 2),
        "max_ms": round(max(times), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=DEMO_DIR)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--attackers", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--parcels", type=int, default=100)
    parser.add_argument("--port", type=int, default=18790)
    args = parser.parse_args()
    url = bench_database_url()
    if not (args.dir / "manifest.json").exists():
        generator = REPO_ROOT / "data" / "generate_demo_county.py"
        run_measured([sys.executable, str(generator), "--out", str(args.dir)])
    load_county(url, args.dir)
    headers = bench_api_key(url, "bench hostile")
    conn = psycopg2.connect(url)
    parcels = make_parcels(conn, current_versions(conn)["YJJBNT"], args.parcels, seed=7)
    conn.close()
    bodies = [
        {"geometry": json.loads(shapely.to_geojson(p)), "land_use": "0701", "layers": list(RED_LINES)} for p in parcels
    ]

    with tempfile.TemporaryDirectory(prefix="gis-hostile-") as tmp:
        started = time.perf_counter()
        files = build_files(Path(tmp))
        print(f"hostile files built in {time.perf_counter() - started:.1f} s", flush=True)
        sizes = {name: path.stat().st_size for name, (path, _form) in files.items()}
        server = start_server(url, args.port, args.workers)
        try:
            time.sleep(5)  # every sandbox worker warm
            rss_before = process_tree_rss_mib(server.pid)
            refusals = {}
            with httpx.Client(base_url=f"http://127.0.0.1:{args.port}", headers=headers, timeout=120) as http:
                for name, (path, form) in files.items():
                    status, error, seconds = upload(http, path, form)
                    refusals[name] = {
                        "bytes": sizes[name],
                        "status": status,
                        "error": error,
                        "seconds": round(seconds, 3),
                    }
                    print(f"{name}: {refusals[name]}", flush=True)
            second_client(args.port, headers, bodies[:10], 2)  # warm
            idle = second_client(args.port, headers, bodies, args.seconds)
            print(f"idle: {summary(idle)}", flush=True)
            stop = threading.Event()
            attack_files = [files["recursive_view.gpkg"], files["polylines_200000.dxf"]]
            results: list[list[tuple[int, str, float]]] = [[] for _ in range(args.attackers)]
            threads = [
                threading.Thread(target=lambda i=i: results[i].extend(attack(args.port, headers, attack_files, stop)))
                for i in range(args.attackers)
            ]
            for thread in threads:
                thread.start()
            time.sleep(1)
            attacked = second_client(args.port, headers, bodies, args.seconds)
            stop.set()
            for thread in threads:
                thread.join()
            print(f"under attack: {summary(attacked)}", flush=True)
            rss_after = process_tree_rss_mib(server.pid)
        finally:
            os.killpg(server.pid, 15)
            server.wait(timeout=60)
    uploads = [outcome for result in results for outcome in result]
    by_outcome: dict[str, list[float]] = {}
    for status, error, seconds in uploads:
        by_outcome.setdefault(f"{status} {error}", []).append(seconds)
    result = {
        "benchmark": "hostile uploads against gis-platform serve, a second client's checks idle vs under attack",
        "workers": args.workers,
        "attackers": args.attackers,
        "seconds": args.seconds,
        "refusals": refusals,
        "idle": summary(idle),
        "under_attack": summary(attacked),
        "p95_ratio": round(percentile(attacked, 0.95) / percentile(idle, 0.95), 2),
        "p50_ratio": round(percentile(attacked, 0.5) / percentile(idle, 0.5), 2),
        "attack_uploads": {
            k: {"count": len(v), "median_s": round(percentile(v, 0.5), 3)} for k, v in by_outcome.items()
        },
        "rss_mib_before": rss_before,
        "rss_mib_after": rss_after,
    }
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "hostile.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
