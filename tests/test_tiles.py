"""Vector tiles, small-layer GeoJSON, the map configuration and the hillshade basemap on real PostGIS."""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import shapely
from fastapi.testclient import TestClient
from pyproj import Transformer
from rasterio.io import MemoryFile
from rasterio.transform import Affine
from sqlalchemy import Engine

from api.app import create_app
from gis_platform.catalog import Catalog
from gis_platform.db import make_engine
from gis_platform.ingest.pipeline import import_file
from gis_platform.settings import Settings

from .helpers import auth_headers, write_geojson

pytestmark = pytest.mark.db

Z = 14


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """XYZ tile containing a lon/lat (the slippy-map formula, independent of the platform)."""
    n = 2**z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


def tile_lonlat(x: float, y: float, z: int) -> tuple[float, float]:
    n = 2**z
    return x / n * 360 - 180, math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / n))))


TX, TY = tile_of(114.795, 34.805, Z)
CENTRE = tile_lonlat(TX + 0.5, TY + 0.5, Z)
INSIDE = shapely.box(CENTRE[0] - 0.003, CENTRE[1] - 0.002, CENTRE[0] + 0.003, CENTRE[1] + 0.002)
OUTSIDE = shapely.box(CENTRE[0] + 0.2, CENTRE[1], CENTRE[0] + 0.206, CENTRE[1] + 0.004)  # ~9 tiles east
TOWNS = [shapely.box(114.70, 34.70, 114.80, 34.90), shapely.box(114.80, 34.70, 115.10, 34.90)]
DLTB_PROPS = [
    {"BSM": "T1", "TBBH": "1", "DLBM": "0103", "DLMC": "旱地", "KCXS": 0.1, "QSDWMC": "not in tiles"},
    {"BSM": "T2", "TBBH": "2", "DLBM": "0301", "DLMC": "乔木林地", "KCXS": 0.0, "QSDWMC": "not in tiles"},
]


# ---- a minimal Mapbox vector tile (protobuf) decoder, independent of the platform -------------------


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _messages(buf: bytes) -> Iterator[tuple[int, Any]]:
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + size], pos + size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = buf[pos : pos + size], pos + size
        else:
            raise ValueError(f"wire type {wire}")
        yield number, value


def _packed(buf: bytes) -> list[int]:
    out, pos = [], 0
    while pos < len(buf):
        value, pos = _varint(buf, pos)
        out.append(value)
    return out


def _zigzag(n: int) -> int:
    return (n >> 1) ^ -(n & 1)


def _value(buf: bytes) -> Any:
    for number, value in _messages(buf):
        decoders = {
            1: lambda v: v.decode(),
            2: lambda v: struct.unpack("<f", v)[0],
            3: lambda v: struct.unpack("<d", v)[0],
            4: lambda v: v,
            5: lambda v: v,
            6: _zigzag,
            7: bool,
        }
        return decoders[number](value)
    return None


def _rings(commands: list[int]) -> list[list[tuple[int, int]]]:
    rings: list[list[tuple[int, int]]] = []
    x = y = i = 0
    while i < len(commands):
        command, count = commands[i] & 7, commands[i] >> 3
        i += 1
        if command == 7:  # ClosePath
            rings[-1].append(rings[-1][0])
            continue
        for _ in range(count):
            x, y, i = x + _zigzag(commands[i]), y + _zigzag(commands[i + 1]), i + 2
            if command == 1:
                rings.append([(x, y)])
            else:
                rings[-1].append((x, y))
    return rings


def decode_mvt(data: bytes) -> dict[str, list[dict[str, Any]]]:
    """``{layer name: [{"id", "properties", "rings"}]}`` of a vector tile."""
    layers: dict[str, list[dict[str, Any]]] = {}
    for number, layer_buf in _messages(data):
        if number != 3:
            continue
        name, keys, values, raw = "", [], [], []
        for field, value in _messages(layer_buf):
            if field == 1:
                name = value.decode()
            elif field == 2:
                raw.append(value)
            elif field == 3:
                keys.append(value.decode())
            elif field == 4:
                values.append(_value(value))
        features = []
        for feature_buf in raw:
            parts = dict(_messages(feature_buf))
            tags = _packed(parts.get(2, b""))
            properties = {keys[tags[k]]: values[tags[k + 1]] for k in range(0, len(tags), 2)}
            features.append({"id": parts.get(1), "properties": properties, "rings": _rings(_packed(parts.get(4, b"")))})
        layers[name] = features
    return layers


# ---- fixtures -----------------------------------------------------------------------------------------


@pytest.fixture
def county(engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path) -> Engine:
    def load(code: str, geoms: list[Any], props: list[dict[str, Any]]) -> None:
        import_file(engine, catalog, settings, write_geojson(tmp_path / f"{code}.geojson", geoms, props), code)

    load(
        "XZQ", TOWNS, [{"XZQDM": "410001001", "XZQMC": "城关镇", "DCMJ": 1}, {"XZQDM": "410001002", "XZQMC": "王庄乡"}]
    )
    load("DLTB", [INSIDE, OUTSIDE], DLTB_PROPS)
    load("STBHHX", [shapely.box(114.82, 34.82, 114.84, 34.84)], [{"BSM": "ST1", "HXMC": "黄河湿地", "LHLX": "x"}])
    return engine


def make_client(settings: Settings, **overrides: Any) -> TestClient:
    engine = make_engine(settings, pool_size=1)
    try:
        headers = auth_headers(engine)
    finally:
        engine.dispose()
    return TestClient(create_app(settings.model_copy(update=overrides)), headers=headers)


@pytest.fixture
def client(settings: Settings, county: Engine) -> Iterator[TestClient]:
    with make_client(settings) as test_client:
        yield test_client


def feature_ids(client: TestClient, code: str) -> dict[str, int]:
    """feature_id_field value → db id, from the layer's GeoJSON."""
    features = client.get(f"/api/v1/layers/{code}/features.geojson").json()["features"]
    return {f["properties"]["BSM"]: f["id"] for f in features}


# ---- vector tiles -------------------------------------------------------------------------------------


def test_tile_carries_the_features_inside_with_the_map_properties_only(client: TestClient) -> None:
    response = client.get(f"/tiles/DLTB/{Z}/{TX}/{TY}.pbf")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    layers = decode_mvt(response.content)
    assert list(layers) == ["DLTB"]
    [feature] = layers["DLTB"]
    db_id = feature_ids(client, "DLTB")["T1"]
    assert feature["id"] == db_id
    assert feature["properties"] == {"id": db_id, "BSM": "T1", "DLMC": "旱地", "DLBM": "0103"}
    # the ring lies where Web Mercator puts the patch in the tile (4096 units, ±1 for snapping)
    to_mercator = Transformer.from_crs(4490, 3857, always_xy=True)
    world = 2 * math.pi * 6378137.0
    size = world / 2**Z
    x0, y1 = -world / 2 + TX * size, world / 2 - TY * size
    minx, miny = to_mercator.transform(INSIDE.bounds[0], INSIDE.bounds[1])
    maxx, maxy = to_mercator.transform(INSIDE.bounds[2], INSIDE.bounds[3])
    expected = {
        (round((mx - x0) / size * 4096), round((y1 - my) / size * 4096)) for mx in (minx, maxx) for my in (miny, maxy)
    }
    ring = feature["rings"][0]
    assert len(feature["rings"]) == 1 and ring[0] == ring[-1]
    for corner in ring:
        assert any(abs(corner[0] - ex) <= 1 and abs(corner[1] - ey) <= 1 for ex, ey in expected), corner


def test_tile_far_from_the_features_is_empty(client: TestClient) -> None:
    ox, oy = tile_of(OUTSIDE.centroid.x, OUTSIDE.centroid.y, Z)
    assert (ox, oy) != (TX, TY)
    outside = decode_mvt(client.get(f"/tiles/DLTB/{Z}/{ox}/{oy}.pbf").content)
    assert [f["properties"]["BSM"] for f in outside["DLTB"]] == ["T2"]
    assert client.get(f"/tiles/DLTB/{Z}/{TX}/{TY + 3}.pbf").status_code == 204
    assert client.get("/tiles/DLTB/11/0/0.pbf").status_code == 204
    # below the minimum zoom of the 三调 layer the tile is empty even where patches are
    x11, y11 = tile_of(*CENTRE, 11)
    assert client.get(f"/tiles/DLTB/11/{x11}/{y11}.pbf").status_code == 204


@pytest.mark.parametrize("z", [0, 1, 2, 5, 9])
def test_low_zoom_tiles_find_the_features(client: TestClient, z: int) -> None:
    """The search box is clamped at ±180° (a tile at the world's edge grown by the buffer must not wrap)."""
    x, y = tile_of(114.83, 34.83, z)
    response = client.get(f"/tiles/XZQ/{z}/{x}/{y}.pbf")
    assert response.status_code == 200
    assert sorted(f["properties"]["XZQMC"] for f in decode_mvt(response.content)["XZQ"]) == ["城关镇", "王庄乡"]


def test_etag_304_cache_and_reimport(client: TestClient, engine: Engine, catalog: Catalog, settings: Settings,
                                     tmp_path: Path) -> None:  # fmt: skip
    url = f"/tiles/DLTB/{Z}/{TX}/{TY}.pbf"
    first = client.get(url)
    etag = first.headers["etag"]
    assert etag.startswith('"') and "max-age" in first.headers["cache-control"]
    assert first.headers["content-encoding"] == "gzip"  # the test client accepts gzip
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.headers["etag"] == etag and not again.content
    assert client.get(url).content == first.content
    service = client.app.state.tile_service  # type: ignore[attr-defined]
    assert service.cache.hits >= 1
    other = client.get(f"/tiles/DLTB/{Z}/{TX + 1}/{TY}.pbf").headers["etag"]
    assert other != etag

    import_file(engine, catalog, settings, write_geojson(tmp_path / "again.geojson", [INSIDE], DLTB_PROPS[:1]), "DLTB")
    after = client.get(url, headers={"If-None-Match": etag})
    assert after.status_code == 200 and after.headers["etag"] != etag
    [feature] = decode_mvt(after.content)["DLTB"]
    assert feature["id"] != decode_mvt(first.content)["DLTB"][0]["id"]  # the new version's feature


def test_current_version_is_remembered_for_the_ttl_only(
    engine: Engine, catalog: Catalog, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gis_platform import tiles

    import_file(engine, catalog, settings, write_geojson(tmp_path / "a.geojson", [INSIDE], DLTB_PROPS[:1]), "DLTB")
    service = tiles.TileService(engine, catalog, 16, version_ttl_s=30.0)
    clock = [1000.0]
    monkeypatch.setattr(tiles.time, "monotonic", lambda: clock[0])
    before = service.locate("DLTB", Z, TX, TY)
    import_file(engine, catalog, settings, write_geojson(tmp_path / "b.geojson", [INSIDE], DLTB_PROPS[:1]), "DLTB")
    clock[0] += 29.0
    assert service.locate("DLTB", Z, TX, TY).version_id == before.version_id  # within the TTL: remembered
    clock[0] += 2.0
    after = service.locate("DLTB", Z, TX, TY)
    assert after.version_id != before.version_id and after.etag != before.etag


@pytest.mark.parametrize(
    ("url", "status", "error"),
    [
        ("/tiles/DLTB/21/0/0.pbf", 400, "invalid_tile_request"),
        ("/tiles/DLTB/-1/0/0.pbf", 400, "invalid_tile_request"),
        ("/tiles/DLTB/3/8/0.pbf", 400, "invalid_tile_request"),
        ("/tiles/DLTB/3/0/-1.pbf", 400, "invalid_tile_request"),
        ("/tiles/NOPE/3/0/0.pbf", 404, "unknown_layer"),
        ("/tiles/YJJBNT/3/0/0.pbf", 404, "not_found"),  # a catalogue layer never imported
        ("/tiles/hillshade/3/0/0.png", 404, "not_found"),  # no DEM configured
    ],
)
def test_bad_tile_requests_are_4xx_json(client: TestClient, url: str, status: int, error: str) -> None:
    response = client.get(url)
    assert response.status_code == status
    assert response.json()["error"] == error


def test_non_integer_tile_address_is_422_json(client: TestClient) -> None:
    response = client.get("/tiles/DLTB/a/0/0.pbf")
    assert response.status_code == 422 and response.json()["detail"]


# ---- GeoJSON of small layers --------------------------------------------------------------------------


def test_features_geojson_key_properties_bbox_and_limit(client: TestClient) -> None:
    body = client.get("/api/v1/layers/xzq/features.geojson").json()
    assert body["type"] == "FeatureCollection" and body["layer"] == "XZQ"
    assert body["numberMatched"] == 2 and body["numberReturned"] == 2
    first = body["features"][0]
    assert set(first["properties"]) == {"id", "XZQDM", "XZQMC"}  # DCMJ is not a key field
    assert shapely.geometry.shape(first["geometry"]).equals_exact(TOWNS[0], 1e-7)
    assert "crs" not in first["geometry"]  # RFC 7946: lon/lat, no crs member
    in_box = client.get("/api/v1/layers/XZQ/features.geojson", params={"bbox": "114.95,34.75,115.0,34.8"}).json()
    assert [f["properties"]["XZQMC"] for f in in_box["features"]] == ["王庄乡"]
    limited = client.get("/api/v1/layers/XZQ/features.geojson", params={"limit": 1}).json()
    assert limited["numberMatched"] == 2 and limited["numberReturned"] == 1


@pytest.mark.parametrize("bbox", ["1,2,3", "a,b,c,d", "115,34,114,35", "0,0,200,10"])
def test_bad_bbox_is_400(client: TestClient, bbox: str) -> None:
    response = client.get("/api/v1/layers/XZQ/features.geojson", params={"bbox": bbox})
    assert response.status_code == 400 and bbox in response.json()["message"]


def test_features_geojson_unknown_layer_is_404(client: TestClient) -> None:
    assert client.get("/api/v1/layers/NOPE/features.geojson").json()["error"] == "unknown_layer"


# ---- map configuration --------------------------------------------------------------------------------


def test_map_config_layer_tree_styles_and_county(client: TestClient, catalog: Catalog) -> None:
    config = client.get("/api/v1/map-config").json()
    assert [g["name_zh"] for g in config["groups"]] == ["现状", "规划", "管理"]
    layers = {layer["code"]: layer for g in config["groups"] for layer in g["layers"]}
    assert list(layers) == [layer.code for layer in catalog.layers]
    assert config["county"]["bbox"] == pytest.approx([114.70, 34.70, 115.10, 34.90])
    assert config["county"]["bbox_source"] == "XZQ"
    assert config["county"]["center"] == pytest.approx([114.90, 34.80])
    assert config["crs"] == {
        "storage_epsg": 4490, "tile_epsg": 3857, "geojson_epsg": 4490,
        "gk_zone": 38, "gk_central_meridian": 114, "gk_epsg_prefixed": 4526, "gk_epsg": 4547,
        "survey_plane": {
            "epsg": 4547, "noise_width_m": 1e-06, "label": "EPSG:4547 (CGCS2000 3° Gauss-Krüger, CM 114°E)",
        },
    }  # fmt: skip
    dltb = layers["DLTB"]
    assert dltb["served_as"] == "mvt" and dltb["tile_url"] == "/tiles/DLTB/{z}/{x}/{y}.pbf"
    assert dltb["properties"] == ["id", "BSM", "DLMC", "DLBM"] and dltb["min_zoom"] == 12
    assert dltb["current_version"]["feature_count"] == 2 and dltb["feature_count"] == 2
    assert dltb["style"]["categorized"]["field"] == "DLBM" and dltb["style"]["categorized"]["match"] == "prefix"
    cultivated = next(e for e in dltb["legend"] if e["label_zh"] == "耕地")
    assert cultivated["values"] == ["01"] and cultivated["fill"] == "#F5F8DC" and cultivated["stroke"] == "#9C9C9C"
    xzq = layers["XZQ"]
    assert xzq["served_as"] == "geojson" and xzq["geojson_url"] == "/api/v1/layers/XZQ/features.geojson"
    assert xzq["legend"] == [{**{k: xzq["style"][k] for k in xzq["style"] if k != "categorized"},
                              "label_zh": "乡镇行政区", "label_en": xzq["name_en"], "values": []}]  # fmt: skip
    assert layers["YJJBNT"]["current_version"] is None and layers["YJJBNT"]["served_as"] == "mvt"
    assert layers["DZZHD"]["geometry_type"] == "point" and layers["DZZHD"]["served_as"] == "geojson"
    assert config["basemap"] is None and config["hillshade"] == {"enabled": False, "url": None, "maxzoom": None}
    land_uses = {use["code"]: use for use in config["land_uses"]}
    assert land_uses["0701"]["name_zh"] == "城镇住宅用地" and land_uses["1202"]["linear_infrastructure"] is True
    assert config["udb_expansion_limit"] == 1.3


def test_map_config_without_townships_uses_all_extents(settings: Settings, engine: Engine, catalog: Catalog,
                                                       tmp_path: Path) -> None:  # fmt: skip
    import_file(engine, catalog, settings, write_geojson(tmp_path / "s.geojson", [TOWNS[0]], [{"BSM": "1"}]), "STBHHX")
    with make_client(settings, basemap_url="https://t{s}.example/{z}/{x}/{y}.png", basemap_attribution="©") as c:
        config = c.get("/api/v1/map-config").json()
    assert config["county"]["bbox_source"] == "all_layers"
    assert config["county"]["bbox"] == pytest.approx(list(TOWNS[0].bounds))
    assert config["basemap"] == {"url": "https://t{s}.example/{z}/{x}/{y}.png", "attribution": "©"}


# ---- hillshade ----------------------------------------------------------------------------------------


def write_dem(path: Path) -> Path:
    """A 0.4° × 0.4° DEM in EPSG:4490 with one hill at 114.8°E 34.8°N, a nodata strip along the top."""
    lon, lat = np.meshgrid(np.arange(800) * 0.0005 + 114.60025, 35.0 - np.arange(800) * 0.0005 - 0.00025)
    height = 100 + 600 * np.exp(-((lon - 114.8) ** 2 + (lat - 34.8) ** 2) / 0.004)
    height[:20, :] = -9999
    profile = {"driver": "GTiff", "width": 800, "height": 800, "count": 1, "dtype": "float32", "crs": "EPSG:4490",
               "transform": Affine(0.0005, 0, 114.6, 0, -0.0005, 35.0), "nodata": -9999}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(height.astype("float32"), 1)
    return path


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # reading the PNGs back
def test_hillshade_tiles_from_the_dem(settings: Settings, county: Engine, tmp_path: Path) -> None:
    dem = write_dem(tmp_path / "dem.tif")
    with make_client(settings, dem_path=dem) as c:
        hillshade = c.get("/api/v1/map-config").json()["hillshade"]
        # 0.0005° cells (~46 m × 56 m): native around z12, served up to one zoom finer
        assert hillshade == {"enabled": True, "url": "/tiles/hillshade/{z}/{x}/{y}.png", "maxzoom": 13}
        x, y = tile_of(114.76, 34.84, 12)  # on the hill's north-west (sunny) slope
        response = c.get(f"/tiles/hillshade/12/{x}/{y}.png")
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"
        assert (
            c.get(f"/tiles/hillshade/12/{x}/{y}.png", headers={"If-None-Match": response.headers["etag"]}).status_code
            == 304
        )
        with MemoryFile(response.content) as memory, memory.open() as png:
            grey, alpha = png.read(1), png.read(2)
        assert grey.shape == (256, 256) and alpha.min() == 255
        xs, ys = tile_of(114.84, 34.76, 12)  # south-east slope, in shade
        with MemoryFile(c.get(f"/tiles/hillshade/12/{xs}/{ys}.png").content) as memory, memory.open() as png:
            assert png.read(1).mean() < grey.mean() - 10
        assert c.get("/tiles/hillshade/12/0/0.png").status_code == 204  # far outside the DEM
        xn, yn = tile_of(114.76, 34.995, 12)  # the nodata strip is transparent
        with MemoryFile(c.get(f"/tiles/hillshade/12/{xn}/{yn}.png").content) as memory, memory.open() as png:
            assert png.read(2).min() == 0
