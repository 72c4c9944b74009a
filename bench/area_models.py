"""Area models on the demo county: ST_Area(geography) against the land survey's ellipsoid-area formula.

Run: ``.venv/bin/python bench/area_models.py --database-url postgresql://… --demo-dir data/demo``
(issue 12, part 3). Reads the database only (a read-only session): the current version of every polygon
layer in ``manifest.json``, ``feature.area_m2`` = ``ST_Area(geom::geography)`` per feature, matched to the
source file's feature by ``source_fid`` (the file's row order). For each feature it computes

- ``survey``: the land survey formula (``tests/land_survey_area.py``) on the file's own Gauss-Krüger vertices,
  or, for an EPSG:4490 file, on its vertices projected to EPSG:4547 (the county's zone, CM 114°E);
- ``lens``: the predicted difference survey − geodesic, Σ tan φ / (12 N) · Δx (Δx² + 3 Δy²) over the edges
  (Δx east, Δy north in metres): the formula's edges are straight in (L, F(B)), a geodesic bows poleward of
  them (see the oracle's docstring and its tests);
- ``gk``: the area of the polygon with straight Gauss-Krüger edges, i.e. the formula on the GK edges cut into
  pieces of ≤ ``--reference-segment-m`` (default 1 m), which converges to that polygon's ellipsoidal area;
  cross-checked against pyproj Geod on the same densified vertices;
- ``geod``: pyproj Geod (GRS80) on the file's vertices in EPSG:4490, to show that the database figure is the
  geodesic-edge area of the same vertices (and that the features were matched right).

Features the import repaired (``make_valid``: the stored geometry is not the file's) are left out and counted.
Prints the tables recorded in bench/README.md and writes everything to ``--json`` if asked.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psycopg2
import pyogrio
import shapely
from pyproj import CRS, Geod, Transformer

if __package__ in (None, ""):  # run as a script: make the repository root importable (for tests/)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.land_survey_area import CGCS2000, gk_to_geodetic, polygon_area_gk

GEOD = Geod(ellps="GRS80")
COUNTY_GK = 4547  # the demo county's zone by central meridian (114°E); manifest.json names it too
EDGE_BINS_M = (0.0, 50.0, 100.0, 200.0, 500.0, 1_000.0, 5_000.0, math.inf)


@dataclass
class FeatureResult:
    source_fid: int
    key: str
    geography: float  # ST_Area(geom::geography) from the database
    survey: float  # the land survey formula on the vertices
    lens: float  # predicted survey − geodesic
    gk: float  # straight-GK-edge polygon (formula on densified edges)
    gk_geod: float  # the same polygon by Geod on the densified vertices
    geod_cut: float  # Geod on the GK edges cut to ≤ --cut-m: what ST_Area(geography) gives after ST_Segmentize in GK
    geod: float  # Geod on the file's vertices (lon/lat)
    vertices: int
    longest_edge_m: float
    perimeter_m: float

    @property
    def diff(self) -> float:
        return self.geography - self.survey


@dataclass
class LayerResult:
    code: str
    file: str
    file_crs: str
    features: list[FeatureResult] = field(default_factory=list)
    skipped_repaired: list[int] = field(default_factory=list)
    seconds: float = 0.0


# --- geometry helpers -------------------------------------------------------------------------------------


def _parts(geometry: shapely.Geometry) -> Iterator[shapely.Polygon]:
    if isinstance(geometry, shapely.Polygon):
        yield geometry
    elif isinstance(geometry, shapely.MultiPolygon):
        yield from geometry.geoms
    else:
        raise ValueError(f"not a polygon: {geometry.geom_type}")


def _rings(geometry: shapely.Geometry) -> Iterator[tuple[np.ndarray, bool]]:
    """(coordinates, is_hole) of every ring."""
    for polygon in _parts(geometry):
        yield np.asarray(polygon.exterior.coords)[:, :2], False
        for hole in polygon.interiors:
            yield np.asarray(hole.coords)[:, :2], True


def predicted_survey_minus_geodesic(lon: np.ndarray, lat: np.ndarray) -> float:
    """Σ over a ring's edges of the lens between the formula's edge and the geodesic (signed for a CCW ring)."""
    phi = np.radians((lat[:-1] + lat[1:]) / 2)
    sin2 = np.sin(phi) ** 2
    n_radius = CGCS2000.a / np.sqrt(1 - CGCS2000.e2 * sin2)
    m_radius = CGCS2000.a * (1 - CGCS2000.e2) / (1 - CGCS2000.e2 * sin2) ** 1.5
    dx = n_radius * np.cos(phi) * np.radians(np.diff(lon))
    dy = m_radius * np.radians(np.diff(lat))
    return float(np.sum(np.tan(phi) / (12 * n_radius) * dx * (dx * dx + 3 * dy * dy)))


def _shoelace(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.dot(x[:-1], y[1:]) - np.dot(x[1:], y[:-1])) / 2


def polygon_lens(geometry_gk: shapely.Geometry, epsg: int) -> float:
    """Predicted survey − geodesic for a polygon: outer rings add, holes subtract, whatever their orientation."""
    total = 0.0
    for ring, is_hole in _rings(geometry_gk):
        lon, lat = gk_to_geodetic(ring[:, 0], ring[:, 1], epsg)
        ccw = 1.0 if _shoelace(lon, lat) > 0 else -1.0
        total += (-1.0 if is_hole else 1.0) * ccw * predicted_survey_minus_geodesic(lon, lat)
    return total


def geod_area_lonlat(geometry_lonlat: shapely.Geometry) -> float:
    total = 0.0
    for ring, is_hole in _rings(geometry_lonlat):
        area, _ = GEOD.polygon_area_perimeter(ring[:, 0], ring[:, 1])
        total += -abs(area) if is_hole else abs(area)
    return total


def densified(geometry_gk: shapely.Geometry, max_segment_m: float) -> shapely.Geometry:
    return shapely.segmentize(geometry_gk, max_segment_m)


def edge_lengths(geometry_gk: shapely.Geometry) -> np.ndarray:
    return np.concatenate([np.hypot(*np.diff(ring, axis=0).T) for ring, _ in _rings(geometry_gk)])


# --- reading ----------------------------------------------------------------------------------------------


def _epsg_of(path: Path) -> int:
    crs = pyogrio.read_info(path)["crs"]
    epsg = CRS.from_user_input(crs).to_epsg()
    if epsg is None:
        raise SystemExit(f"{path}: CRS {crs!r} has no EPSG code")
    return int(epsg)


def read_current(conn: Any, code: str) -> tuple[dict[int, tuple[float, str]], list[int]]:
    """{source_fid: (area_m2, properties)} of the layer's current version, and the fids the import repaired."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT v.id, v.report FROM layer l JOIN layer_version v ON v.id = l.current_version_id WHERE l.code = %s",
            (code,),
        )
        row = cur.fetchone()
        if row is None:
            raise SystemExit(f"layer {code} has no current version in the database")
        version_id, report = row
        cur.execute(
            "SELECT source_fid, area_m2, properties::text FROM feature WHERE version_id = %s AND area_m2 IS NOT NULL",
            (version_id,),
        )
        rows = {int(fid): (float(area), str(props)) for fid, area, props in cur.fetchall()}
    repaired = [int(f) for f in (report or {}).get("repaired_source_fids", [])]
    return rows, repaired


def measure_layer(
    conn: Any, demo_dir: Path, code: str, file_name: str, reference_segment_m: float, cut_m: float
) -> LayerResult:
    started = time.perf_counter()
    path = demo_dir / file_name
    file_epsg = _epsg_of(path)
    frame = pyogrio.read_dataframe(path)
    stored, repaired = read_current(conn, code)
    result = LayerResult(code, file_name, f"EPSG:{file_epsg}", skipped_repaired=sorted(set(repaired)))
    key_field = next((f for f in ("BSM", "YJJBNTTBBH", "DKBH", "XZQDM") if f in frame.columns), None)

    if file_epsg == 4490:
        to_gk = Transformer.from_crs(4490, COUNTY_GK, always_xy=True)
        gk_epsg = COUNTY_GK

        def as_gk(g: shapely.Geometry) -> shapely.Geometry:
            return shapely.transform(g, lambda xy: np.column_stack(to_gk.transform(xy[:, 0], xy[:, 1])))

        def as_lonlat(g: shapely.Geometry) -> shapely.Geometry:
            return g

    else:
        to_lonlat = Transformer.from_crs(file_epsg, 4490, always_xy=True)
        gk_epsg = file_epsg

        def as_gk(g: shapely.Geometry) -> shapely.Geometry:
            return g

        def as_lonlat(g: shapely.Geometry) -> shapely.Geometry:
            return shapely.transform(g, lambda xy: np.column_stack(to_lonlat.transform(xy[:, 0], xy[:, 1])))

    to_lonlat_gk = Transformer.from_crs(gk_epsg, 4490, always_xy=True)
    skip = set(repaired)
    for fid, geometry in enumerate(frame.geometry):
        if fid in skip or fid not in stored or geometry is None or geometry.is_empty:
            continue
        geography = stored[fid][0]
        gk = as_gk(geometry)
        dense = densified(gk, reference_segment_m)
        dense_lonlat = shapely.transform(dense, lambda xy: np.column_stack(to_lonlat_gk.transform(xy[:, 0], xy[:, 1])))
        cut_lonlat = shapely.transform(
            densified(gk, cut_m), lambda xy: np.column_stack(to_lonlat_gk.transform(xy[:, 0], xy[:, 1]))
        )
        edges = edge_lengths(gk)
        key = str(frame[key_field].iloc[fid]) if key_field else str(fid)
        result.features.append(
            FeatureResult(
                source_fid=fid,
                key=key,
                geography=geography,
                survey=polygon_area_gk(gk, gk_epsg),
                lens=polygon_lens(gk, gk_epsg),
                gk=polygon_area_gk(dense, gk_epsg),
                gk_geod=geod_area_lonlat(dense_lonlat),
                geod_cut=geod_area_lonlat(cut_lonlat),
                geod=geod_area_lonlat(as_lonlat(geometry)),
                vertices=int(shapely.get_num_coordinates(geometry)),
                longest_edge_m=float(edges.max()),
                perimeter_m=float(edges.sum()),
            )
        )
    result.seconds = time.perf_counter() - started
    return result


# --- reporting --------------------------------------------------------------------------------------------


def _f(value: float, decimals: int = 4) -> str:
    return f"{value:,.{decimals}f}"


def layer_summary(layer: LayerResult) -> dict[str, Any]:
    diff = np.array([f.diff for f in layer.features])
    adiff = np.abs(diff)
    area = np.array([f.geography for f in layer.features])
    to_gk = np.array([abs(f.geography - f.gk) for f in layer.features])
    return {
        "layer": layer.code,
        "file_crs": layer.file_crs,
        "features": len(layer.features),
        "skipped_repaired": len(layer.skipped_repaired),
        "total_geography_m2": math.fsum(area),
        "total_survey_m2": math.fsum(f.survey for f in layer.features),
        "total_diff_m2": math.fsum(diff),
        "p50_abs_diff_m2": float(np.percentile(adiff, 50)),
        "p95_abs_diff_m2": float(np.percentile(adiff, 95)),
        "p99_abs_diff_m2": float(np.percentile(adiff, 99)),
        "max_abs_diff_m2": float(adiff.max()),
        "max_rel_diff": float(np.max(adiff / area)),
        "over_0_01_m2": int(np.sum(adiff > 0.01)),
        "max_abs_unexplained_m2": float(np.max(np.abs(diff + np.array([f.lens for f in layer.features])))),
        "p50_abs_geography_minus_gk_m2": float(np.percentile(to_gk, 50)),
        "p99_abs_geography_minus_gk_m2": float(np.percentile(to_gk, 99)),
        "max_abs_geography_minus_gk_m2": float(to_gk.max()),
        "geography_minus_gk_over_0_01": int(np.sum(to_gk > 0.01)),
        "max_abs_geod_cut_minus_gk_m2": max(abs(f.geod_cut - f.gk) for f in layer.features),
        "max_abs_survey_minus_gk_m2": max(abs(f.survey - f.gk) for f in layer.features),
        "max_abs_gk_minus_gk_geod_m2": max(abs(f.gk - f.gk_geod) for f in layer.features),
        "max_abs_geography_minus_geod_m2": max(abs(f.geography - f.geod) for f in layer.features),
        "seconds": layer.seconds,
    }


def print_report(layers: list[LayerResult], top: int, segment: float, cut: float) -> dict[str, Any]:
    summaries = [layer_summary(layer) for layer in layers]
    print("\n### Per layer: d = ST_Area(geography) − land survey formula (m²), per feature\n")
    print(
        "| layer | file CRS | features | Σ ST_Area(geography) | Σ survey formula | Σ d | p50 abs(d) | p95 abs(d)"
        " | p99 abs(d) | max abs(d) | max abs(d)/area | abs(d) > 0.01 m² |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for s in summaries:
        print(
            f"| {s['layer']} | {s['file_crs']} | {s['features']:,} | {_f(s['total_geography_m2'], 2)}"
            f" | {_f(s['total_survey_m2'], 2)} | {_f(s['total_diff_m2'])} | {_f(s['p50_abs_diff_m2'])}"
            f" | {_f(s['p95_abs_diff_m2'])} | {_f(s['p99_abs_diff_m2'])} | {_f(s['max_abs_diff_m2'])}"
            f" | {s['max_rel_diff']:.2e} | {s['over_0_01_m2']:,} |"
        )
    print(
        f"\n### Which polygon each figure measures (m²; gk = the polygon with straight Gauss-Krüger edges, by the"
        f" formula on edges cut to ≤ {segment:g} m)\n"
    )
    print(
        "| layer | d + predicted lens, max abs | ST_Area(geography) − gk, abs p50 / p99 / max | > 0.01 m²"
        f" | survey formula − gk, max abs | Geod on GK edges cut to ≤ {cut:g} m − gk, max abs"
        " | gk − Geod(densified), max abs | ST_Area(geography) − Geod(file vertices), max abs"
        " | repaired, left out | seconds |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for s in summaries:
        print(
            f"| {s['layer']} | {_f(s['max_abs_unexplained_m2'])} | {_f(s['p50_abs_geography_minus_gk_m2'])}"
            f" / {_f(s['p99_abs_geography_minus_gk_m2'])} / {_f(s['max_abs_geography_minus_gk_m2'])}"
            f" | {s['geography_minus_gk_over_0_01']:,} | {_f(s['max_abs_survey_minus_gk_m2'])}"
            f" | {_f(s['max_abs_geod_cut_minus_gk_m2'])} | {_f(s['max_abs_gk_minus_gk_geod_m2'])}"
            f" | {_f(s['max_abs_geography_minus_geod_m2'])} | {s['skipped_repaired']} | {s['seconds']:.1f} |"
        )

    every = [(layer.code, f) for layer in layers for f in layer.features]
    print("\n### abs(d) by the feature's longest edge (all layers)\n")
    print(
        "| longest edge | features | p50 abs(d) | p99 abs(d) | max abs(d) | abs(d) > 0.01 m²"
        " | ST_Area(geography) − gk, max abs |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    bins = []
    for lo, hi in itertools.pairwise(EDGE_BINS_M):
        in_bin = [f for _, f in every if lo <= f.longest_edge_m < hi]
        if not in_bin:
            continue
        sel = np.array([abs(f.diff) for f in in_bin])
        to_gk = max(abs(f.geography - f.gk) for f in in_bin)
        label = f"{lo:,.0f}–{hi:,.0f} m" if math.isfinite(hi) else f"≥ {lo:,.0f} m"
        bins.append(
            {
                "bin": label,
                "features": int(sel.size),
                "p50": float(np.percentile(sel, 50)),
                "p99": float(np.percentile(sel, 99)),
                "max": float(sel.max()),
                "over": int(np.sum(sel > 0.01)),
                "max_geography_minus_gk": to_gk,
            }
        )
        print(
            f"| {label} | {sel.size:,} | {_f(float(np.percentile(sel, 50)))} | {_f(float(np.percentile(sel, 99)))}"
            f" | {_f(float(sel.max()))} | {int(np.sum(sel > 0.01)):,} | {_f(to_gk)} |"
        )

    print(f"\n### The {top} largest abs(d) of each layer (m²)\n")
    print(
        "| layer | source_fid | key | ST_Area(geography) | vertices | longest edge m | perimeter m | d"
        " | predicted −lens | geography − gk | survey − gk |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    worst = [
        (layer.code, f)
        for layer in layers
        for f in sorted(layer.features, key=lambda f: abs(f.diff), reverse=True)[:top]
    ]
    for code, f in worst:
        print(
            f"| {code} | {f.source_fid} | {f.key} | {_f(f.geography, 2)} | {f.vertices:,} | {_f(f.longest_edge_m, 1)}"
            f" | {_f(f.perimeter_m, 1)} | {_f(f.diff)} | {_f(-f.lens)} | {_f(f.geography - f.gk)}"
            f" | {_f(f.survey - f.gk)} |"
        )
    return {
        "layers": summaries,
        "edge_bins": bins,
        "worst": [{"layer": code, **asdict(f), "diff": f.diff} for code, f in worst],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--database-url", required=True, help="the platform database (read only)")
    parser.add_argument("--demo-dir", type=Path, required=True, help="directory with manifest.json and the files")
    parser.add_argument("--layers", help="comma-separated layer codes (default: every polygon layer in the manifest)")
    parser.add_argument("--top", type=int, default=3, help="how many of the largest differences to list per layer")
    parser.add_argument(
        "--reference-segment-m", type=float, default=1.0, help="GK edge piece length for the straight-edge reference"
    )
    parser.add_argument(
        "--cut-m", type=float, default=100.0, help="GK edge piece length for the 'segmentize first' variant"
    )
    parser.add_argument("--json", type=Path, help="write every figure here as JSON")
    args = parser.parse_args(argv)

    manifest = json.loads((args.demo_dir / "manifest.json").read_text(encoding="utf-8"))
    wanted = {c.strip() for c in args.layers.split(",")} if args.layers else None
    layers: list[LayerResult] = []
    conn = psycopg2.connect(args.database_url)
    conn.set_session(readonly=True, autocommit=True)
    try:
        for entry in manifest["layers"]:
            if wanted is not None and entry["code"] not in wanted:
                continue
            info = pyogrio.read_info(args.demo_dir / entry["file"])
            if "Polygon" not in str(info["geometry_type"]):
                continue
            layer = measure_layer(
                conn, args.demo_dir, entry["code"], entry["file"], args.reference_segment_m, args.cut_m
            )
            print(f"{layer.code}: {len(layer.features):,} features in {layer.seconds:.1f} s", file=sys.stderr)
            layers.append(layer)
    finally:
        conn.close()
    report = print_report(layers, args.top, args.reference_segment_m, args.cut_m)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
