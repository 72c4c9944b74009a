"""Mixed load against the platform: N concurrent clients for T seconds of checks, identify, tiles and check lists.

Run: ``scripts/bench.sh load [--clients 50] [--seconds 60] [--workers 2] [--dir data/demo]`` — the demo county is
loaded through ``gis-platform demo load`` into a throwaway bench database, ``gis-platform serve`` starts on a free
127.0.0.1 port, and an API key with no rate limit is made for the run (``gis_platform.accounts.create_api_key``).
Against a server that is already running: ``python -m bench.load --url http://127.0.0.1:8000 --api-key KEY``.

Each client is an asyncio task with its own keep-alive connection (httpx) that sends one request after another,
drawn from the mix (default check 25 %, identify 25 %, tile 35 %, list 15 %):

- ``check``: ``POST /api/v1/checks`` with a square parcel of 60–250 m inside the county (random point in a
  township from ``/api/v1/layers/XZQ/features.geojson``), a random land-use code;
- ``identify``: ``GET /api/v1/identify`` at a random point inside the county;
- ``tile``: ``GET`` a vector tile of a tiled layer (URL templates from ``/api/v1/map-config``), z12–z16 over
  the county bbox, with ``Accept-Encoding: gzip``;
- ``list``: ``GET /api/v1/checks?limit=20`` (every fourth with the county bbox).

Reported per kind and in total: p50/p95/p99/max latency (ms), throughput (requests/s) and counts by status.
2xx and 304 are successes; anything else (and a transport error, status 0) is an error. Results go to
``bench/out/load-<time>.json``. Loopback only, bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import hashlib
import json
import math
import os
import random
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import shapely
from shapely.geometry import shape

from .bench_tiles import exit_cleanly_on_sigterm, load_county, machine_load, running_server, tile_of
from .common import OUT_DIR, REPO_ROOT, bench_api_key, bench_database_url, percentile

KINDS = ("check", "identify", "tile", "list")
DEFAULT_MIX = "check=25,identify=25,tile=35,list=15"
LAND_USES = ("0701", "0601", "1202", "0101", "0803")
TILE_ZOOMS = (12, 13, 14, 15, 16)


@dataclass
class Event:
    kind: str
    start: float  # seconds since the load started
    end: float
    status: int  # 0: transport error (no HTTP response)
    error: str | None = None  # the JSON body's "error", or the transport exception's name
    check_id: str | None = None
    digest: str | None = None  # sha256 of the check document as returned

    @property
    def ms(self) -> float:
        return (self.end - self.start) * 1000

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300 or self.status == 304


@dataclass
class Plan:
    """What the clients ask for, drawn from the county the server serves."""

    county: Any  # shapely geometry (EPSG:4490 lon/lat)
    bbox: tuple[float, float, float, float]
    tile_templates: list[str]
    mix: list[tuple[str, float]]

    def __post_init__(self) -> None:
        shapely.prepare(self.county)

    def point(self, rng: random.Random) -> tuple[float, float]:
        minx, miny, maxx, maxy = self.bbox
        for _ in range(1000):
            lon, lat = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
            if self.county.contains(shapely.Point(lon, lat)):
                return lon, lat
        raise RuntimeError("no point inside the county after 1000 tries")

    def parcel(self, rng: random.Random) -> dict[str, Any]:
        for _ in range(100):
            lon, lat = self.point(rng)
            half_m = rng.uniform(30, 125)
            dlat = half_m / 111_000
            dlon = half_m / (111_000 * math.cos(math.radians(lat)))
            square = shapely.box(lon - dlon, lat - dlat, lon + dlon, lat + dlat)
            if self.county.contains(square):
                return shapely.geometry.mapping(square)  # type: ignore[no-any-return]
        raise RuntimeError("no parcel inside the county after 100 tries")

    def kind(self, rng: random.Random) -> str:
        return rng.choices([k for k, _ in self.mix], weights=[w for _, w in self.mix])[0]

    def request(self, kind: str, rng: random.Random, serial: int) -> tuple[str, str, dict[str, Any] | None]:
        if kind == "check":
            body = {
                "geometry": self.parcel(rng),
                "crs": "EPSG:4490",
                "land_use": rng.choice(LAND_USES),
                "project_name": "压力测试 load test",
                "project_number": f"LOAD-{serial:07d}",
            }
            return "POST", "/api/v1/checks", body
        if kind == "identify":
            lon, lat = self.point(rng)
            return "GET", f"/api/v1/identify?lon={lon:.6f}&lat={lat:.6f}", None
        if kind == "tile":
            z = rng.choice(TILE_ZOOMS)
            lon, lat = self.point(rng)
            x, y = tile_of(lon, lat, z)
            template = rng.choice(self.tile_templates)
            return "GET", template.replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y)), None
        if kind == "list":
            url = "/api/v1/checks?limit=20"
            if serial % 4 == 0:
                url += "&bbox=" + ",".join(f"{v:.5f}" for v in self.bbox)
            return "GET", url, None
        raise ValueError(kind)


def parse_mix(text: str) -> list[tuple[str, float]]:
    mix = []
    for part in text.split(","):
        name, _, weight = part.partition("=")
        if name.strip() not in KINDS:
            raise SystemExit(f"unknown request kind {name!r} in --mix (known: {', '.join(KINDS)})")
        mix.append((name.strip(), float(weight)))
    return mix


def make_plan(base_url: str, headers: dict[str, str], mix: list[tuple[str, float]]) -> Plan:
    with httpx.Client(base_url=base_url, headers=headers, trust_env=False, timeout=60) as http:
        config = http.get("/api/v1/map-config")
        config.raise_for_status()
        doc = config.json()
        towns = http.get("/api/v1/layers/XZQ/features.geojson", params={"limit": 10_000})
        towns.raise_for_status()
    county = shapely.union_all([shape(f["geometry"]) for f in towns.json()["features"]])
    templates = [layer["tile_url"] for group in doc["groups"] for layer in group["layers"] if layer.get("tile_url")]
    if not templates:
        raise SystemExit("the server's map-config lists no tiled layer: is the county loaded?")
    bbox = tuple(doc["county"]["bbox"])
    return Plan(county, (bbox[0], bbox[1], bbox[2], bbox[3]), templates, mix)


def _digest(doc: Any) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


async def _client(
    http: httpx.AsyncClient,
    plan: Plan,
    seed: int,
    started: float,
    until: Callable[[], bool],
    events: list[Event],
    counter: list[int],
) -> None:
    rng = random.Random(seed)
    while not until():
        kind = plan.kind(rng)
        counter[0] += 1
        method, url, body = plan.request(kind, rng, counter[0])
        t0 = time.perf_counter() - started
        try:
            response = await http.request(method, url, json=body)
        except httpx.HTTPError as exc:
            events.append(Event(kind, t0, time.perf_counter() - started, 0, type(exc).__name__))
            await asyncio.sleep(0.05)  # no busy loop when the server is away
            continue
        t1 = time.perf_counter() - started
        event = Event(kind, t0, t1, response.status_code)
        if response.status_code >= 400:
            try:
                event.error = str(response.json().get("error"))
            except (ValueError, AttributeError):
                event.error = "not-json"
        elif kind == "check" and response.status_code in (200, 201):
            doc = response.json()
            event.check_id, event.digest = str(doc["id"]), _digest(doc)
        events.append(event)


async def run_load(
    base_url: str,
    headers: dict[str, str],
    plan: Plan,
    *,
    clients: int,
    seconds: float,
    seed: int = 7,
    stop: Callable[[], bool] | None = None,
    started: float | None = None,
) -> tuple[list[Event], float]:
    """``clients`` concurrent clients for ``seconds`` (or until ``stop()``); the events and the elapsed time.

    Event times are seconds since ``started`` (a ``time.perf_counter()`` value; now by default).
    """
    events: list[Event] = []
    started = time.perf_counter() if started is None else started
    deadline = started + seconds

    def until() -> bool:
        return time.perf_counter() >= deadline or (stop is not None and stop())

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    timeout = httpx.Timeout(30.0, connect=5.0)
    counter = [0]
    async with httpx.AsyncClient(
        base_url=base_url,
        headers={**headers, "Accept-Encoding": "gzip"},
        limits=limits,
        timeout=timeout,
        trust_env=False,
    ) as http:
        await asyncio.gather(
            *(_client(http, plan, seed * 1000 + i, started, until, events, counter) for i in range(clients))
        )
    return events, time.perf_counter() - started


def summarise(events: list[Event], elapsed: float) -> dict[str, Any]:
    def block(selected: list[Event]) -> dict[str, Any]:
        ok = [e.ms for e in selected if e.ok]
        statuses = collections.Counter(str(e.status) for e in selected)
        errors = collections.Counter(f"{e.status} {e.error}" for e in selected if not e.ok)
        return {
            "requests": len(selected),
            "ok": len(ok),
            "errors": len(selected) - len(ok),
            "throughput_rps": round(len(selected) / elapsed, 1) if elapsed else 0.0,
            "ok_rps": round(len(ok) / elapsed, 1) if elapsed else 0.0,
            "p50_ms": round(percentile(ok, 0.50), 2) if ok else None,
            "p95_ms": round(percentile(ok, 0.95), 2) if ok else None,
            "p99_ms": round(percentile(ok, 0.99), 2) if ok else None,
            "max_ms": round(max(ok), 2) if ok else None,
            "by_status": dict(sorted(statuses.items())),
            "errors_by_status": dict(sorted(errors.items())),
        }

    return {
        "elapsed_s": round(elapsed, 2),
        "kinds": {kind: block([e for e in events if e.kind == kind]) for kind in KINDS},
        "total": block(events),
    }


def print_table(summary: dict[str, Any]) -> None:
    head = f"{'kind':<9}{'requests':>9}{'errors':>8}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}"
    print(head)
    for name, b in [*summary["kinds"].items(), ("total", summary["total"])]:
        cells = [b[k] if b[k] is not None else float("nan") for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")]
        print(
            f"{name:<9}{b['requests']:>9}{b['errors']:>8}{b['throughput_rps']:>8.1f}"
            + "".join(f"{c:>9.1f}" for c in cells)
        )
    if summary["total"]["errors_by_status"]:
        print("errors:", summary["total"]["errors_by_status"])


# --------------------------------------------------------------------------------------------------
# The bench database, the server and an API key
# --------------------------------------------------------------------------------------------------


def ensure_demo_county(directory: Path) -> None:
    if (directory / "manifest.json").exists():
        return
    gp = str(Path(sys.executable).with_name("gis-platform"))
    import subprocess

    print(f"generating the demo county in {directory} …", file=sys.stderr)
    subprocess.run([gp, "demo", "generate", "--out", str(directory)], check=True, timeout=600)


def assert_loopback(url: str) -> None:
    host = urlparse(url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"the load goes to loopback only, not {host}")


def write_result(prefix: str, result: dict[str, Any]) -> Path:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"{prefix}-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def client_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(base_url: str, headers: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    plan = make_plan(base_url, headers, parse_mix(args.mix))
    before = machine_load()
    cpu0 = client_cpu_s()
    events, elapsed = asyncio.run(
        run_load(base_url, headers, plan, clients=args.clients, seconds=args.seconds, seed=args.seed)
    )
    summary = summarise(events, elapsed)
    return {
        "config": {
            "clients": args.clients,
            "seconds": args.seconds,
            "mix": args.mix,
            "workers": getattr(args, "workers", None),
            "url": base_url,
        },
        "machine_before": before,
        "machine_after": machine_load(),
        "load_generator_cpu_s": round(client_cpu_s() - cpu0, 1),
        **summary,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="a running server (loopback); else one is started on the bench database")
    parser.add_argument("--api-key", default=os.environ.get("GIS_BENCH_API_KEY"), help="with --url")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--mix", default=DEFAULT_MIX)
    parser.add_argument("--workers", type=int, default=2, help="server workers (when the bench starts it)")
    parser.add_argument("--dir", type=Path, default=REPO_ROOT / "data" / "demo", help="county to load")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    exit_cleanly_on_sigterm()

    if args.url:
        assert_loopback(args.url)
        headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
        result = measure(args.url.rstrip("/"), headers, args)
    else:
        url = bench_database_url()
        ensure_demo_county(args.dir)
        load_county(url, args.dir)
        headers = bench_api_key(url, "bench load")
        with running_server(url, workers=args.workers, log_name="load-server") as server:
            result = measure(server.base_url, headers, args)
            result["server_log"] = str(server.log_path)
    print_table(result)
    print(f"load average before {result['machine_before']['loadavg']}, after {result['machine_after']['loadavg']}")
    print(f"written: {write_result('load', result)}")


if __name__ == "__main__":
    main()
