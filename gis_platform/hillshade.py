"""Offline hillshade basemap: 256-px XYZ tiles (EPSG:3857) shaded from the county DEM (``settings.dem_path``).

For each tile the DEM is warped with rasterio to the tile's Web-Mercator grid (plus a one-pixel border
for the slope stencil; ``average`` resampling where the tile is coarser than the DEM, ``bilinear``
otherwise), shaded with the usual Horn-style slope/aspect formula (sun azimuth 315°, altitude 45°,
ground distances corrected by cos(latitude) for Mercator's scale) and written as a grey+alpha PNG
(DEM nodata and area outside the DEM transparent). Tiles are cached in an LRU; the ETag hashes the DEM
file's size and modification time, so replacing the DEM changes every ETag.
"""

from __future__ import annotations

import functools
import hashlib
import math
import struct
import zlib
from pathlib import Path
from typing import Final

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.transform import Affine
from rasterio.warp import reproject, transform_bounds

from .errors import NotFoundError
from .tiles import TileCache, validate_tile

__all__ = ["HillshadeService", "encode_png_grey_alpha", "hillshade", "native_max_zoom", "tile_bounds_3857"]

TILE_SIZE: Final[int] = 256
WEB_MERCATOR_HALF: Final[float] = math.pi * 6378137.0
CACHE_MAX_BYTES: Final[int] = 64 * 1024 * 1024
SUN_AZIMUTH_DEG: Final[float] = 315.0
SUN_ALTITUDE_DEG: Final[float] = 45.0
_MERCATOR = CRS.from_epsg(3857)


def tile_bounds_3857(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """``(minx, miny, maxx, maxy)`` of XYZ tile ``z/x/y`` in EPSG:3857 metres."""
    size = 2 * WEB_MERCATOR_HALF / 2**z
    minx = -WEB_MERCATOR_HALF + x * size
    maxy = WEB_MERCATOR_HALF - y * size
    return minx, maxy - size, minx + size, maxy


def hillshade(elevation: np.ndarray, dx_m: float, dy_m: float, *, z_factor: float = 1.0) -> np.ndarray:
    """Shade an elevation grid with a one-cell border; returns the interior, 0 (dark) … 255 (lit), float.

    Parameters
    ----------
    elevation : ndarray (rows + 2, cols + 2)
        Heights in metres, north up; NaN where unknown.
    dx_m, dy_m : float
        Ground size of one cell east-west and north-south, in metres.
    """
    e = elevation * z_factor
    # Horn's 3×3 gradient
    dzdx = ((e[:-2, 2:] + 2 * e[1:-1, 2:] + e[2:, 2:]) - (e[:-2, :-2] + 2 * e[1:-1, :-2] + e[2:, :-2])) / (8 * dx_m)
    dzdy = ((e[2:, :-2] + 2 * e[2:, 1:-1] + e[2:, 2:]) - (e[:-2, :-2] + 2 * e[:-2, 1:-1] + e[:-2, 2:])) / (8 * dy_m)
    slope = np.arctan(np.hypot(dzdx, dzdy))
    aspect = np.arctan2(dzdy, -dzdx)
    zenith = math.radians(90.0 - SUN_ALTITUDE_DEG)
    azimuth = math.radians((360.0 - SUN_AZIMUTH_DEG + 90.0) % 360.0)
    shade = np.cos(zenith) * np.cos(slope) + np.sin(zenith) * np.sin(slope) * np.cos(azimuth - aspect)
    return np.clip(shade, 0.0, 1.0) * 255.0


def encode_png_grey_alpha(grey: np.ndarray, alpha: np.ndarray) -> bytes:
    """A minimal 8-bit grey+alpha PNG (colour type 4) from two uint8 arrays of the same shape."""
    height, width = grey.shape
    pixels = np.empty((height, width * 2 + 1), dtype=np.uint8)
    pixels[:, 0] = 0  # filter type None on every row
    pixels[:, 1::2] = grey
    pixels[:, 2::2] = alpha

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 4, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(pixels.tobytes(), 6))
        + chunk(b"IEND", b"")
    )


def native_max_zoom(dem_path: Path) -> int:
    """The zoom whose 256-px tiles are about twice as fine as the DEM cells: beyond it, tiles are oversampled."""
    stat = dem_path.stat()
    return _native_max_zoom(str(dem_path.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _native_max_zoom(path: str, _size: int, _mtime_ns: int) -> int:
    with rasterio.open(path) as dem:
        _, south, _, north = transform_bounds(dem.crs, "EPSG:4326", *dem.bounds)
        lat = (south + north) / 2
        cell = _cell_metres(dem.res, dem.crs.is_geographic, lat)
    ground_world = 2 * WEB_MERCATOR_HALF * math.cos(math.radians(lat))
    return max(0, min(20, math.ceil(math.log2(ground_world / (TILE_SIZE * cell))) + 1))


class HillshadeService:
    """Hillshade tiles of one DEM file, cached.

    Parameters
    ----------
    dem_path : Path or None
        The DEM GeoTIFF (any CRS GDAL knows; heights in metres). ``None`` or a missing file: every
        request raises :class:`NotFoundError`.
    cache_entries : int
        LRU size.
    """

    def __init__(self, dem_path: Path | None, cache_entries: int) -> None:
        self.dem_path = dem_path
        self.cache: TileCache[tuple[str, int, int, int], bytes] = TileCache(
            cache_entries, max_bytes=CACHE_MAX_BYTES, weigh=len
        )

    @property
    def available(self) -> bool:
        return self.dem_path is not None and self.dem_path.is_file()

    def _identity(self) -> str:
        if self.dem_path is None or not self.dem_path.is_file():
            raise NotFoundError("no DEM is configured for the hillshade basemap (set GIS_DEM_PATH to a GeoTIFF)")
        stat = self.dem_path.stat()
        return f"{self.dem_path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}"

    def etag(self, z: int, x: int, y: int) -> str:
        validate_tile(z, x, y)
        digest = hashlib.sha256(f"{self._identity()}\0{z}/{x}/{y}".encode()).hexdigest()[:32]
        return f'"{digest}"'

    def tile(self, z: int, x: int, y: int) -> bytes:
        """The PNG of tile ``z/x/y``; empty bytes where the tile does not meet the DEM."""
        validate_tile(z, x, y)
        key = (self._identity(), z, x, y)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        png = self._render(z, x, y)
        self.cache.put(key, png)
        return png

    def _render(self, z: int, x: int, y: int) -> bytes:
        assert self.dem_path is not None
        minx, miny, maxx, maxy = tile_bounds_3857(z, x, y)
        cell = (maxx - minx) / TILE_SIZE
        size = TILE_SIZE + 2  # one-cell border for the 3×3 stencil
        transform = Affine(cell, 0.0, minx - cell, 0.0, -cell, maxy + cell)  # north-up, one-cell border
        elevation = np.full((size, size), np.nan, dtype=np.float32)
        with rasterio.open(self.dem_path) as dem:  # one GDAL handle per call: never shared across threads
            west, south, east, north = transform_bounds(_MERCATOR, dem.crs, minx, miny, maxx, maxy)
            b = dem.bounds
            if east < b.left or west > b.right or north < b.bottom or south > b.top:
                return b""
            dem_cell_m = _cell_metres(dem.res, dem.crs.is_geographic, (south + north) / 2)
            lat = math.degrees(math.atan(math.sinh((miny + maxy) / 2 / 6378137.0)))
            ground_cell = cell * math.cos(math.radians(lat))
            resampling = Resampling.average if ground_cell > 1.5 * dem_cell_m else Resampling.bilinear
            reproject(
                source=rasterio.band(dem, 1),
                destination=elevation,
                dst_transform=transform,
                dst_crs=_MERCATOR,
                src_nodata=dem.nodata,
                dst_nodata=np.nan,
                resampling=resampling,
            )
        if np.isnan(elevation[1:-1, 1:-1]).all():
            return b""
        shade = hillshade(elevation.astype(np.float64), ground_cell, ground_cell)
        known = ~np.isnan(shade)
        grey = np.where(known, shade, 0).astype(np.uint8)
        alpha = np.where(known, 255, 0).astype(np.uint8)
        return encode_png_grey_alpha(grey, alpha)


def _cell_metres(res: tuple[float, float], geographic: bool, lat: float) -> float:
    if not geographic:
        return float(min(res))
    return float(min(res[0] * 111_320.0 * math.cos(math.radians(lat)), res[1] * 110_574.0))
