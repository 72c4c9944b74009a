"""What the web map needs to start: county extent and CRS, the layer tree with styles and legends, basemaps."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gis_platform.accounts import MAP_READ
from gis_platform.catalog import Catalog, Layer, Style, StyleCategory
from gis_platform.gk_zones import gk_epsg
from gis_platform.hillshade import native_max_zoom
from gis_platform.tiles import (
    MAX_ZOOM,
    MIN_ZOOM,
    LayerState,
    county_extent,
    layer_min_zoom,
    layer_states,
    serves_as_mvt,
    tile_properties,
)

from ..deps import CatalogDep, EngineDep, SettingsDep
from ..security import requires

router = APIRouter(tags=["map"], dependencies=[requires(MAP_READ)])

GROUP_NAMES_EN = {"现状": "Status quo", "规划": "Planning", "管理": "Management"}
DEFAULT_VISIBLE_ROLES = frozenset({"township_boundary", "red_line_farmland", "red_line_ecology", "urban_boundary"})
_DRAWING_KEYS = ("fill", "fill_opacity", "stroke", "stroke_width", "dash", "marker_color")


def _base_drawing(style: Style) -> dict[str, Any]:
    return {
        **{k: getattr(style, k) for k in _DRAWING_KEYS},
        "pattern": style.pattern,
        "marker_radius": style.marker_radius,
    }


def _category_entry(style: Style, category: StyleCategory) -> dict[str, Any]:
    drawing = _base_drawing(style)
    for key in _DRAWING_KEYS:
        override = getattr(category, key)
        if override is not None:
            drawing[key] = override
    return {"label_zh": category.label_zh, "label_en": category.label_en, "values": list(category.values), **drawing}


def _legend(layer: Layer) -> list[dict[str, Any]]:
    style = layer.style
    if style.categorized is None:
        return [{"label_zh": layer.name_zh, "label_en": layer.name_en, "values": [], **_base_drawing(style)}]
    return [_category_entry(style, c) for c in style.categorized.categories]


def _layer_entry(layer: Layer, state: LayerState | None) -> dict[str, Any]:
    mvt = serves_as_mvt(layer, state.feature_count if state else None)
    style = _base_drawing(layer.style)
    categorized = layer.style.categorized
    style["categorized"] = (
        None
        if categorized is None
        else {
            "field": categorized.field,
            "match": categorized.match,
            "categories": [_category_entry(layer.style, c) for c in categorized.categories],
        }
    )
    return {
        "code": layer.code,
        "name_zh": layer.name_zh,
        "name_en": layer.name_en,
        "group": layer.group,
        "role": layer.role,
        "geometry_type": layer.geometry_type,
        "served_as": "mvt" if mvt else "geojson",
        "tile_url": f"/tiles/{layer.code}/{{z}}/{{x}}/{{y}}.pbf" if mvt else None,
        "geojson_url": None if mvt else f"/api/v1/layers/{layer.code}/features.geojson",
        "min_zoom": layer_min_zoom(layer) if mvt else MIN_ZOOM,
        "max_zoom": MAX_ZOOM,
        "feature_id_field": layer.feature_id_field,
        "name_field": layer.name_field,
        "properties": ["id", *tile_properties(layer)],
        "style": style,
        "legend": _legend(layer),
        "default_visible": layer.role in DEFAULT_VISIBLE_ROLES,
        "current_version": None
        if state is None
        else {
            "id": state.version_id,
            "version_no": state.version_no,
            "feature_count": state.feature_count,
            "imported_at": state.imported_at,
        },
        "feature_count": state.feature_count if state else 0,
    }


def _crs(catalog: Catalog) -> dict[str, Any]:
    """The CRSs of the map, and the county's survey plane (the GK zone every overlay runs in) from the catalogue."""
    plane = catalog.survey_plane
    return {
        "storage_epsg": catalog.storage_srid,
        "tile_epsg": 3857,
        "geojson_epsg": catalog.storage_srid,
        "gk_zone": plane.zone,
        "gk_central_meridian": plane.central_meridian,
        "gk_epsg_prefixed": gk_epsg(plane.zone, prefixed=True),
        "gk_epsg": plane.epsg,
        "survey_plane": {"epsg": plane.epsg, "noise_width_m": plane.noise_width_m, "label": plane.label},
    }


@router.get("/api/v1/map-config", summary="一张图配置：范围、坐标系、图层树、图例、底图 / web map configuration")
def map_config(engine: EngineDep, catalog: CatalogDep, settings: SettingsDep) -> dict[str, Any]:
    states = layer_states(engine)
    bbox, bbox_source = county_extent(catalog, states)
    center = None if bbox is None else [(bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2]
    groups = [
        {
            "name_zh": group,
            "name_en": GROUP_NAMES_EN.get(group, group),
            "layers": [_layer_entry(layer, states.get(layer.code)) for layer in catalog.layers_in_group(group)],
        }
        for group in catalog.groups
    ]
    hillshade = settings.dem_path is not None and settings.dem_path.is_file()
    return {
        "county": {"bbox": list(bbox) if bbox else None, "center": center, "bbox_source": bbox_source},
        "crs": _crs(catalog),
        "zoom": {"min": MIN_ZOOM, "max": MAX_ZOOM},
        "groups": groups,
        "basemap": {"url": settings.basemap_url, "attribution": settings.basemap_attribution}
        if settings.basemap_url
        else None,
        "hillshade": {
            "enabled": hillshade,
            "url": "/tiles/hillshade/{z}/{x}/{y}.png" if hillshade else None,
            "maxzoom": native_max_zoom(settings.dem_path) if hillshade and settings.dem_path else None,
        },
        "land_uses": [use.model_dump(mode="json") for use in catalog.land_uses],
        "udb_expansion_limit": settings.udb_expansion_limit,
        "catalog_fingerprint": catalog.fingerprint,
    }
