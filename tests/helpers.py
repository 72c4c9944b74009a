"""Small geometries and files built in code, with an explicit CRS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from pyproj import Geod, Transformer

GEOD = Geod(ellps="GRS80")  # CGCS2000 uses the GRS80 a and 1/f


def square(lon: float, lat: float, size_deg: float = 0.002) -> shapely.Polygon:
    return shapely.box(lon, lat, lon + size_deg, lat + size_deg)


def geod_area(geometry: shapely.Geometry) -> float:
    """Ellipsoidal area of a lon/lat geometry, independently of the platform (pyproj Geod).

    Geod sums signed ring areas, so rings are oriented first (shell counter-clockwise, holes clockwise).
    """
    return abs(GEOD.geometry_area_perimeter(shapely.orient_polygons(geometry))[0])


def gk_to_lonlat(geometry: shapely.Geometry, epsg: int) -> shapely.Geometry:
    transformer = Transformer.from_crs(epsg, 4490, always_xy=True)
    return shapely.transform(geometry, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))


def write_geojson(path: Path, geometries: list[Any], properties: list[dict[str, Any]] | None = None) -> Path:
    properties = properties or [{} for _ in geometries]
    features = [
        {"type": "Feature", "properties": p, "geometry": None if g is None else json.loads(shapely.to_geojson(g))}
        for g, p in zip(geometries, properties, strict=True)
    ]
    path.write_text(
        json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False), encoding="utf-8"
    )
    return path


def write_shapefile(
    path: Path, geometries: list[Any], properties: dict[str, list[Any]], epsg: int | None, encoding: str = "UTF-8"
) -> Path:
    frame = gpd.GeoDataFrame(properties, geometry=geometries, crs=f"EPSG:{epsg}" if epsg else None)
    frame.to_file(path, engine="pyogrio", encoding=encoding)
    return path


def farmland_patches(n: int = 5, lon: float = 114.80, lat: float = 34.80) -> list[shapely.Polygon]:
    return [square(lon + i * 0.003, lat) for i in range(n)]


_PASSWORD_HASHES: dict[str, str] = {}
TEST_PASSWORD = "Test-password-1"


def ensure_user(engine: Any, role: str = "admin", username: str | None = None) -> dict[str, Any]:
    """A user with ``role`` (password :data:`TEST_PASSWORD`), created when missing; hashed once per test run."""
    from sqlalchemy import text

    from gis_platform import accounts

    username = username or f"test-{role}"
    if TEST_PASSWORD not in _PASSWORD_HASHES:
        _PASSWORD_HASHES[TEST_PASSWORD] = accounts.hash_password(TEST_PASSWORD)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO app_user (username, role, password_hash, display_name)"
                " SELECT :u, :r, :h, :d WHERE NOT EXISTS (SELECT 1 FROM app_user WHERE lower(username) = lower(:u))"
            ),
            {"u": username, "r": role, "h": _PASSWORD_HASHES[TEST_PASSWORD], "d": f"测试 {role}"},
        )
        row = conn.execute(
            text("SELECT id, username, role FROM app_user WHERE lower(username) = lower(:u)"), {"u": username}
        ).one()
    return {"id": row.id, "username": row.username, "role": row.role}


def auth_headers(engine: Any, role: str = "admin", username: str | None = None) -> dict[str, str]:
    """``Authorization`` for a bearer session of a user with ``role`` (see :func:`ensure_user`)."""
    import datetime as dt

    from gis_platform import accounts
    from gis_platform.audit import Actor

    user = ensure_user(engine, role, username)
    token, _ = accounts.create_session(
        engine, user, kind="bearer", lifetime=dt.timedelta(hours=1), actor=Actor(user["username"], "user", role)
    )
    return {"Authorization": f"Bearer {token}"}


def audit_mark(engine: Any) -> int:
    """The id of the newest audit entry (the trail is append-only, so it outlives every test)."""
    from sqlalchemy import text

    with engine.connect() as conn:
        return int(conn.execute(text("SELECT coalesce(max(id), 0) FROM audit_event")).scalar_one())


def audit_entries(engine: Any, action: str, after: int) -> list[dict[str, Any]]:
    """Audit entries of ``action`` newer than ``after`` (see :func:`audit_mark`), oldest first."""
    from sqlalchemy import text

    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT * FROM audit_event WHERE action = :a AND id > :after ORDER BY id"),
            {"a": action, "after": after},
        )
        return [dict(r._mapping) for r in rows]


PLANE_EPSG = 4547  # the survey plane of the test catalogue (layers/catalog.yaml: CGCS2000 GK, CM 114°E)
_TO_PLANE = Transformer.from_crs(4490, PLANE_EPSG, always_xy=True)
_FROM_PLANE = Transformer.from_crs(PLANE_EPSG, 4490, always_xy=True)


def to_plane(geometry: shapely.Geometry) -> shapely.Geometry:
    """A lon/lat geometry in the survey plane, vertex by vertex (pyproj)."""
    return shapely.transform(geometry, lambda xy: np.column_stack(_TO_PLANE.transform(xy[:, 0], xy[:, 1])))


def from_plane(geometry: shapely.Geometry) -> shapely.Geometry:
    """A survey-plane geometry in lon/lat, vertex by vertex (pyproj)."""
    return shapely.transform(geometry, lambda xy: np.column_stack(_FROM_PLANE.transform(xy[:, 0], xy[:, 1])))


def overlay(a: shapely.Geometry, b: shapely.Geometry, op: str = "intersection") -> shapely.Geometry:
    """``a op b`` computed the way a reviewer does it, in the survey plane, returned in lon/lat.

    The independent oracle for the platform's overlays: shapely in the Gauss-Krüger plane, then
    :func:`geod_area` (pyproj Geod) of the result.
    """
    return from_plane(getattr(to_plane(a), op)(to_plane(b)))


def union_in_plane(geometries: list[shapely.Geometry]) -> shapely.Geometry:
    """The union of lon/lat geometries computed in the survey plane, returned in lon/lat."""
    return from_plane(shapely.union_all([to_plane(g) for g in geometries]))


def overlay_tolerance(m2: float) -> float:
    """How closely an overlay figure must match the shapely-in-the-plane + Geod oracle: 0.005 % + 0.05 m².

    The ellipsoidal area of an overlay result is the geodesic area of its vertices, and a union may keep or
    drop a vertex lying on a straight edge (GEOS versions differ: shapely's GEOS 3.14 dropped two that PostGIS's
    GEOS 3.11 kept, on a 5.3 km² union of 3.3 km edges). The plane region is the same; its geodesic area moved by
    0.96 m² (1.8e-7 of it). Figures from one piece (no union) still match to 0.01 m².
    """
    return 0.05 + 5e-5 * abs(m2)
