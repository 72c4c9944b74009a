"""Check benchmark: HTTP check latency and throughput vs bare PostGIS SQL vs geopandas, on the benchmark county.

Run: ``scripts/bench.sh checks`` (loads the benchmark county through the import path into a throwaway bench
database, starts ``gis-platform serve --workers 2`` on a loopback port, and measures in the same run):

- (a) bare SQL: the same red-line overlay (union area per layer) straight through psycopg2;
- (a2) the check in process: the service's own ``run_check`` (parse, overlay, rules, stored document and audit
  entry, one transaction) called directly, no HTTP — what the service does before HTTP adds its part;
- (a3) the same check step by step: parsing, checkout, the overlay statement, the rules and document, the
  INSERT with its audit entry, the commit (p50 of each);
- (b) geopandas: the parcel overlaid with the red-line layers already in memory (spatial index + intersection);
- (c) the platform over HTTP: one client, keep-alive, the full check document and stored record, on the same
  three red-line layers as (a) and (b), and once more on every check layer (三调 地类统计, plan, hazards too);
- (c2) the HTTP floor: ``GET /api/v1/auth/me`` with the same key, client and server;
- (d) throughput: several concurrent clients for a fixed time;
- resident memory of each server worker at the end.
Targets (issue #3): p50 ≤ 25 ms, p95 ≤ 60 ms, HTTP p50 ≤ 2× bare SQL p50, ≥ 150 checks/s with 2 workers,
≤ 500 MiB per worker. Reported as measured; ratios are against baselines taken in the same run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import geopandas as gpd
import httpx
import numpy as np
import orjson
import psycopg2
import shapely
from pyproj import Geod, Transformer

from bench import common
from bench.common import BENCH_DIR, OUT_DIR, bench_database_url, ensure_scale_county, percentile, run_measured

RED_LINES = ("YJJBNT", "STBHHX", "CZKFBJ")
GEOD = Geod(ellps="GRS80")


def load_county(url: str, directory: Path) -> None:
    env = {**os.environ, "GIS_DATABASE_URL": url}
    gp = str(Path(sys.executable).with_name("gis-platform"))
    run_measured([gp, "db", "upgrade"], env=env)
    run_measured([gp, "demo", "load", "--dir", str(directory)], env=env)


def api_headers(url: str) -> dict[str, str]:
    """``Authorization`` for an API key with no rate limit, made in the bench database (none before accounts)."""
    helper = getattr(common, "bench_api_key", None)
    if helper is not None:
        return dict(helper(url, "bench checks"))
    try:
        from gis_platform import accounts, audit
    except ImportError:
        return {}
    from gis_platform.db import make_engine
    from gis_platform.settings import Settings

    engine = make_engine(Settings(database_url=url), pool_size=1)
    try:
        _record, secret = accounts.create_api_key(
            engine, name="bench checks", actor=audit.Actor(name="bench", kind="cli"), rate_limit_per_minute=0
        )
    finally:
        engine.dispose()
    return {"Authorization": f"Bearer {secret}"}


def current_versions(conn: Any) -> dict[str, int]:
    with conn.cursor() as cur:
        cur.execute("SELECT l.code, l.current_version_id FROM layer l WHERE l.current_version_id IS NOT NULL")
        return dict(cur.fetchall())


def make_parcels(conn: Any, version: int, n: int, seed: int) -> list[shapely.Polygon]:
    """100-vertex parcels (~300 m across) centred on farmland patches, so they press on the red lines."""
    with conn.cursor() as cur:
        cur.execute("SELECT setseed(%s)", (seed / 1000,))
        cur.execute(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM feature WHERE version_id = %s"
            " ORDER BY random() LIMIT %s) s",
            (version, n),
        )
        centres = cur.fetchall()
    rng = np.random.default_rng(seed)
    parcels = []
    for lon, lat in centres:
        angles = np.linspace(0, 2 * math.pi, 100, endpoint=False)
        radius_m = 150 * (1 + 0.15 * rng.standard_normal(100).clip(-2, 2))
        dlat = radius_m * np.sin(angles) / 111_000
        dlon = radius_m * np.cos(angles) / (111_000 * math.cos(math.radians(lat)))
        parcels.append(shapely.Polygon(np.column_stack([lon + dlon, lat + dlat])).buffer(0))
    return parcels


# the same overlay as a check: in the survey plane, the union measured on the ellipsoid
BARE_SQL = """
SELECT ST_Area(ST_Transform(ST_Union(ST_CollectionExtract(ST_Intersection(f.geom_plane, p.g), 3)), 4490)::geography),
       count(*)
FROM feature f, (SELECT ST_GeomFromEWKB(decode(%s, 'hex')) g) p
WHERE f.version_id = %s AND ST_Intersects(f.geom_plane, p.g)
"""
TO_PLANE = Transformer.from_crs(4490, 4547, always_xy=True)  # the benchmark county's survey plane


def bench_bare_sql(conn: Any, versions: dict[str, int], parcels: list[shapely.Polygon]) -> list[float]:
    times = []
    with conn.cursor() as cur:
        cur.execute("SET max_parallel_workers_per_gather = 0; SET jit = off")
        for parcel in parcels:
            plane = shapely.transform(parcel, lambda xy: np.column_stack(TO_PLANE.transform(xy[:, 0], xy[:, 1])))
            wkb = shapely.to_wkb(shapely.set_srid(plane, 4547), hex=True, include_srid=True)
            started = time.perf_counter()
            for code in RED_LINES:
                cur.execute(BARE_SQL, (wkb, versions[code]))
                cur.fetchone()
            times.append((time.perf_counter() - started) * 1000)
    return times


class InProcessService:
    """The check service as the API process holds it (settings, engine, catalogue, rules), in this process."""

    def __init__(self, url: str) -> None:
        from gis_platform.audit import Actor
        from gis_platform.catalog import load_catalog
        from gis_platform.db import make_engine
        from gis_platform.rules import load_rules
        from gis_platform.settings import Settings

        self.settings = Settings(database_url=url)
        self.engine = make_engine(self.settings, pool_size=1)
        self.catalog = load_catalog(self.settings.layers_dir)
        self.rules = load_rules(self.settings.layers_dir, self.catalog)
        self.actor = Actor(name="key:bench", kind="api_key", role="approval", ip="127.0.0.1")

    def request(self, body: dict[str, Any]) -> Any:
        """The ``CheckRequest`` the check route makes of a request body (parsing the parcel included)."""
        from gis_platform.analysis.parcel import parcels_from_geojson
        from gis_platform.checks import CheckRequest

        parcel = parcels_from_geojson(
            body["geometry"],
            "EPSG:4490",
            plane=self.catalog.survey_plane,
            max_vertices=self.settings.max_parcel_vertices,
            max_parcels=1,
        )[0]
        return CheckRequest(
            parcel=parcel,
            layers=tuple(body["layers"]),
            land_use_code=body["land_use"],
            source="bench",
            created_by=self.actor.name,
            actor=self.actor,
        )


def bench_in_process(url: str, bodies: list[dict[str, Any]]) -> list[float]:
    """(a2) ``run_check`` as the check route calls it, in this process: the check's own work without HTTP."""
    from gis_platform.checks import run_check

    service = InProcessService(url)
    times = []
    try:
        for body in bodies:
            started = time.perf_counter()
            run_check(service.engine, service.catalog, service.rules, service.settings, service.request(body))
            times.append((time.perf_counter() - started) * 1000)
    finally:
        service.engine.dispose()
    return times


def bench_check_phases(url: str, bodies: list[dict[str, Any]]) -> dict[str, float]:
    """(a3) Where the in-process check's time goes: ``run_check``'s steps timed one by one (p50 of each, ms).

    The same steps as ``run_check`` (one transaction: compute, then store), with a clock between them; the
    overlay statement inside ``compute_check`` is timed by wrapping the function the checks module calls.
    """
    from gis_platform import checks

    service = InProcessService(url)
    phases: dict[str, list[float]] = {
        k: [] for k in ("parse", "checkout", "overlay_statement", "rules_and_document", "store", "commit")
    }
    overlay = checks.overlay_parcel

    def timed_overlay(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return overlay(*args, **kwargs)
        finally:
            phases["overlay_statement"].append((time.perf_counter() - started) * 1000)

    checks.overlay_parcel = timed_overlay  # type: ignore[assignment]
    try:
        for body in bodies:
            t0 = time.perf_counter()
            request = service.request(body)
            t1 = time.perf_counter()
            with service.engine.connect() as conn:
                t2 = time.perf_counter()
                result = checks.compute_check(conn, service.catalog, service.rules, service.settings, request)
                t3 = time.perf_counter()
                checks.store_check(conn, request, result)
                t4 = time.perf_counter()
                conn.commit()
            t5 = time.perf_counter()
            phases["parse"].append((t1 - t0) * 1000)
            phases["checkout"].append((t2 - t1) * 1000)
            phases["rules_and_document"].append((t3 - t2) * 1000 - phases["overlay_statement"][-1])
            phases["store"].append((t4 - t3) * 1000)
            phases["commit"].append((t5 - t4) * 1000)
    finally:
        checks.overlay_parcel = overlay  # type: ignore[assignment]
        service.engine.dispose()
    return {k: round(percentile(v, 0.5), 2) for k, v in phases.items()}


def bench_http_floor(port: int, headers: dict[str, str], n: int) -> list[float]:
    """The HTTP floor: ``GET /api/v1/auth/me`` with the same key — the same client, server, middleware and
    authentication as a check, and no check."""
    times = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, headers=headers) as client:
        for _ in range(n):
            started = time.perf_counter()
            response = client.get("/api/v1/auth/me")
            times.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
    return times


def bench_geopandas(url: str, versions: dict[str, int], parcels: list[shapely.Polygon]) -> tuple[list[float], float]:
    from sqlalchemy import create_engine

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1))
    started = time.perf_counter()
    layers = {
        code: gpd.read_postgis(
            f"SELECT geom FROM feature WHERE version_id = {int(versions[code])}", engine, geom_col="geom"
        )
        for code in RED_LINES
    }
    for frame in layers.values():
        frame.sindex  # noqa: B018 - build the spatial index before timing
    load_s = time.perf_counter() - started
    times = []
    for parcel in parcels:
        t0 = time.perf_counter()
        for frame in layers.values():
            hits = frame.geometry.values[frame.sindex.query(parcel, predicate="intersects")]
            pieces = shapely.intersection(np.asarray(hits), parcel)
            union = shapely.union_all(pieces)
            if not union.is_empty:
                abs(GEOD.geometry_area_perimeter(shapely.orient_polygons(union))[0])
        times.append((time.perf_counter() - t0) * 1000)
    return times, load_s


def start_server(url: str, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "GIS_DATABASE_URL": url}
    gp = str(Path(sys.executable).with_name("gis-platform"))
    proc = subprocess.Popen(
        [gp, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("the server did not become healthy in 60 s")


def worker_rss_mib(proc: subprocess.Popen[bytes]) -> list[float]:
    out = subprocess.run(["ps", "-o", "pid=,rss=", "--ppid", str(proc.pid)], capture_output=True, text=True).stdout
    return [round(int(rss) / 1024, 1) for _pid, rss in (line.split() for line in out.strip().splitlines())]


def bench_http(port: int, bodies: list[dict[str, Any]], headers: dict[str, str]) -> list[float]:
    times = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, headers=headers) as client:
        for body in bodies:
            started = time.perf_counter()
            response = client.post("/api/v1/checks", json=body)
            times.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
    return times


def bench_throughput(
    port: int, bodies: list[dict[str, Any]], clients: int, seconds: float, headers: dict[str, str]
) -> dict[str, Any]:
    done, errors = [0] * clients, [0] * clients
    stop = time.monotonic() + seconds

    def run(i: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, headers=headers) as client:
            k = i
            while time.monotonic() < stop:
                response = client.post("/api/v1/checks", json=bodies[k % len(bodies)])
                if response.status_code == 201:
                    done[i] += 1
                else:
                    errors[i] += 1
                k += clients

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    return {
        "clients": clients,
        "seconds": round(elapsed, 2),
        "checks": sum(done),
        "errors": sum(errors),
        "checks_per_s": round(sum(done) / elapsed, 1),
    }


def bench_batch(port: int, parcels: list[shapely.Polygon], n: int, headers: dict[str, str]) -> dict[str, Any]:
    """Submit ``n`` parcels (cycling the list) as one batch job and wait until it has finished.

    The clock starts before the request body is encoded (orjson, ~0.1 s for 10,000 parcels; httpx's own
    encoder took ~1 s) and stops when the job is seen finished (polled every 0.5 s).
    """
    features = [
        {
            "type": "Feature",
            "properties": {"DKBH": f"B{i}"},
            "geometry": json.loads(shapely.to_geojson(parcels[i % len(parcels)])),
        }
        for i in range(n)
    ]
    body = {
        "parcels": {"type": "FeatureCollection", "features": features},
        "land_use": "0701",
        "label_field": "DKBH",
        "layers": list(RED_LINES),  # the same overlay as the single-check figures
    }
    headers = {**headers, "content-type": "application/json"}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120, headers=headers) as client:
        started = time.perf_counter()
        content = orjson.dumps(body)
        encoded = time.perf_counter() - started
        response = client.post("/api/v1/checks/batch", content=content)
        response.raise_for_status()
        submitted = time.perf_counter() - started
        job_id = response.json()["id"]
        while True:
            job = client.get(f"/api/v1/jobs/{job_id}").json()
            if job["status"] in ("succeeded", "failed"):
                break
            time.sleep(0.5)
        elapsed = time.perf_counter() - started
    return {
        "parcels": n,
        "status": job["status"],
        "error": job.get("error"),
        "seconds": round(elapsed, 1),
        "encode_s": round(encoded, 2),
        "submit_s": round(submitted, 2),
        "ms_per_parcel": round(elapsed * 1000 / n, 2),
        "summary": job.get("summary"),
    }


def summary(times: list[float]) -> dict[str, float]:
    return {
        "n": len(times),
        "p50_ms": round(percentile(times, 0.5), 2),
        "p95_ms": round(percentile(times, 0.95), 2),
        "mean_ms": round(sum(times) / len(times), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=BENCH_DIR)
    parser.add_argument("--parcels", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--port", type=int, default=18765)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--batch", type=int, default=10_000, help="parcels in the batch job (0: skip)")
    args = parser.parse_args()

    url = bench_database_url()
    ensure_scale_county(args.dir)
    load_county(url, args.dir)
    conn = psycopg2.connect(url)
    conn.autocommit = True
    versions = current_versions(conn)
    parcels = make_parcels(conn, versions["YJJBNT"], args.parcels, args.seed)
    full = [{"geometry": json.loads(shapely.to_geojson(p)), "land_use": "0701"} for p in parcels]
    bodies = [{**body, "layers": list(RED_LINES)} for body in full]  # the same overlay as the bare SQL

    bench_bare_sql(conn, versions, parcels[:20])  # warm the cache
    sql_times = bench_bare_sql(conn, versions, parcels)
    gpd_times, gpd_load_s = bench_geopandas(url, versions, parcels)
    bench_in_process(url, bodies[:20])  # warm
    in_process_times = bench_in_process(url, bodies)
    phases = bench_check_phases(url, bodies)
    headers = api_headers(url)
    server = start_server(url, args.port, args.workers)
    try:
        bench_http(args.port, bodies[:20], headers)  # warm both workers
        http_times = bench_http(args.port, bodies, headers)
        floor_times = bench_http_floor(args.port, headers, len(bodies))
        full_times = bench_http(args.port, full, headers)
        throughput = bench_throughput(args.port, bodies, args.clients, args.seconds, headers)
        batch = bench_batch(args.port, parcels, args.batch, headers) if args.batch else None
        rss = worker_rss_mib(server)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    sql, http, gp, every = summary(sql_times), summary(http_times), summary(gpd_times), summary(full_times)
    in_process = summary(in_process_times)
    result = {
        "benchmark": "parcel check (100-vertex, ~300 m) against the red lines of the benchmark county",
        "parcels": len(parcels),
        "layer_versions": {code: versions[code] for code in RED_LINES},
        "bare_sql_red_lines": sql,
        "geopandas_in_memory_red_lines": {**gp, "load_s": round(gpd_load_s, 2)},
        "in_process_check_red_lines": in_process,
        "in_process_check_phases_p50_ms": phases,
        "http_check_red_lines": http,
        "http_floor_auth_me": summary(floor_times),
        "http_check_all_check_layers": every,
        "http_over_bare_sql_p50": round(http["p50_ms"] / sql["p50_ms"], 2),
        "http_over_in_process_check_p50": round(http["p50_ms"] / in_process["p50_ms"], 2),
        "in_process_check_over_bare_sql_p50": round(in_process["p50_ms"] / sql["p50_ms"], 2),
        "throughput": throughput,
        "batch": batch,
        "worker_rss_mib": rss,
        "targets": {
            "p50_ms": 25,
            "p95_ms": 60,
            "http_over_sql_max": 2.0,
            "checks_per_s_min": 150,
            "rss_mib_max": 500,
            "batch_10000_s_max": 60,
        },
    }
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "checks.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
