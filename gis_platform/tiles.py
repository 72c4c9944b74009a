"""Map delivery: Mapbox vector tiles (MVT) and small GeoJSON layers from each layer's *current* version.

Vector tiles
    ``ST_AsMVT`` / ``ST_AsMVTGeom`` over the current version of a catalogue layer. Features are found
    with the GiST index on the stored EPSG:4490 geometry (the lon/lat box of the tile, grown by the MVT
    buffer and clamped at ±180°/±85°: Web Mercator is lon/lat-rectangular, so this is exactly the tile
    envelope ``ST_TileEnvelope(z, x, y)`` in 4490), transformed to EPSG:3857 and simplified to half a
    pixel at the tile's zoom (``ST_Simplify`` keeping collapsed parts; it halved z12 over the topology-
    preserving variant with the same tile size, and ``ST_AsMVTGeom`` makes the output valid) before it snaps
    them to the 4096 grid. A tile carries only what styling, identify and labels need: ``id`` (the feature's db id, an
    integer property and also the MVT feature id), the layer's ``feature_id_field``, ``name_field`` and the
    categorised-style field, as text. The MVT layer is named after the layer code.

    Rendered tiles are kept in an in-process LRU keyed by ``(layer, version id, import time, z, x, y)``.
    The ETag hashes the same version identity with the catalogue fingerprint, so a re-import (or a
    catalogue change) changes every ETag. Below a large layer's minimum zoom (:data:`MVT_MIN_ZOOM`) the
    tile is empty rather than megabytes of sub-pixel patches.

GeoJSON
    :func:`features_geojson` returns the features of small layers (乡镇, red lines, hazard points …) in
    EPSG:4490 lon/lat (equal to EPSG:4326 for display) with the key properties only.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from .catalog import Catalog, Layer
from .errors import NotFoundError, PlatformError

MIN_ZOOM: Final[int] = 0
MAX_ZOOM: Final[int] = 20
MVT_EXTENT: Final[int] = 4096
MVT_BUFFER: Final[int] = 256  # tile units (16 px at 256 px tiles): no seams where polygons are clipped
WEB_MERCATOR_WORLD_M: Final[float] = 2 * math.pi * 6378137.0
TILE_PIXELS: Final[int] = 256

#: Layers that are served as vector tiles whatever their size (the large county layers).
MVT_ROLES: Final[frozenset[str]] = frozenset({"land_survey", "red_line_farmland", "township_plan", "zoning"})
#: Any other layer with more features than this is served as vector tiles too.
GEOJSON_MAX_FEATURES: Final[int] = 5_000
#: Below these zooms a layer's tiles are empty (a z10 tile of 三调 patches is ~1 MB of sub-pixel polygons).
MVT_MIN_ZOOM: Final[dict[str, int]] = {"land_survey": 12, "township_plan": 12, "red_line_farmland": 10}

#: Memory bound of the tile LRU besides ``settings.tile_cache_entries`` (raw + gzipped tiles, estimated).
TILE_CACHE_MAX_BYTES: Final[int] = 256 * 1024 * 1024

GEOJSON_DEFAULT_LIMIT: Final[int] = 5_000
GEOJSON_MAX_LIMIT: Final[int] = 20_000
GEOJSON_DECIMALS: Final[int] = 7  # ~1 cm in lon/lat

_IDENT_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")


class TileRequestError(PlatformError):
    """A tile or feature request outside the allowed range (zoom, x/y, bbox, limit)."""

    code = "invalid_tile_request"


# --------------------------------------------------------------------------------------------------
# Layer facts the map needs
# --------------------------------------------------------------------------------------------------


def tile_properties(layer: Layer) -> tuple[str, ...]:
    """The attribute names a vector tile of ``layer`` carries besides ``id`` (catalogue order, no repeats)."""
    names = [layer.feature_id_field, layer.name_field]
    if layer.style.categorized is not None:
        names.append(layer.style.categorized.field)
    out: list[str] = []
    for name in names:
        if name is not None and name not in out and name != "id":
            out.append(name)
    return tuple(out)


def geojson_properties(layer: Layer) -> tuple[str, ...]:
    """The attribute names a GeoJSON feature of ``layer`` carries: the tile attributes and the key fields."""
    out = list(tile_properties(layer))
    for f in layer.fields:
        if f.key and f.name not in out:
            out.append(f.name)
    return tuple(out)


def serves_as_mvt(layer: Layer, feature_count: int | None) -> bool:
    """Whether the map loads ``layer`` as vector tiles (large layers) rather than as one GeoJSON."""
    return layer.role in MVT_ROLES or (feature_count or 0) > GEOJSON_MAX_FEATURES


def layer_min_zoom(layer: Layer) -> int:
    """The lowest zoom at which the layer's vector tiles carry features."""
    return MVT_MIN_ZOOM.get(layer.role, MIN_ZOOM)


def _quoted(name: str) -> str:
    """A catalogue field name as a quoted SQL identifier (names are validated upper-case identifiers)."""
    if not _IDENT_RE.match(name):
        raise TileRequestError(f"field name {name!r} is not a catalogue identifier")
    return f'"{name}"'


def simplify_tolerance_m(z: int) -> float:
    """Half a 256-px pixel at zoom ``z``, in EPSG:3857 metres."""
    return WEB_MERCATOR_WORLD_M / (TILE_PIXELS * 2**z) / 2


def search_envelope(z: int, x: int, y: int, margin: float) -> tuple[float, float, float, float]:
    """Lon/lat box of tile ``z/x/y`` grown by ``margin`` tiles, clamped to the world (no wrap at ±180°)."""
    n = 2**z

    def lat(row: float) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

    west = max(-180.0, (x - margin) / n * 360 - 180)
    east = min(180.0, (x + 1 + margin) / n * 360 - 180)
    return west, max(-90.0, lat(min(n, y + 1 + margin))), east, min(90.0, lat(max(0, y - margin)))


def validate_tile(z: int, x: int, y: int) -> None:
    """Raise :class:`TileRequestError` unless ``z`` is 0–20 and ``x``/``y`` lie in ``0 … 2**z − 1``."""
    if not MIN_ZOOM <= z <= MAX_ZOOM:
        raise TileRequestError(f"zoom {z} is outside {MIN_ZOOM}–{MAX_ZOOM}", z=z)
    top = 2**z - 1
    if not (0 <= x <= top and 0 <= y <= top):
        raise TileRequestError(f"tile x={x}, y={y} is outside 0–{top} at zoom {z}", z=z, x=x, y=y)


# --------------------------------------------------------------------------------------------------
# Tile cache
# --------------------------------------------------------------------------------------------------


@dataclass
class VectorTile:
    """A rendered tile; ``data`` is empty for a tile without features."""

    data: bytes
    _gzipped: bytes | None = field(default=None, repr=False)

    @property
    def gzipped(self) -> bytes:
        """The tile gzip-compressed (computed once)."""
        if self._gzipped is None:
            self._gzipped = gzip.compress(self.data, compresslevel=5, mtime=0)
        return self._gzipped


CacheKey = tuple[str, int, str, int, int, int]
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TileCache(Generic[K, V]):
    """A thread-safe LRU of rendered tiles, bounded by entries and (optionally) by weight in bytes."""

    def __init__(self, max_entries: int, *, max_bytes: int | None = None, weigh: Callable[[V], int] | None = None):
        self.max_entries = max(0, int(max_entries))
        self.max_bytes, self._weigh = max_bytes, weigh
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.bytes = self.hits = self.misses = 0

    def get(self, key: K) -> V | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item[0]

    def put(self, key: K, value: V) -> None:
        if self.max_entries == 0:
            return
        weight = self._weigh(value) if self._weigh else 0
        with self._lock:
            old = self._items.pop(key, None)
            self.bytes += weight - (old[1] if old else 0)
            self._items[key] = (value, weight)
            while len(self._items) > self.max_entries or (self.max_bytes and self.bytes > self.max_bytes):
                self.bytes -= self._items.popitem(last=False)[1][1]

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.bytes = 0


# --------------------------------------------------------------------------------------------------
# Vector tiles
# --------------------------------------------------------------------------------------------------

_CURRENT_VERSION_SQL = text(
    "SELECT v.id, v.imported_at FROM layer l JOIN layer_version v ON v.id = l.current_version_id WHERE l.code = :code"
)

_MVT_SQL = """
WITH rows AS (
    SELECT f.id, f.id AS id{columns},
           ST_AsMVTGeom({geometry}, ST_TileEnvelope(:z, :x, :y), :extent, :buffer, true) AS geom
    FROM feature f
    WHERE f.version_id = :version AND f.geom && ST_MakeEnvelope(:west, :south, :east, :north, {srid})
)
SELECT ST_AsMVT(rows.*, :layer_name, :extent, 'geom', 'id') FROM rows WHERE geom IS NOT NULL
"""


@dataclass(frozen=True)
class TileRef:
    """A validated tile address on a layer's current version, with its ETag."""

    layer: Layer
    version_id: int
    imported_at: str
    z: int
    x: int
    y: int
    etag: str

    @property
    def cache_key(self) -> CacheKey:
        return (self.layer.code, self.version_id, self.imported_at, self.z, self.x, self.y)


def _mvt_sql(layer: Layer, storage_srid: int) -> str:
    columns = "".join(
        f",\n           f.properties ->> :p{i} AS {_quoted(name)}" for i, name in enumerate(tile_properties(layer))
    )
    geometry = (
        "ST_Transform(f.geom, 3857)"
        if layer.geometry_type == "point"
        else "ST_Simplify(ST_Transform(f.geom, 3857), :tolerance, true)"
    )
    return _MVT_SQL.format(srid=int(storage_srid), columns=columns, geometry=geometry)


class TileService:
    """Vector tiles of the catalogue layers' current versions, with an LRU cache and ETags.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The PostGIS database.
    catalog : Catalog
        The layer catalogue: only its layers and fields are ever named in SQL.
    cache_entries : int
        LRU size (``settings.tile_cache_entries``); 0 disables the cache.
    version_ttl_s : float
        How long a layer's current version is remembered before asking the database again
        (``settings.tile_version_ttl_s``). Looking it up on every tile cost about half a millisecond, a
        quarter of a cached tile; with the default of 1 s a re-import reaches the map within a second.
    """

    def __init__(self, engine: Engine, catalog: Catalog, cache_entries: int, version_ttl_s: float = 0.0) -> None:
        self.engine = engine
        self.catalog = catalog
        self.version_ttl_s = version_ttl_s
        self._versions: dict[str, tuple[float, Any]] = {}
        self.cache: TileCache[CacheKey, VectorTile] = TileCache(
            cache_entries, max_bytes=TILE_CACHE_MAX_BYTES, weigh=lambda tile: len(tile.data) * 3 // 2 + 100
        )
        self._sql = {layer.code: text(_mvt_sql(layer, catalog.storage_srid)) for layer in catalog.layers}

    def locate(self, code: str, z: int, x: int, y: int) -> TileRef:
        """Validate the address and find the layer's current version.

        Raises
        ------
        UnknownLayerError
            ``code`` is not a catalogue layer.
        TileRequestError
            Zoom outside 0–20 or x/y outside the zoom's range.
        NotFoundError
            The layer has never been imported.
        """
        layer = self.catalog.layer(code)
        validate_tile(z, x, y)
        row = self._current_version(layer.code)
        if row is None:
            raise NotFoundError(f"layer {layer.code} ({layer.name_zh}) has no data: import it first", code=layer.code)
        version_id, imported_at = int(row[0]), _timestamp(row[1])
        identity = f"{layer.code}\0{version_id}\0{imported_at}\0{z}/{x}/{y}\0{self.catalog.fingerprint}"
        etag = '"' + hashlib.sha256(identity.encode()).hexdigest()[:32] + '"'
        return TileRef(layer, version_id, imported_at, z, x, y, etag)

    def _current_version(self, code: str) -> Any:
        now = time.monotonic()
        remembered = self._versions.get(code)
        if remembered is not None and remembered[0] > now:
            return remembered[1]
        with self.engine.connect() as conn:
            row = conn.execute(_CURRENT_VERSION_SQL, {"code": code}).one_or_none()
        if self.version_ttl_s > 0:
            self._versions[code] = (now + self.version_ttl_s, row)
        return row

    def tile(self, ref: TileRef) -> VectorTile:
        """The tile at ``ref``, from the cache or rendered (empty below the layer's minimum zoom)."""
        cached = self.cache.get(ref.cache_key)
        if cached is not None:
            return cached
        if ref.z < layer_min_zoom(ref.layer):
            tile = VectorTile(b"")
        else:
            with self.engine.connect() as conn:
                tile = VectorTile(self.render(conn, ref))
        self.cache.put(ref.cache_key, tile)
        return tile

    def render(self, conn: Connection, ref: TileRef) -> bytes:
        """Render one tile with ``ST_AsMVT`` (no cache)."""
        west, south, east, north = search_envelope(ref.z, ref.x, ref.y, MVT_BUFFER / MVT_EXTENT)
        params: dict[str, Any] = {
            "z": ref.z,
            "x": ref.x,
            "y": ref.y,
            "west": west,
            "south": south,
            "east": east,
            "north": north,
            "extent": MVT_EXTENT,
            "buffer": MVT_BUFFER,
            "version": ref.version_id,
            "tolerance": simplify_tolerance_m(ref.z),
            "layer_name": ref.layer.code,
        }
        params.update({f"p{i}": name for i, name in enumerate(tile_properties(ref.layer))})
        data = conn.execute(self._sql[ref.layer.code], params).scalar()
        return bytes(data) if data else b""


def _timestamp(value: Any) -> str:
    return value.isoformat() if isinstance(value, dt.datetime) else str(value)


# --------------------------------------------------------------------------------------------------
# Current versions and the county extent (for the map configuration)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerState:
    """A layer's current version as the map needs it."""

    code: str
    version_id: int
    version_no: int
    feature_count: int
    imported_at: str
    extent: tuple[float, float, float, float] | None


_STATES_SQL = text(
    "SELECT l.code, v.id, v.version_no, v.feature_count, v.imported_at,"
    " ST_XMin(v.extent), ST_YMin(v.extent), ST_XMax(v.extent), ST_YMax(v.extent)"
    " FROM layer l JOIN layer_version v ON v.id = l.current_version_id"
)


def layer_states(engine: Engine) -> dict[str, LayerState]:
    """The current version of every imported layer, by layer code."""
    with engine.connect() as conn:
        rows = conn.execute(_STATES_SQL).all()
    return {
        r[0]: LayerState(
            r[0],
            int(r[1]),
            int(r[2]),
            int(r[3]),
            _timestamp(r[4]),
            None if r[5] is None else (float(r[5]), float(r[6]), float(r[7]), float(r[8])),
        )
        for r in rows
    }


def county_extent(
    catalog: Catalog, states: dict[str, LayerState]
) -> tuple[tuple[float, float, float, float] | None, str | None]:
    """The county's bbox and where it came from: the township layer's extent, else all current extents."""
    townships = next((layer for layer in catalog.layers if layer.role == "township_boundary"), None)
    if townships is not None and townships.code in states and states[townships.code].extent is not None:
        return states[townships.code].extent, townships.code
    extents = [s.extent for code, s in states.items() if s.extent is not None and catalog.has_layer(code)]
    if not extents:
        return None, None
    box = (
        min(e[0] for e in extents),
        min(e[1] for e in extents),
        max(e[2] for e in extents),
        max(e[3] for e in extents),
    )
    return box, "all_layers"


# --------------------------------------------------------------------------------------------------
# GeoJSON for small layers
# --------------------------------------------------------------------------------------------------


def parse_bbox(value: str | None) -> tuple[float, float, float, float] | None:
    """``"minlon,minlat,maxlon,maxlat"`` (EPSG:4490/4326 degrees) → a tuple, ``None`` for no value.

    Raises :class:`TileRequestError` naming the bad value when it is not four finite, ordered degrees.
    """
    if value is None or not value.strip():
        return None
    parts = [p.strip() for p in value.split(",")]
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        numbers = []
    if len(numbers) != 4 or not all(math.isfinite(n) for n in numbers):
        raise TileRequestError(f"bbox {value!r} must be four numbers: minlon,minlat,maxlon,maxlat", bbox=value)
    minx, miny, maxx, maxy = numbers
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise TileRequestError(
            f"bbox {value!r} is not minlon,minlat,maxlon,maxlat in degrees (min ≤ max, lon ±180, lat ±90)",
            bbox=value,
        )
    return minx, miny, maxx, maxy


_GEOJSON_SQL = """
SELECT f.id, ST_AsGeoJSON(f.geom, :decimals, 0) AS geometry,
       (SELECT jsonb_object_agg(k, f.properties -> k) FROM unnest(CAST(:fields AS text[])) AS k
        WHERE f.properties ? k) AS properties
FROM feature f
WHERE f.version_id = :version {bbox_filter}
ORDER BY f.id
LIMIT :limit
"""
_BBOX_FILTER = "AND f.geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, {srid})"


def features_geojson(
    engine: Engine,
    catalog: Catalog,
    code: str,
    *,
    bbox: tuple[float, float, float, float] | None = None,
    limit: int = GEOJSON_DEFAULT_LIMIT,
) -> dict[str, Any]:
    """The current version of a layer as a GeoJSON FeatureCollection (lon/lat, key properties only).

    Parameters
    ----------
    engine, catalog
        Database and layer catalogue.
    code : str
        Catalogue layer code (case-insensitive).
    bbox : tuple of float, optional
        ``(minlon, minlat, maxlon, maxlat)``: only features whose bounding box meets it.
    limit : int
        At most this many features (1 … :data:`GEOJSON_MAX_LIMIT`), lowest db ids first;
        ``numberMatched`` says how many there are.

    Raises
    ------
    UnknownLayerError, NotFoundError, TileRequestError
    """
    layer = catalog.layer(code)
    if not 1 <= limit <= GEOJSON_MAX_LIMIT:
        raise TileRequestError(f"limit {limit} is outside 1–{GEOJSON_MAX_LIMIT}", limit=limit)
    srid = int(catalog.storage_srid)
    bbox_filter = _BBOX_FILTER.format(srid=srid) if bbox is not None else ""
    params: dict[str, Any] = {"limit": limit, "decimals": GEOJSON_DECIMALS, "fields": list(geojson_properties(layer))}
    if bbox is not None:
        params.update(dict(zip(("x0", "y0", "x1", "y1"), bbox, strict=True)))
    with engine.connect() as conn:
        version = conn.execute(_CURRENT_VERSION_SQL, {"code": layer.code}).one_or_none()
        if version is None:
            raise NotFoundError(f"layer {layer.code} ({layer.name_zh}) has no data: import it first", code=layer.code)
        params["version"] = int(version[0])
        matched = conn.execute(
            text(f"SELECT count(*) FROM feature f WHERE f.version_id = :version {bbox_filter}"), params
        ).scalar_one()
        rows = conn.execute(text(_GEOJSON_SQL.format(bbox_filter=bbox_filter)), params).all()
    features = [
        {
            "type": "Feature",
            "id": int(r.id),
            "geometry": json.loads(r.geometry),
            "properties": {"id": int(r.id), **{k: _json_value(v) for k, v in (r.properties or {}).items()}},
        }
        for r in rows
    ]
    return {
        "type": "FeatureCollection",
        "layer": layer.code,
        "version_id": int(version[0]),
        "numberMatched": int(matched),
        "numberReturned": len(features),
        "features": features,
    }


def _json_value(value: Any) -> Any:
    """Codes stored as big JSON integers (BSM 4102990000000001) are sent as text, like in the tiles."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
        return str(value)
    return value
