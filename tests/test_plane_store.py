"""The survey-plane geometry a version stores: exact, repeatable, kept in step with the catalogue's plane."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Transformer
from sqlalchemy import Engine, text

from api.app import create_app
from gis_platform.analysis.changes import compare_versions
from gis_platform.analysis.parcel import parcels_from_geojson
from gis_platform.catalog import DEFAULT_LAYERS_DIR, Catalog, load_catalog
from gis_platform.checks import CheckRequest, run_check
from gis_platform.errors import CatalogError, ConfigurationError
from gis_platform.ingest.pipeline import import_file
from gis_platform.plane_store import ensure_survey_plane
from gis_platform.rules import load_rules
from gis_platform.settings import Settings

from .helpers import auth_headers, from_plane, geod_area, to_plane, write_geojson, write_shapefile

pytestmark = pytest.mark.db

# farmland patches surveyed in EPSG:4547 with millimetre coordinates (CM 114°E, ~34.8°N)
PREFIX = np.array([38_000_000.0, 0.0])  # zone 38 in front of the easting (EPSG:4526)
PATCHES = [shapely.box(572_000.123 + 400 * i, 3_851_000.456, 572_300.789 + 400 * i, 3_851_250.012) for i in range(3)]
PROPS = [{"YJJBNTTBBH": f"JB{i}", "DLBM": "0101"} for i in range(3)]
TO_4490 = Transformer.from_crs(4547, 4490, always_xy=True)
TO_PLANE = Transformer.from_crs(4490, 4547, always_xy=True)


def _stored(engine: Engine, version_no: int) -> list[tuple[bytes, bytes, int]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT ST_AsBinary(f.geom), ST_AsBinary(f.geom_plane), ST_SRID(f.geom_plane) FROM feature f"
                " JOIN layer_version v ON v.id = f.version_id JOIN layer l ON l.id = v.layer_id"
                " WHERE l.code = 'YJJBNT' AND v.version_no = :n ORDER BY f.source_fid"
            ),
            {"n": version_no},
        ).all()
    return [(bytes(a), bytes(b), int(srid)) for a, b, srid in rows]


def _xy(wkb: bytes) -> np.ndarray:
    return shapely.get_coordinates(shapely.from_wkb(wkb))


def test_a_gk_file_keeps_its_own_coordinates_in_the_plane(
    engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    path = write_geojson(tmp_path / "yj.geojson", PATCHES, PROPS)  # coordinates kept as written
    report = import_file(engine, catalog, settings, path, "YJJBNT", crs="EPSG:4547")
    assert "EPSG:4547" in report.survey_plane
    for (_geom, plane, srid), patch in zip(_stored(engine, 1), PATCHES, strict=True):
        assert srid == 4547
        assert np.array_equal(_xy(plane), shapely.get_coordinates(patch))  # bit for bit, no round trip


def test_a_zone_prefixed_file_loses_exactly_its_prefix(
    engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    prefixed = [shapely.transform(p, lambda xy: xy + PREFIX) for p in PATCHES]
    path = write_geojson(tmp_path / "yj.geojson", prefixed, PROPS)
    import_file(engine, catalog, settings, path, "YJJBNT", crs="EPSG:4526")
    for (_geom, plane, _srid), patch in zip(_stored(engine, 1), prefixed, strict=True):
        assert np.array_equal(_xy(plane), shapely.get_coordinates(patch) - PREFIX)


def test_a_lonlat_file_is_projected_vertex_by_vertex(
    engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    lonlat = [shapely.transform(p, lambda xy: np.column_stack(TO_4490.transform(xy[:, 0], xy[:, 1]))) for p in PATCHES]
    import_file(engine, catalog, settings, write_geojson(tmp_path / "yj.geojson", lonlat, PROPS), "YJJBNT")
    for (geom, plane, _srid), patch in zip(_stored(engine, 1), lonlat, strict=True):
        assert np.array_equal(_xy(geom), shapely.get_coordinates(patch))  # EPSG:4490 as delivered
        projected = np.column_stack(TO_PLANE.transform(*shapely.get_coordinates(patch).T))
        assert np.allclose(_xy(plane), projected, rtol=0, atol=1e-9)


def test_reimporting_an_unchanged_file_stores_identical_geometry(
    engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    path = write_shapefile(tmp_path / "yj.shp", PATCHES, {k: [p[k] for p in PROPS] for k in PROPS[0]}, 4547)
    import_file(engine, catalog, settings, path, "YJJBNT")
    import_file(engine, catalog, settings, path, "YJJBNT")  # a new version of the same file
    assert _stored(engine, 1) == _stored(engine, 2)
    summary = compare_versions(engine, catalog, "YJJBNT")["summary"]
    assert summary["changed"]["count"] == summary["added"]["count"] == summary["removed"]["count"] == 0
    assert summary["unchanged"]["count"] == len(PATCHES)


@pytest.fixture
def stale_version(engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path) -> Iterator[Engine]:
    """A farmland version as stored before the survey plane existed: no plane geometry, no plane SRID."""
    path = write_shapefile(tmp_path / "yj.shp", PATCHES, {k: [p[k] for p in PROPS] for k in PROPS[0]}, 4547)
    import_file(engine, catalog, settings, path, "YJJBNT")
    with engine.begin() as conn:
        conn.execute(text("UPDATE feature SET geom_plane = NULL"))
        conn.execute(text("UPDATE layer_version SET plane_srid = NULL"))
    yield engine


def _check(engine: Engine, catalog: Catalog, settings: Settings) -> dict[str, object]:
    lonlat = shapely.transform(
        shapely.box(572_100, 3_851_050, 572_900, 3_851_150),
        lambda xy: np.column_stack(TO_4490.transform(xy[:, 0], xy[:, 1])),
    )
    (parcel,) = parcels_from_geojson(
        shapely.geometry.mapping(lonlat), "EPSG:4490", plane=catalog.survey_plane, max_vertices=1000
    )
    rules = load_rules(settings.layers_dir, catalog)
    return run_check(engine, catalog, rules, settings, CheckRequest(parcel, layers=("YJJBNT",), land_use_code="0701"))


def test_a_version_not_in_the_plane_is_refused_by_name_then_brought_into_it(
    stale_version: Engine, catalog: Catalog, settings: Settings
) -> None:
    with pytest.raises(ConfigurationError) as info:
        _check(stale_version, catalog, settings)
    assert "YJJBNT" in info.value.message and "gis-platform db upgrade" in info.value.message

    with TestClient(create_app(settings)) as client:
        ready = client.get("/api/v1/health/ready", headers=auth_headers(stale_version, "admin"))
        assert ready.status_code == 503 and "survey_plane" in ready.json()["failed"]

    done = ensure_survey_plane(stale_version, catalog.survey_plane)
    assert [(u.layer_code, u.features) for u in done] == [("YJJBNT", len(PATCHES))]
    assert ensure_survey_plane(stale_version, catalog.survey_plane) == []  # nothing left to do
    for _geom, plane, srid in _stored(stale_version, 1):
        # from the stored EPSG:4490 geometry: a round trip of nanometres, not the file's exact coordinates
        xy = _xy(plane)
        assert srid == 4547 and np.allclose(np.round(xy, 3), xy, rtol=0, atol=1e-6)
    farmland = next(layer for layer in _check(stale_version, catalog, settings)["layers"] if layer["code"] == "YJJBNT")  # type: ignore[index]
    assert farmland["overlap"]["m2"] > 0


def _catalogue_copy(tmp_path: Path, old: str, new: str) -> Path:
    folder = tmp_path / "layers"
    shutil.copytree(DEFAULT_LAYERS_DIR, folder)
    path = folder / "catalog.yaml"
    content = path.read_text(encoding="utf-8")
    assert old in content
    path.write_text(content.replace(old, new, 1), encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        ("  crs: EPSG:4547", "  crs: EPSG:4526", "EPSG:4534–4554"),  # the zone-prefixed family
        ("  crs: EPSG:4547", "  crs: EPSG:4490", "EPSG:4534–4554"),  # not a plane at all
        ("  crs: EPSG:4547", "  crs: 4547", "survey_plane.crs"),  # not written as an EPSG code
        ("  noise_width_m: 0.000001", "  noise_width_m: 0", "noise_width_m"),
        ("survey_plane:\n", "survey_plan:\n", "survey_plane"),
    ],
)
def test_a_bad_survey_plane_is_refused_when_the_catalogue_loads(tmp_path: Path, old: str, new: str, named: str) -> None:
    with pytest.raises(CatalogError) as info:
        load_catalog(_catalogue_copy(tmp_path, old, new))
    assert "catalog.yaml" in str(info.value) and named in str(info.value)


def _overlap_fids(engine: Engine) -> list[int] | None:
    with engine.connect() as conn:
        found = conn.execute(
            text(
                "SELECT v.overlap_fids FROM layer_version v JOIN layer l ON l.id = v.layer_id"
                " WHERE l.code = 'YJJBNT' ORDER BY v.version_no DESC LIMIT 1"
            )
        ).scalar_one()
    return None if found is None else sorted(found)


def test_the_import_names_the_features_that_may_overlap_another(
    engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    clean = write_geojson(tmp_path / "clean.geojson", PATCHES, PROPS)
    import_file(engine, catalog, settings, clean, "YJJBNT", crs="EPSG:4547")
    assert _overlap_fids(engine) == []  # disjoint patches: a check may sum their pieces

    # the third patch grown into the second: those two overlap; the first still touches nothing
    grown = [*PATCHES[:2], shapely.box(572_650.0, 3_851_000.456, 573_100.789, 3_851_250.012)]
    dirty = write_geojson(tmp_path / "dirty.geojson", grown, PROPS)
    import_file(engine, catalog, settings, dirty, "YJJBNT", crs="EPSG:4547")
    assert _overlap_fids(engine) == [1, 2]

    # a parcel across all three: the farmland figure is still the area of the union, not the sum
    lonlat = shapely.transform(
        shapely.box(572_100, 3_851_050, 573_000, 3_851_150),
        lambda xy: np.column_stack(TO_4490.transform(xy[:, 0], xy[:, 1])),
    )
    (parcel,) = parcels_from_geojson(
        shapely.geometry.mapping(lonlat), "EPSG:4490", plane=catalog.survey_plane, max_vertices=1000
    )
    rules = load_rules(settings.layers_dir, catalog)
    check = run_check(engine, catalog, rules, settings, CheckRequest(parcel, layers=("YJJBNT",), land_use_code="0701"))
    farmland = check["layers"][0]
    pieces = [to_plane(lonlat).intersection(g) for g in grown]
    union = geod_area(from_plane(shapely.union_all(pieces)))
    assert farmland["overlap"]["m2"] == pytest.approx(union, abs=0.01)
    assert sum(geod_area(from_plane(p)) for p in pieces) > union + 1_000  # the sum would have been wrong
