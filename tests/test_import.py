"""The import path end to end on real PostGIS: versions, atomicity, repairs, CRS, bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest
import shapely
from sqlalchemy import Engine, text

from gis_platform.catalog import Catalog
from gis_platform.errors import (
    CRSError,
    GeometryError,
    InputFileError,
    UnknownLayerError,
    UnsafeArchiveError,
    UnsupportedFormatError,
)
from gis_platform.ingest import pipeline
from gis_platform.ingest.pipeline import import_file
from gis_platform.settings import Settings

from .helpers import farmland_patches, geod_area, gk_to_lonlat, square, write_geojson, write_shapefile

pytestmark = pytest.mark.db


def snapshot(engine: Engine) -> dict[str, object]:
    """Everything an import may change, to prove a failed one changed nothing."""
    with engine.connect() as conn:
        return {
            "layers": conn.execute(text("SELECT code, current_version_id FROM layer ORDER BY code")).all(),
            "versions": conn.execute(
                text("SELECT id, layer_id, status, feature_count FROM layer_version ORDER BY id")
            ).all(),
            "features": conn.execute(text("SELECT version_id, count(*) FROM feature GROUP BY 1 ORDER BY 1")).all(),
            "tables": conn.execute(
                text("SELECT relname FROM pg_class WHERE relname LIKE 'feature_v%' ORDER BY 1")
            ).all(),
        }


def current_version(engine: Engine, code: str) -> dict[str, object]:
    with engine.connect() as conn:
        return dict(
            conn.execute(
                text("SELECT v.* FROM layer l JOIN layer_version v ON v.id = l.current_version_id WHERE l.code = :c"),
                {"c": code},
            )
            .mappings()
            .one()
        )


def test_geojson_import_areas_match_pyproj_geod(
    engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    patches = farmland_patches(5)
    props = [{"yjjbnttbbh": f"JB{i:04d}", "DLBM": "0101", "GDPDJB": i + 3} for i in range(5)]
    source = write_geojson(tmp_path / "farmland.geojson", patches, props)

    report = import_file(engine, catalog, settings, source, "yjjbnt")

    assert report.features_imported == 5 and report.version_no == 1
    expected = [geod_area(p) for p in patches]
    assert report.area_total_m2 == pytest.approx(sum(expected), abs=0.05)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT source_fid, area_m2, properties FROM feature WHERE version_id = :v ORDER BY source_fid"),
            {"v": report.version_id},
        ).all()
    for (fid, area, properties), want in zip(rows, expected, strict=True):
        assert area == pytest.approx(want, abs=0.01)
        assert properties["YJJBNTTBBH"] == f"JB{fid:04d}"  # mapped case-insensitively to the catalogue name
    version = current_version(engine, "YJJBNT")
    assert version["status"] == "current" and version["feature_count"] == 5
    assert version["report"]["crs_source"] == "assumed-geographic"


def test_gauss_kruger_shapefile_reprojected_and_area_ellipsoidal(
    engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    # 1 km squares in GK zone 38 (CM 114°E) near 34.8°N, one 80 km east of the central meridian
    squares = [shapely.box(500_000 + dx, 3_850_000, 501_000 + dx, 3_851_000) for dx in (0, 80_000)]
    shp = write_shapefile(tmp_path / "gk.shp", squares, {"BSM": ["1", "2"]}, epsg=4547)

    report = import_file(engine, catalog, settings, shp, "STBHHX")

    assert report.source_crs == "EPSG:4547"
    expected = [geod_area(gk_to_lonlat(s, 4547)) for s in squares]
    assert report.area_total_m2 == pytest.approx(sum(expected), abs=0.02)
    # ellipsoidal area differs from the 1,000,000 m² planar GK area, and more so away from the meridian
    assert abs(expected[0] - 1_000_000) < abs(expected[1] - 1_000_000)
    with engine.connect() as conn:
        areas = (
            conn.execute(
                text("SELECT area_m2 FROM feature WHERE version_id = :v ORDER BY source_fid"), {"v": report.version_id}
            )
            .scalars()
            .all()
        )
    assert areas == pytest.approx(expected, abs=0.01)


def test_prefixed_zone_shapefile(engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path) -> None:
    square_gk = shapely.box(38_500_000, 3_850_000, 38_500_500, 3_850_500)
    shp = write_shapefile(tmp_path / "prefixed.shp", [square_gk], {"BSM": ["1"]}, epsg=4526)
    report = import_file(engine, catalog, settings, shp, "CZKFBJ")
    assert report.source_crs == "EPSG:4526"
    assert report.area_total_m2 == pytest.approx(geod_area(gk_to_lonlat(square_gk, 4526)), abs=0.01)


def test_reimport_creates_new_current_version_and_keeps_the_old(
    engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    first = import_file(engine, catalog, settings, write_geojson(tmp_path / "a.geojson", farmland_patches(3)), "YJJBNT")
    second = import_file(
        engine, catalog, settings, write_geojson(tmp_path / "b.geojson", farmland_patches(4)), "YJJBNT"
    )
    assert (first.version_no, second.version_no) == (1, 2)
    with engine.connect() as conn:
        statuses = dict(conn.execute(text("SELECT version_no, status FROM layer_version ORDER BY 1")).all())
        counts = dict(conn.execute(text("SELECT version_id, count(*) FROM feature GROUP BY 1")).all())
    assert statuses == {1: "superseded", 2: "current"}
    assert counts == {first.version_id: 3, second.version_id: 4}


def test_if_changed_skips_an_identical_file(
    engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    source = write_geojson(tmp_path / "a.geojson", farmland_patches(3))
    import_file(engine, catalog, settings, source, "YJJBNT", if_changed=True)
    again = import_file(engine, catalog, settings, source, "YJJBNT", if_changed=True)
    assert again.unchanged and again.version_no == 1
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM layer_version")).scalar() == 1


def test_failure_mid_way_keeps_previous_version(
    engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_file(engine, catalog, settings, write_geojson(tmp_path / "a.geojson", farmland_patches(3)), "YJJBNT")
    before = snapshot(engine)

    def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("disk full while indexing")

    monkeypatch.setattr(pipeline, "attach_version_table", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        import_file(engine, catalog, settings, write_geojson(tmp_path / "b.geojson", farmland_patches(4)), "YJJBNT")
    assert snapshot(engine) == before


KILL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from gis_platform.catalog import load_catalog
    from gis_platform.db import make_engine
    from gis_platform.ingest.pipeline import import_file
    from gis_platform.settings import Settings

    settings = Settings(database_url=sys.argv[1], import_batch_size=10)

    def die_mid_copy(done, total):
        if done >= 20:  # rows are in the database, the transaction is open: kill -9 ourselves
            os.kill(os.getpid(), signal.SIGKILL)

    import_file(make_engine(settings), load_catalog(settings.layers_dir), settings, Path(sys.argv[2]), "YJJBNT",
                on_progress=die_mid_copy)
    """
)


def test_killed_process_keeps_previous_version(
    engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    old = import_file(engine, catalog, settings, write_geojson(tmp_path / "a.geojson", farmland_patches(3)), "YJJBNT")
    before = snapshot(engine)
    big = write_geojson(tmp_path / "big.geojson", farmland_patches(60))
    script = tmp_path / "kill.py"
    script.write_text(KILL_SCRIPT, encoding="utf-8")
    proc = subprocess.run([sys.executable, str(script), settings.database_url, str(big)], cwd=Path.cwd(), timeout=120)
    assert proc.returncode == -signal.SIGKILL
    # the server notices the dead client and rolls its transaction back
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and snapshot(engine) != before:
        time.sleep(0.2)
    assert snapshot(engine) == before
    assert current_version(engine, "YJJBNT")["id"] == old.version_id


def test_repair_and_drop_counts(engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path) -> None:
    bow_tie = shapely.Polygon([(114.80, 34.80), (114.81, 34.81), (114.81, 34.80), (114.80, 34.81), (114.80, 34.80)])
    collinear = shapely.Polygon([(114.80, 34.80), (114.81, 34.80), (114.82, 34.80), (114.80, 34.80)])
    good = square(114.85, 34.85)
    source = write_geojson(
        tmp_path / "dirty.geojson",
        [good, bow_tie, None, shapely.Polygon(), collinear],
        [{"BSM": str(i)} for i in range(5)],
    )
    report = import_file(engine, catalog, settings, source, "STBHHX")
    assert report.features_read == 5
    assert report.repaired == 1 and report.repaired_source_fids == [1]
    assert report.dropped_null == 1
    assert report.dropped_empty == 1
    assert report.dropped_degenerate == 1
    assert report.features_imported == 2
    repaired = shapely.make_valid(bow_tie)
    assert report.area_total_m2 == pytest.approx(geod_area(good) + geod_area(repaired), abs=0.05)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT bool_and(ST_IsValid(geom)) FROM feature")).scalar() is True


def test_mixed_geometry_types_rejected_and_nothing_stored(
    engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    source = write_geojson(tmp_path / "mixed.geojson", [square(114.8, 34.8), shapely.Point(114.8, 34.8)])
    before = snapshot(engine)
    with pytest.raises(GeometryError, match=r"mixed geometry types.*1 Point.*1 Polygon"):
        import_file(engine, catalog, settings, source, "YJJBNT")
    assert snapshot(engine) == before


def test_points_refused_for_polygon_layer_but_taken_by_hazard_points(
    engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    source = write_geojson(tmp_path / "points.geojson", [shapely.Point(114.8, 34.8)], [{"YHDBH": "H1"}])
    with pytest.raises(GeometryError, match="Point geometries, but layer YJJBNT takes polygon"):
        import_file(engine, catalog, settings, source, "YJJBNT")
    report = import_file(engine, catalog, settings, source, "DZZHD")
    assert report.features_imported == 1 and report.area_total_m2 is None


def test_unknown_layer_code(engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path) -> None:
    source = write_geojson(tmp_path / "a.geojson", farmland_patches(1))
    with pytest.raises(UnknownLayerError, match="NOSUCH") as info:
        import_file(engine, catalog, settings, source, "NOSUCH")
    assert "YJJBNT" in str(info.value)  # the message lists the known codes


def test_shapefile_without_prj_in_metres_is_refused_unless_crs_given(
    engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    square_gk = shapely.box(500_000, 3_850_000, 500_400, 3_850_400)
    shp = write_shapefile(tmp_path / "noprj.shp", [square_gk], {"BSM": ["1"]}, epsg=None)
    assert not shp.with_suffix(".prj").exists()
    before = snapshot(engine)
    with pytest.raises(CRSError, match=r"(?i)crs"):
        import_file(engine, catalog, settings, shp, "CZKFBJ")
    assert snapshot(engine) == before
    report = import_file(engine, catalog, settings, shp, "CZKFBJ", crs="EPSG:4547")
    assert report.crs_source == "override"
    assert report.area_total_m2 == pytest.approx(geod_area(gk_to_lonlat(square_gk, 4547)), abs=0.01)


def test_geojson_with_metre_coordinates_and_no_crs_is_refused(
    engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    source = write_geojson(tmp_path / "metres.geojson", [shapely.box(500_000, 3_850_000, 500_400, 3_850_400)])
    with pytest.raises(CRSError):
        import_file(engine, catalog, settings, source, "CZKFBJ")


def test_zipped_shapefile_with_gbk_attributes(
    engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "shp"
    folder.mkdir()
    write_shapefile(
        folder / "红线.shp",
        [square(114.8, 34.8)],
        {"HXMC": ["黄河湿地生态保护红线"], "bsm": ["1"]},
        epsg=4490,
        encoding="GBK",
    )
    archive = tmp_path / "stbhhx.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for part in folder.iterdir():
            zf.write(part, f"data/{part.name}")
    report = import_file(engine, catalog, settings, archive, "STBHHX")
    assert report.source_format == "shapefile" and report.source_name == "stbhhx.zip"
    with engine.connect() as conn:
        props = conn.execute(text("SELECT properties FROM feature")).scalar_one()
    assert props["HXMC"] == "黄河湿地生态保护红线" and props["BSM"] == "1"


@pytest.mark.parametrize(
    ("member", "message"),
    [("../evil.shp", "'..'"), ("/etc/evil.shp", "absolute path")],
)
def test_zip_with_escaping_members_refused(
    engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path, member: str, message: str
) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(member, b"x")
    with pytest.raises(UnsafeArchiveError, match=message):
        import_file(engine, catalog, settings, archive, "YJJBNT")
    assert not (tmp_path.parent / "evil.shp").exists()


def test_zip_bomb_refused(engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path) -> None:
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bomb.geojson", b" " * (64 * 1024 * 1024))
    with pytest.raises(UnsafeArchiveError, match="zip bomb"):
        import_file(engine, catalog, settings, archive, "YJJBNT")
    small_limit = settings.model_copy(update={"max_uncompressed_bytes": 1000, "max_compression_ratio": 1e9})
    with pytest.raises(UnsafeArchiveError, match="exceeds the limit"):
        import_file(engine, catalog, small_limit, archive, "YJJBNT")


def test_truncated_shapefile(engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path) -> None:
    shp = write_shapefile(tmp_path / "t.shp", farmland_patches(50), {"BSM": [str(i) for i in range(50)]}, epsg=4490)
    data = shp.read_bytes()
    shp.write_bytes(data[: len(data) // 2])
    before = snapshot(engine)
    with pytest.raises(InputFileError):
        import_file(engine, catalog, settings, shp, "YJJBNT")
    assert snapshot(engine) == before


def test_unreadable_and_unsupported_files(engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path) -> None:
    garbage = tmp_path / "broken.geojson"
    garbage.write_text('{"type": "FeatureCollection", "features": [', encoding="utf-8")
    with pytest.raises(InputFileError, match=r"broken\.geojson"):
        import_file(engine, catalog, settings, garbage, "YJJBNT")
    with pytest.raises(UnsupportedFormatError, match=r"\.xls"):
        other = tmp_path / "table.xls"
        other.write_bytes(b"\xd0\xcf")
        import_file(engine, catalog, settings, other, "YJJBNT")
    with pytest.raises(InputFileError, match="no such file"):
        import_file(engine, catalog, settings, tmp_path / "missing.shp", "YJJBNT")


def test_cli_import_reports_and_fails_clearly(settings: Settings, engine: Engine, tmp_path: Path) -> None:
    env = {**os.environ, "GIS_DATABASE_URL": settings.database_url}
    cli = [sys.executable, "-m", "gis_platform.cli"]
    source = write_geojson(tmp_path / "a.geojson", farmland_patches(2))
    ok = subprocess.run(
        [*cli, "import", str(source), "--layer", "YJJBNT", "--no-progress"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    assert "入库 imported: 2" in ok.stdout and "亩" in ok.stdout
    bad = subprocess.run(
        [*cli, "import", str(source), "--layer", "BOGUS"], env=env, capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2
    assert "BOGUS" in bad.stderr and "Traceback" not in bad.stderr


def test_batched_import_keeps_source_numbers_and_counts(
    engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    patches = farmland_patches(30)
    bow_tie = shapely.Polygon([(114.90, 34.90), (114.91, 34.91), (114.91, 34.90), (114.90, 34.91), (114.90, 34.90)])
    patches[17] = bow_tie  # in the third batch of 7
    shp = write_shapefile(tmp_path / "many.shp", patches, {"BSM": [f"B{i}" for i in range(30)]}, epsg=4490)
    small_batches = settings.model_copy(update={"import_batch_size": 7})
    report = import_file(engine, catalog, small_batches, shp, "YJJBNT")
    assert (report.features_read, report.features_imported, report.repaired) == (30, 30, 1)
    assert report.repaired_source_fids == [17]
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT source_fid, properties->>'BSM' FROM feature ORDER BY source_fid")).all()
    assert rows == [(i, f"B{i}") for i in range(30)]
    expected = sum(geod_area(p) for p in patches[:17] + patches[18:]) + geod_area(shapely.make_valid(bow_tie))
    assert report.area_total_m2 == pytest.approx(expected, abs=0.1)


def test_wrong_geometry_type_in_a_later_batch_rolls_everything_back(
    engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    import_file(engine, catalog, settings, write_geojson(tmp_path / "a.geojson", farmland_patches(3)), "YJJBNT")
    before = snapshot(engine)
    folder = tmp_path / "gpkg"
    folder.mkdir()
    import geopandas as gpd

    geoms = [*farmland_patches(12), shapely.LineString([(114.8, 34.8), (114.81, 34.81)])]
    gpd.GeoDataFrame({"BSM": [str(i) for i in range(13)]}, geometry=geoms, crs="EPSG:4490").to_file(
        folder / "mixed.gpkg", engine="pyogrio", geometry_type="Unknown"
    )
    with pytest.raises(GeometryError, match="LineString"):
        import_file(
            engine, catalog, settings.model_copy(update={"import_batch_size": 5}), folder / "mixed.gpkg", "YJJBNT"
        )
    assert snapshot(engine) == before


def test_awkward_attribute_text_survives_copy(
    engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    awkward = ['C:\\dir\\file "quoted"', "tab\there", "line\nbreak", "\\N", "\\.", "段落\u2028分隔", "end\\"]
    source = write_geojson(
        tmp_path / "awkward.geojson",
        farmland_patches(len(awkward)),
        [{"BSM": str(i), "NOTE": text_value} for i, text_value in enumerate(awkward)],
    )
    import_file(engine, catalog, settings, source, "YJJBNT")
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT properties->>'NOTE' FROM feature ORDER BY source_fid")).scalars().all()
    assert stored == awkward
