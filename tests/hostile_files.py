"""Hostile input files, built in code (never committed): the red-team findings of issue 13, at any size.

The tests use small ones with lowered limits; ``bench/bench_hostile.py`` the full-size ones.
"""

from __future__ import annotations

import json
import math
import random
import sqlite3
import struct
from pathlib import Path

import ezdxf
import geopandas as gpd
import shapely

PARCEL = shapely.box(114.80, 34.80, 114.801, 34.801)


def _gpkg_geometry(geometry: shapely.Geometry, srs_id: int = 4326) -> bytes:
    """A GeoPackage geometry blob: the "GP" header (version 0, little-endian, no envelope) and the WKB."""
    return b"GP" + bytes([0, 1]) + struct.pack("<i", srs_id) + shapely.to_wkb(geometry)


def real_gpkg(path: Path, geometries: list[shapely.Geometry] | None = None) -> Path:
    """A GeoPackage as GDAL writes it (with the standard R-tree triggers), layer ``parcels`` in EPSG:4490."""
    geometries = geometries or [PARCEL]
    frame = gpd.GeoDataFrame({"DKBH": [f"DK-{i + 1}" for i in range(len(geometries))]}, geometry=geometries)
    frame.set_crs(4490).to_file(path, layer="parcels", driver="GPKG", engine="pyogrio")
    return path


def recursive_view_gpkg(path: Path) -> Path:
    """A ~30 KB GeoPackage whose only layer is a view over a recursive query of 10⁹ rows (GDAL ran it for
    minutes, growing the worker past 20 GB)."""
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA application_id = 1196444487")  # 'GPKG'
    conn.execute("PRAGMA user_version = 10300")
    conn.executescript(
        """
        CREATE TABLE gpkg_spatial_ref_sys (srs_name TEXT NOT NULL, srs_id INTEGER PRIMARY KEY,
          organization TEXT NOT NULL, organization_coordsys_id INTEGER NOT NULL, definition TEXT NOT NULL,
          description TEXT);
        INSERT INTO gpkg_spatial_ref_sys VALUES ('WGS 84', 4326, 'EPSG', 4326, 'GEOGCS["WGS 84",DATUM["WGS_1984",
          SPHEROID["WGS 84",6378137,298.257223563]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]]', NULL);
        INSERT INTO gpkg_spatial_ref_sys VALUES ('Undefined cartesian SRS', -1, 'NONE', -1, 'undefined', NULL);
        INSERT INTO gpkg_spatial_ref_sys VALUES ('Undefined geographic SRS', 0, 'NONE', 0, 'undefined', NULL);
        CREATE TABLE gpkg_contents (table_name TEXT NOT NULL PRIMARY KEY, data_type TEXT NOT NULL,
          identifier TEXT UNIQUE, description TEXT DEFAULT '', last_change DATETIME NOT NULL DEFAULT
          (strftime('%Y-%m-%dT%H:%M:%fZ','now')), min_x DOUBLE, min_y DOUBLE, max_x DOUBLE, max_y DOUBLE,
          srs_id INTEGER);
        CREATE TABLE gpkg_geometry_columns (table_name TEXT NOT NULL, column_name TEXT NOT NULL,
          geometry_type_name TEXT NOT NULL, srs_id INTEGER NOT NULL, z TINYINT NOT NULL, m TINYINT NOT NULL,
          CONSTRAINT pk_geom_cols PRIMARY KEY (table_name, column_name));
        INSERT INTO gpkg_contents (table_name, data_type, identifier, srs_id) VALUES ('parcels', 'features',
          'parcels', 4326);
        INSERT INTO gpkg_geometry_columns VALUES ('parcels', 'geom', 'POLYGON', 4326, 0, 0);
        """
    )
    blob = _gpkg_geometry(PARCEL).hex()
    conn.execute(
        "CREATE VIEW parcels AS WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 1000000000)"
        f" SELECT n AS fid, X'{blob}' AS geom FROM r ORDER BY n DESC"
    )
    conn.commit()
    conn.close()
    return path


def trigger_gpkg(path: Path) -> Path:
    """A real GeoPackage with one trigger of its own next to GDAL's standard ones."""
    real_gpkg(path)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TRIGGER wipe_contents AFTER INSERT ON parcels BEGIN DELETE FROM gpkg_contents; END")
    conn.commit()
    conn.close()
    return path


def polylines_dxf(path: Path, count: int) -> Path:
    """A DXF of ``count`` closed 3 m squares (LWPOLYLINE), in CGCS2000 GK metres (zone of CM 114°E)."""
    doc = ezdxf.new("R2010")
    msp = doc.modelspace()
    for i in range(count):
        x, y = 500_000 + (i % 400) * 5.0, 3_850_000 + (i // 400) * 5.0
        msp.add_lwpolyline([(x, y), (x + 3, y), (x + 3, y + 3), (x, y + 3)], close=True)
    doc.saveas(path)
    return path


def spline_hatch_dxf(path: Path, control_points: int = 5_000) -> Path:
    """A HATCH whose boundary is one wiggly spline (5,000 control points flatten to ~96,000 vertices) closed by
    three lines."""
    rng = random.Random(1)
    doc = ezdxf.new("R2010")
    hatch = doc.modelspace().add_hatch()
    edges = hatch.paths.add_edge_path()
    ctrl = [(500_000 + i * 1.0, 3_850_000 + rng.random() * 1000.0) for i in range(control_points)]
    edges.add_spline(control_points=ctrl, degree=3)
    low = 3_840_000.0
    edges.add_line(ctrl[-1], (ctrl[-1][0], low))
    edges.add_line((ctrl[-1][0], low), (ctrl[0][0], low))
    edges.add_line((ctrl[0][0], low), ctrl[0])
    doc.saveas(path)
    return path


def points_txt(path: Path, points: int, *, parcels: int = 1, declared: int | None = None) -> Path:
    """A boundary TXT of ``parcels`` circular parcels of ``points`` points each (zone 38, prefixed eastings);
    ``declared``: the 界址点数 written on each parcel line (default: the true count)."""
    lines = [
        "[属性描述]",
        "坐标系=2000国家大地坐标系",
        "几度分带=3",
        "投影类型=高斯克吕格",
        "计量单位=米",
        "带号=38",
        "[地块坐标]",
    ]
    for p in range(parcels):
        cy, cx = 3_850_000 + p * 3000.0, 38_500_000.0
        lines.append(f"{declared or points + 1},1.0,DK-{p + 1},地块{p + 1},面,,,,@")
        for i in range(points):
            a = 2 * math.pi * i / points
            lines.append(f"J{i + 1},1,{cy + 1000 * math.sin(a):.3f},{cx + 1000 * math.cos(a):.3f}")
        lines.append(f"J1,1,{cy:.3f},{cx + 1000:.3f}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def multipart_geojson(path: Path, parts: int) -> Path:
    """One valid MultiPolygon of ``parts`` small triangles spread over ~1.4 km (under the vertex limit)."""
    triangles = []
    for i in range(parts):
        x, y = 114.79 + (i % 70) * 0.0002, 34.79 + (i // 70) * 0.0002
        triangles.append(shapely.Polygon([(x, y), (x + 0.0001, y), (x, y + 0.0001)]))
    geometry = json.loads(shapely.to_geojson(shapely.MultiPolygon(triangles)))
    feature = {"type": "Feature", "properties": {}, "geometry": geometry}
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}), encoding="utf-8")
    return path
