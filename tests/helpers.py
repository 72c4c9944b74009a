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
