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
