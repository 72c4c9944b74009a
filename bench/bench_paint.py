"""First-paint benchmark: the demo's web map in headless Chromium, from navigation start to the first layer drawn.

Run: ``scripts/bench.sh paint [--dir data/demo] [--runs 7]`` (loads the demo county through
``gis-platform demo load`` into a throwaway bench database, starts ``gis-platform serve --workers 1`` — as
``scripts/up.sh`` does — on a free loopback port, and opens the map ``--runs`` times, each in a fresh browser
context at 1366×768: empty HTTP cache and storage). Writes ``bench/out/paint.json``.

The map needs a login: a viewer (领导, read only: map and dashboard) is made in the bench database and logs in
once through ``POST /api/v1/auth/login``; every run's fresh context starts with that session cookie, as a
user who is already logged in opens the map (the login itself is not timed). The bench server has no per-user
rate limit (``GIS_RATE_LIMIT_USER_PER_MINUTE=0``): the runs of one user would otherwise meet it.

Per run, all times from navigation start (``performance.now()`` in the page):

- ``first_tiles_ms``: the app's own marker ``window.gisFirstTiles`` (web/js/tiles.js sets it when the first
  tile with features has been drawn on its canvas; the browser tests wait for the same marker);
- ``first_tiles_frame_ms``: the animation frame after that (the drawn canvas reaches the screen);
- ``all_tiles_ms``: the last first-view tile drawn (every canvas of every feature layer gets ``data-features``
  when drawn; a MutationObserver installed before the page's scripts timestamps each), taken once every
  Leaflet grid layer reports ``isLoading() == false`` and the network has been idle for 500 ms;
- ``map_ready_ms`` (``#map[data-ready=true]``), first contentful paint, DOMContentLoaded, load;
- requests made, bytes transferred (response headers + body as sent, from the browser), and every request's
  host: the run fails if any request left 127.0.0.1.

By default one freshly started server serves all runs, so run 1 meets an empty tile cache and the others a
warm one; ``--restart-server`` starts a fresh server for every run. ``--hillshade`` serves the county DEM as
the offline hillshade basemap (``GIS_DEM_PATH``), which ``scripts/up.sh`` does not.

Target (issue): first map paint of the demo ≤ 2 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.bench_tiles import (
    Deadline,
    Server,
    exit_cleanly_on_sigterm,
    gis_platform_cmd,
    load_county,
    machine_load,
    running_server,
)
from bench.common import CHROMIUM, CHROMIUM_ARGS, OUT_DIR, REPO_ROOT, VIEWPORT, bench_database_url, bench_user

DEMO_DIR = REPO_ROOT / "data" / "demo"
TARGET_FIRST_PAINT_MS = 2000.0
BENCH_USER = "bench-paint-viewer"

# Runs in every page before its own scripts: timestamps of each drawn tile and of the map being ready.
INIT_SCRIPT = """
(() => {
  performance.setResourceTimingBufferSize(10000);
  const bench = { tiles: [], ready: null, firstFrame: null };
  window.__bench = bench;
  const onFirstTiles = () => requestAnimationFrame(() => { bench.firstFrame = performance.now(); });
  new MutationObserver((records) => {
    const t = performance.now();
    for (const r of records) {
      const el = r.target;
      if (r.attributeName === 'data-features' && el.tagName === 'CANVAS') {
        const holder = el.closest('[data-layer]');
        const features = Number(el.dataset.features);
        const hadFeatures = bench.tiles.some((x) => x.features > 0);
        bench.tiles.push({ t, layer: holder ? holder.dataset.layer : '', features, error: !!el.dataset.error });
        if (features > 0 && !hadFeatures) onFirstTiles();
      } else if (r.attributeName === 'data-ready' && el.id === 'map' && el.dataset.ready === 'true') {
        bench.ready = t;
      }
    }
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-features', 'data-ready'] });
  document.addEventListener('load', (e) => {
    const el = e.target;
    if (el.tagName === 'IMG' && el.classList.contains('leaflet-tile')) {
      bench.tiles.push({ t: performance.now(), layer: 'basemap', features: 1, error: false });
    }
  }, true);
})();
"""

ALL_TILES_LOADED = """() => {
  const app = window.gisApp;
  if (!app || !window.L) return false;
  let grids = 0, loading = false;
  app.map.eachLayer((layer) => {
    if (layer instanceof L.GridLayer) { grids += 1; if (layer.isLoading()) loading = true; }
  });
  return grids > 0 && !loading;
}"""

COLLECT = """() => {
  const b = window.__bench;
  const nav = performance.getEntriesByType('navigation')[0];
  const fcp = performance.getEntriesByName('first-contentful-paint')[0];
  const layers = {};
  for (const x of b.tiles) {
    const e = layers[x.layer] || (layers[x.layer] = { tiles: 0, with_features: 0, errors: 0, last_ms: 0 });
    e.tiles += 1;
    if (x.features > 0) e.with_features += 1;
    if (x.error) e.errors += 1;
    e.last_ms = Math.round(Math.max(e.last_ms, x.t) * 10) / 10;
  }
  return {
    first_tiles_ms: window.gisFirstTiles || null,
    first_tiles_frame_ms: b.firstFrame,
    all_tiles_ms: b.tiles.length ? Math.max(...b.tiles.map((x) => x.t)) : null,
    map_ready_ms: b.ready,
    first_contentful_paint_ms: fcp ? fcp.startTime : null,
    dom_content_loaded_ms: nav ? nav.domContentLoadedEventEnd : null,
    load_event_ms: nav ? nav.loadEventEnd : null,
    zoom: window.gisApp.map.getZoom(),
    tiles_drawn: b.tiles.length,
    layers,
  };
}"""


def ensure_demo(directory: Path) -> None:
    if not (directory / "manifest.json").exists():
        subprocess.run([gis_platform_cmd(), "demo", "generate", "--out", str(directory)], check=True, timeout=600)


def request_kind(url: str) -> str:
    path = urlsplit(url).path
    if path.startswith("/tiles/hillshade/"):
        return "hillshade"
    if path.startswith("/tiles/"):
        return "mvt"
    if path.endswith(".geojson"):
        return "geojson"
    if path.startswith("/api/"):
        return "api"
    return "page"


def session_cookies(browser: Any, server: Server, username: str, password: str) -> list[dict[str, Any]]:
    """Log in once through the API (as the web map's login form does) and return the session cookie."""
    context = browser.new_context()
    try:
        response = context.request.post(
            server.base_url + "/api/v1/auth/login", data={"username": username, "password": password}
        )
        if not response.ok:
            raise RuntimeError(f"login as {username} failed: HTTP {response.status} {response.text()[:300]}")
        cookies: list[dict[str, Any]] = context.cookies()
    finally:
        context.close()
    if not any(c["name"] == "gis_session" for c in cookies):
        raise RuntimeError("the login answer set no gis_session cookie")
    return cookies


def measure_once(browser: Any, server: Server, timeout_ms: int, cookies: list[dict[str, Any]]) -> dict[str, Any]:
    """One fresh browser context (logged in): open the map, wait for the first view, read the page's timings."""
    context = browser.new_context(viewport=VIEWPORT, locale="zh-CN")
    try:
        context.add_cookies(cookies)
        context.add_init_script(INIT_SCRIPT)
        page = context.new_page()
        page.set_default_timeout(timeout_ms)
        requests: list[Any] = []
        finished: list[Any] = []
        failed: list[str] = []
        console_errors: list[str] = []
        page_errors: list[str] = []
        page.on("request", lambda r: requests.append(r))
        page.on("requestfinished", lambda r: finished.append(r))
        page.on("requestfailed", lambda r: failed.append(r.url))
        page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: page_errors.append(str(e)))

        page.goto(server.base_url + "/", wait_until="commit")
        page.wait_for_function("window.gisFirstTiles > 0")
        page.wait_for_function(ALL_TILES_LOADED)
        page.wait_for_load_state("networkidle")
        timings: dict[str, Any] = page.evaluate(COLLECT)

        body = headers = 0
        for request in finished:
            sizes = request.sizes()
            body += int(sizes["responseBodySize"])
            headers += int(sizes["responseHeadersSize"])
        urls = [r.url for r in requests]
        foreign = [u for u in urls if not u.startswith(("data:", "blob:")) and urlsplit(u).hostname != "127.0.0.1"]
        return {
            **{k: round(v, 1) if isinstance(v, float) else v for k, v in timings.items()},
            "requests": len(urls),
            "requests_by_kind": dict(Counter(request_kind(u) for u in urls)),
            "requests_failed": failed,
            "bytes_transferred": body + headers,
            "response_body_bytes": body,
            "foreign_requests": foreign,
            "console_errors": console_errors,
            "page_errors": page_errors,
        }
    finally:
        context.close()


def stats(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 1),
        "min": round(min(values), 1),
        "max": round(max(values), 1),
    }


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=DEMO_DIR, help="demo county (gis-platform demo generate)")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--restart-server", action="store_true", help="a fresh server (empty tile cache) per run")
    parser.add_argument("--hillshade", action="store_true", help="serve DIR/dem.tif as the hillshade basemap")
    parser.add_argument("--timeout", type=float, default=30, help="seconds per page wait")
    parser.add_argument("--budget", type=float, default=900, help="seconds for the measurements, at most")
    parser.add_argument("--out", default="paint", help="result name: bench/out/<out>.json")
    args = parser.parse_args()
    exit_cleanly_on_sigterm()

    url = bench_database_url()
    load_before = machine_load()
    ensure_demo(args.dir)
    load_county(url, args.dir)
    username, password = bench_user(url, BENCH_USER, "viewer")
    extra_env = {"GIS_RATE_LIMIT_USER_PER_MINUTE": "0"}
    if args.hillshade:
        extra_env["GIS_DEM_PATH"] = str((args.dir / "dem.tif").resolve())
    deadline = Deadline(args.budget)

    runs: list[dict[str, Any]] = []
    with chromium() as browser, ExitStack() as stack:
        server = stack.enter_context(running_server(url, workers=1, extra_env=extra_env, log_name=f"{args.out}-server"))
        cookies = session_cookies(browser, server, username, password)
        for i in range(args.runs):
            deadline.check(f"run {i + 1}")
            if args.restart_server and i > 0:
                stack.close()
                server = stack.enter_context(
                    running_server(url, workers=1, extra_env=extra_env, log_name=f"{args.out}-server")
                )
            run = measure_once(browser, server, int(args.timeout * 1000), cookies)
            run["run"] = i + 1
            run["server_tile_cache"] = "empty" if args.restart_server or i == 0 else "warm"
            runs.append(run)
            print(
                f"run {i + 1}: first tiles {run['first_tiles_ms']} ms, all tiles {run['all_tiles_ms']} ms,"
                f" {run['requests']} requests, {run['bytes_transferred']} bytes",
                flush=True,
            )

    first = [float(r["first_tiles_ms"]) for r in runs]
    warm = [float(r["first_tiles_ms"]) for r in runs if r["server_tile_cache"] == "warm"]
    foreign = sorted({u for r in runs for u in r["foreign_requests"]})
    result = {
        "benchmark": "first map paint of the demo in headless Chromium (1366×768, fresh context per run)",
        "date": time.strftime("%Y-%m-%d"),
        "dir": str(args.dir),
        "runs": len(runs),
        "restart_server": args.restart_server,
        "hillshade": args.hillshade,
        "first_tiles_ms": stats(first),
        "first_tiles_ms_warm_server_cache": stats(warm) if warm else None,
        "first_tiles_frame_ms": stats([float(r["first_tiles_frame_ms"]) for r in runs if r["first_tiles_frame_ms"]]),
        "all_tiles_ms": stats([float(r["all_tiles_ms"]) for r in runs]),
        "map_ready_ms": stats([float(r["map_ready_ms"]) for r in runs if r["map_ready_ms"] is not None]),
        "first_contentful_paint_ms": stats(
            [float(r["first_contentful_paint_ms"]) for r in runs if r["first_contentful_paint_ms"] is not None]
        ),
        "requests": stats([float(r["requests"]) for r in runs]),
        "bytes_transferred": stats([float(r["bytes_transferred"]) for r in runs]),
        "foreign_requests": foreign,
        "target_first_paint_ms": TARGET_FIRST_PAINT_MS,
        "target_holds": statistics.median(first) <= TARGET_FIRST_PAINT_MS,
        "every_run_within_target": max(first) <= TARGET_FIRST_PAINT_MS,
        "per_run": runs,
        "machine_before": load_before,
        "machine_after": machine_load(),
    }
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / f"{args.out}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "per_run"}, indent=2, ensure_ascii=False))
    if foreign:
        raise SystemExit(f"the page requested hosts other than 127.0.0.1: {foreign}")
    if any(r["page_errors"] for r in runs):
        raise SystemExit("the page raised errors (see per_run[].page_errors)")


if __name__ == "__main__":
    main()
