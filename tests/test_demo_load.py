"""The demo county loaded through the import path, twice: totals against an independent computation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pytest
from sqlalchemy import Engine, text

from gis_platform.settings import REPO_ROOT, Settings

from .helpers import geod_area

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    subprocess.run(
        [sys.executable, str(REPO_ROOT / "data" / "generate_demo_county.py"), "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


def load(settings: Settings, directory: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GIS_DATABASE_URL": settings.database_url}
    return subprocess.run(
        [sys.executable, "-m", "gis_platform.cli", "demo", "load", "--dir", str(directory)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_demo_county_loads_through_the_import_path_once(engine: Engine, settings: Settings, demo_dir: Path) -> None:
    manifest = json.loads((demo_dir / "manifest.json").read_text(encoding="utf-8"))
    first = load(settings, demo_dir)
    assert first.returncode == 0, first.stderr
    with engine.connect() as conn:
        current = {
            code: (count, area)
            for code, count, area in conn.execute(
                text(
                    "SELECT l.code, v.feature_count, v.area_total_m2 FROM layer l"
                    " JOIN layer_version v ON v.id = l.current_version_id"
                )
            )
        }
    assert set(current) == {entry["code"] for entry in manifest["layers"]}
    for entry in manifest["layers"]:
        assert current[entry["code"]][0] == entry["features"], entry["code"]
    # independent totals: read the files with geopandas, reproject with pyproj, Geod on the ellipsoid
    for code in ("XZQ", "YJJBNT", "STBHHX", "CZKFBJ"):
        entry = next(e for e in manifest["layers"] if e["code"] == code)
        frame = gpd.read_file(demo_dir / entry["file"], engine="pyogrio").to_crs(4490)
        expected = sum(geod_area(g) for g in frame.geometry)
        assert current[code][1] == pytest.approx(expected, abs=0.01 * len(frame)), code
    # the GBK shapefile's Chinese values arrive intact
    with engine.connect() as conn:
        names = (
            conn.execute(
                text(
                    "SELECT DISTINCT f.properties->>'ZLDWMC' FROM feature f"
                    " JOIN layer l ON l.current_version_id = f.version_id WHERE l.code = 'YJJBNT' LIMIT 5"
                )
            )
            .scalars()
            .all()
        )
    assert names and all(n and any("\u4e00" <= ch <= "\u9fff" for ch in n) for n in names)

    second = load(settings, demo_dir)
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("未重复导入") == len(manifest["layers"])
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM layer_version")).scalar() == len(manifest["layers"])
