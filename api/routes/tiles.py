"""Vector tiles of the catalogue layers, the hillshade basemap, and small layers as GeoJSON."""

from __future__ import annotations

import json
import threading
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response
from sqlalchemy import Engine

from gis_platform.accounts import MAP_READ
from gis_platform.catalog import Catalog
from gis_platform.hillshade import HillshadeService
from gis_platform.settings import Settings
from gis_platform.tiles import GEOJSON_DEFAULT_LIMIT, GEOJSON_MAX_LIMIT, TileService, features_geojson, parse_bbox

from ..deps import CatalogDep, EngineDep, SettingsDep
from ..security import requires

router = APIRouter(tags=["map"], dependencies=[requires(MAP_READ)])

MVT_MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
CACHE_CONTROL = "public, max-age=300"
_state_lock = threading.Lock()

Zoom = Annotated[int, Path(description="zoom 0–20")]
TileX = Annotated[int, Path(description="tile column, 0 … 2^z − 1")]
TileY = Annotated[int, Path(description="tile row from the top (XYZ), 0 … 2^z − 1")]


def _tile_service(
    request: Request, engine: Engine, catalog: Catalog, entries: int, version_ttl_s: float = 0.0
) -> TileService:
    """One tile service (and LRU cache) per application, made on first use."""
    with _state_lock:
        service = getattr(request.app.state, "tile_service", None)
        if service is None:
            service = TileService(engine, catalog, entries, version_ttl_s)
            request.app.state.tile_service = service
    return service


def _hillshade_service(request: Request, settings: Settings) -> HillshadeService:
    with _state_lock:
        service = getattr(request.app.state, "hillshade_service", None)
        if service is None:
            service = HillshadeService(settings.dem_path, settings.tile_cache_entries)
            request.app.state.hillshade_service = service
    return service


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    candidates = {c.strip().removeprefix("W/") for c in if_none_match.split(",")}
    return "*" in candidates or etag in candidates


@router.get(
    "/tiles/hillshade/{z}/{x}/{y}.png",
    summary="山体阴影底图瓦片 / offline hillshade basemap tile from the DEM",
    responses={200: {"content": {"image/png": {}}}, 204: {"description": "outside the DEM"}},
)
def hillshade_tile(
    request: Request,
    settings: SettingsDep,
    z: Zoom,
    x: TileX,
    y: TileY,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    service = _hillshade_service(request, settings)
    etag = service.etag(z, x, y)
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if _etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    png = service.tile(z, x, y)
    if not png:
        return Response(status_code=204, headers=headers)
    return Response(png, media_type="image/png", headers=headers)


@router.get(
    "/tiles/{code}/{z}/{x}/{y}.pbf",
    summary="矢量瓦片 (当前版本) / Mapbox vector tile of a layer's current version",
    responses={
        200: {"content": {MVT_MEDIA_TYPE: {}}},
        204: {"description": "no feature in this tile"},
        304: {"description": "not modified (If-None-Match)"},
    },
)
def vector_tile(
    request: Request,
    engine: EngineDep,
    catalog: CatalogDep,
    settings: SettingsDep,
    code: str,
    z: Zoom,
    x: TileX,
    y: TileY,
    if_none_match: Annotated[str | None, Header()] = None,
    accept_encoding: Annotated[str | None, Header()] = None,
) -> Response:
    service = _tile_service(request, engine, catalog, settings.tile_cache_entries, settings.tile_version_ttl_s)
    ref = service.locate(code, z, x, y)
    headers = {"ETag": ref.etag, "Cache-Control": CACHE_CONTROL, "Vary": "Accept-Encoding"}
    if _etag_matches(if_none_match, ref.etag):
        return Response(status_code=304, headers=headers)
    tile = service.tile(ref)
    if not tile.data:
        return Response(status_code=204, headers=headers)
    if accept_encoding and "gzip" in accept_encoding.lower():
        return Response(tile.gzipped, media_type=MVT_MEDIA_TYPE, headers={**headers, "Content-Encoding": "gzip"})
    return Response(tile.data, media_type=MVT_MEDIA_TYPE, headers=headers)


@router.get(
    "/api/v1/layers/{code}/features.geojson",
    summary="小图层要素 (GeoJSON, 当前版本) / a small layer's features as GeoJSON, key attributes only",
)
def layer_features_geojson(
    engine: EngineDep,
    catalog: CatalogDep,
    code: str,
    bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat (EPSG:4490/4326)")] = None,
    limit: Annotated[int, Query(ge=1, le=GEOJSON_MAX_LIMIT)] = GEOJSON_DEFAULT_LIMIT,
) -> Response:
    document = features_geojson(engine, catalog, code, bbox=parse_bbox(bbox), limit=limit)
    return _geojson_response(document)


def _geojson_response(document: dict[str, Any]) -> Response:
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return Response(body, media_type="application/geo+json")
