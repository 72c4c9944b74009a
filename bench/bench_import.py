"""Import benchmark: ``gis-platform import`` vs ``ogr2ogr`` loading the same farmland Shapefile.

Run: ``scripts/bench.sh import`` (or with GIS_BENCH_DATABASE_URL set: ``python bench/bench_import.py``).
Both tools load the benchmark county's YJJBNT Shapefile (GK zone, ≥100,000 patches) into PostGIS in
EPSG:4490 with a GiST index, each in a fresh process, alternating, ``--repeat`` times; the medians are
compared. Targets: the platform at ≥ 0.5× ogr2ogr's features/s, peak memory < 1 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from sqlalchemy import create_engine, text

from bench.common import (
    BENCH_DIR,
    OUT_DIR,
    bench_database_url,
    ensure_scale_county,
    median_run,
    ogr_pg_connection,
    run_measured,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=BENCH_DIR)
    args = parser.parse_args()

    url = bench_database_url()
    manifest = ensure_scale_county(args.dir)
    entry = next(layer for layer in manifest["layers"] if layer["code"] == "YJJBNT")
    shp = args.dir / entry["file"]
    features = int(entry["features"])

    env = {**os.environ, "GIS_DATABASE_URL": url}
    gp = str(Path(sys.executable).with_name("gis-platform"))
    run_measured([gp, "db", "upgrade"], env=env)
    ogr_cmd = [
        "ogr2ogr",
        "-f",
        "PostgreSQL",
        ogr_pg_connection(url),
        str(shp),
        "-nln",
        "bench_ogr_yjjbnt",
        "-overwrite",
        "-t_srs",
        "EPSG:4490",
        "-lco",
        "GEOMETRY_NAME=geom",
        "-lco",
        "SPATIAL_INDEX=GIST",
        "-nlt",
        "PROMOTE_TO_MULTI",
        "--config",
        "PG_USE_COPY",
        "YES",
    ]
    ours_cmd = [gp, "import", str(shp), "--layer", "YJJBNT", "--no-progress", "--by", "bench"]
    ogr_runs, our_runs = [], []
    for i in range(args.repeat):
        ogr_runs.append(run_measured(ogr_cmd, env=env))
        our_runs.append(run_measured(ours_cmd, env=env))
        print(
            f"run {i + 1}: ogr2ogr {ogr_runs[-1].seconds:.2f} s, gis-platform {our_runs[-1].seconds:.2f} s",
            file=sys.stderr,
        )

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1))
    with engine.connect() as conn:
        ogr_count = conn.execute(text("SELECT count(*) FROM bench_ogr_yjjbnt")).scalar_one()
        our_count = conn.execute(
            text(
                "SELECT v.feature_count FROM layer l JOIN layer_version v ON v.id = l.current_version_id"
                " WHERE l.code = 'YJJBNT'"
            )
        ).scalar_one()
    ogr, ours = median_run(ogr_runs), median_run(our_runs)
    result = {
        "benchmark": "import YJJBNT Shapefile → PostGIS (EPSG:4490, GiST)",
        "features": features,
        "rows_loaded": {"ogr2ogr": ogr_count, "gis-platform": our_count},
        "repeat": args.repeat,
        "ogr2ogr": {
            "median_s": round(ogr.seconds, 3),
            "features_per_s": round(features / ogr.seconds),
            "peak_rss_mib": round(ogr.peak_rss_mib, 1),
        },
        "gis_platform": {
            "median_s": round(ours.seconds, 3),
            "features_per_s": round(features / ours.seconds),
            "peak_rss_mib": round(ours.peak_rss_mib, 1),
        },
        "speed_ratio_vs_ogr2ogr": round(ogr.seconds / ours.seconds, 3),
        "targets": {"speed_ratio_min": 0.5, "peak_rss_mib_max": 1024},
    }
    result["pass"] = result["speed_ratio_vs_ogr2ogr"] >= 0.5 and ours.peak_rss_mib < 1024
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "import.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
