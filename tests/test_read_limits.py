"""Reader limits in the core (gis_platform/ingest/limits.py, gpkg.py, dxf_document.py): counted while reading.

No database: the readers alone, with limits built from a Settings object.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import ezdxf
import pytest

from gis_platform.analysis.upload import upload_limits
from gis_platform.errors import FileLimitError, InputFileError, ParcelError
from gis_platform.ingest.dxf import read_dxf
from gis_platform.ingest.dxf_document import count_entities
from gis_platform.ingest.gpkg import geopackage_layers
from gis_platform.ingest.limits import ReadLimits
from gis_platform.ingest.pipeline import read_source
from gis_platform.settings import Settings

from . import hostile_files as hostile

LIMITS = upload_limits(Settings(max_parcel_vertices=1000, max_file_vertices=3000, max_dxf_entities=10))


def test_dxf_entities_are_counted_as_ezdxf_reads_them(tmp_path: Path) -> None:
    doc = ezdxf.new("R2010")
    msp = doc.modelspace()
    msp.add_lwpolyline([(0, 0), (1, 0), (1, 1)], close=True)
    msp.add_text("0")  # a text value "0" is not a record
    msp.add_line((0, 0), (5, 5))
    msp.add_hatch().paths.add_polyline_path([(0, 0), (2, 0), (2, 2)])
    doc.blocks.new("PLAN").add_line((0, 0), (1, 1))  # a block's entities are not the model space's
    doc.saveas(tmp_path / "mixed.dxf")
    assert count_entities(tmp_path / "mixed.dxf") == len(doc.modelspace()) == 4

    old = ezdxf.new("R12")
    old.modelspace().add_polyline2d([(0, 0), (1, 0), (1, 1), (0, 1)], close=True)  # POLYLINE, 4 VERTEX, SEQEND
    old.saveas(tmp_path / "r12.dxf")
    assert count_entities(tmp_path / "r12.dxf") == 1


def test_a_dxf_past_the_entity_limit_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    path = hostile.polylines_dxf(tmp_path / "many.dxf", 11)
    with pytest.raises(FileLimitError, match="11 entities, more than the limit of 10"):
        read_dxf(path, limits=LIMITS)
    assert len(read_dxf(path).geometries) == 11  # an operator's import reads it


def test_bulge_arcs_are_stopped_at_a_parcels_worth_of_points(tmp_path: Path) -> None:
    doc = ezdxf.new("R2010")
    # two half-circle arcs: ~1,100 points each once flattened, past the limit of 1,000
    doc.modelspace().add_lwpolyline([(0, 0, 1.0), (100, 0, 1.0)], format="xyb", close=True)
    doc.saveas(tmp_path / "arcs.dxf")
    with pytest.raises(ParcelError, match=r"LWPOLYLINE .*more than the limit of 1000"):
        read_dxf(tmp_path / "arcs.dxf", limits=LIMITS)
    assert len(read_dxf(tmp_path / "arcs.dxf").geometries) == 1


def test_a_hatch_spline_stops_at_the_limit(tmp_path: Path) -> None:
    path = hostile.spline_hatch_dxf(tmp_path / "spline.dxf", control_points=500)
    with pytest.raises(ParcelError, match=r"HATCH .*more than 1000 vertices once its curves are flattened"):
        read_dxf(path, limits=LIMITS)


def test_boundary_txt_counts_points_and_parcels(tmp_path: Path) -> None:
    with pytest.raises(ParcelError, match="declares 界址点数 1201, more than the limit of 1000"):
        read_source(hostile.points_txt(tmp_path / "a.txt", 1200), limits=LIMITS)
    with pytest.raises(ParcelError, match="1001 vertices, more than the limit of 1000"):
        read_source(hostile.points_txt(tmp_path / "b.txt", 1200, declared=10), limits=LIMITS)
    with pytest.raises(FileLimitError, match="more than 3000 vertices"):
        read_source(hostile.points_txt(tmp_path / "c.txt", 900, parcels=4), limits=LIMITS)
    few = ReadLimits(max_features=2, features_hint="; use the batch check")
    with pytest.raises(ParcelError, match="3 parcels, more than the limit of 2; use the batch check"):
        read_source(hostile.points_txt(tmp_path / "d.txt", 10, parcels=3), limits=few)
    assert len(read_source(tmp_path / "c.txt").geometries) == 4  # no limits: the operator's import


def test_geopackage_schema_check(tmp_path: Path) -> None:
    assert geopackage_layers(hostile.real_gpkg(tmp_path / "real.gpkg")) == ["parcels"]
    for make, words in (
        (hostile.recursive_view_gpkg, "SQL views (parcels)"),
        (hostile.trigger_gpkg, "triggers (wipe_contents)"),
    ):
        with pytest.raises(InputFileError, match=words.replace("(", r"\(").replace(")", r"\)")):
            geopackage_layers(make(tmp_path / f"{make.__name__}.gpkg"))

    virtual = hostile.real_gpkg(tmp_path / "virtual.gpkg")
    with sqlite3.connect(virtual) as conn:
        conn.execute("CREATE VIRTUAL TABLE words USING fts5(body)")
    with pytest.raises(InputFileError, match="virtual tables"):
        geopackage_layers(virtual)

    shadow = hostile.real_gpkg(tmp_path / "shadow.gpkg")  # a system table replaced by a view
    with sqlite3.connect(shadow) as conn:
        conn.executescript(
            "ALTER TABLE gpkg_contents RENAME TO contents_data;"
            " CREATE VIEW gpkg_contents AS SELECT * FROM contents_data;"
        )
    with pytest.raises(InputFileError, match="SQL views"):
        geopackage_layers(shadow)

    (tmp_path / "text.gpkg").write_text("not a database")
    with pytest.raises(InputFileError, match="not a GeoPackage"):
        geopackage_layers(tmp_path / "text.gpkg")
