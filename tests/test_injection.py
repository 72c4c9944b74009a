"""Bad input over HTTP: malformed GeoJSON and WKT, NaN and infinite coordinates, empty and huge geometries, wrong
CRS, and SQL-injection strings in every kind of parameter (path, query, JSON, form, headers).

Every answer is a 4xx with a JSON body naming the problem (or, for a harmless string, a normal answer that stores
it literally), never a 5xx, and the database is unchanged.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from gis_platform.catalog import Catalog
from gis_platform.settings import Settings

from .helpers import auth_headers
from .test_fuzz import _county
from .test_limits import db_counts

pytestmark = pytest.mark.db

SQUARE = [[[114.785, 34.803], [114.789, 34.803], [114.789, 34.807], [114.785, 34.807], [114.785, 34.803]]]
PARCEL = {"type": "Polygon", "coordinates": SQUARE}

INJECTIONS = [
    "' OR '1'='1",
    "1; DROP TABLE check_record; --",
    "'); DELETE FROM layer; --",
    '" OR ""="',
    "1' UNION SELECT password_hash, NULL FROM app_user --",
    "%' OR 1=1 --",
    "$$; TRUNCATE feature CASCADE; $$",
    "' || (SELECT pg_sleep(3)) || '",
    "EPSG:4490'; DROP TABLE layer_version; --",
    "YJJBNT' OR 'x'='x",
    "\\'; DROP TABLE job; --",
    "ab\x00c' --",
]


@pytest.fixture
def client(settings: Settings, engine: Engine, catalog: Catalog, tmp_path: Path) -> Iterator[TestClient]:
    _county(engine, catalog, settings, tmp_path)
    unlimited = settings.model_copy(update={"rate_limit_user_per_minute": 0, "login_attempts_per_minute": 10_000})
    with TestClient(create_app(unlimited), headers=auth_headers(engine)) as test_client:
        yield test_client


def counts(engine: Engine) -> dict[str, int]:
    """:func:`db_counts`, with only the checks made outside jobs: a queued batch job stores its own as it runs."""
    found = db_counts(engine)
    with engine.connect() as conn:
        outside_jobs = text("SELECT count(*) FROM check_record WHERE job_id IS NULL")
        found["check_record"] = int(conn.execute(outside_jobs).scalar_one())
    return found


def refused(response: Any, *words: str) -> dict[str, Any]:
    """A 4xx with a JSON body that names the problem (``message``, or FastAPI's validation ``detail``)."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body: dict[str, Any] = response.json()
    said = json.dumps(body, ensure_ascii=False)
    assert body.get("message") or body.get("detail"), body
    for word in words:
        assert word in said, (word, body)
    return body


def no_server_error(response: Any) -> None:
    assert response.status_code < 500, (response.request.method, response.request.url, response.text[:500])
    if response.status_code >= 400:
        refused(response)


# ---------------------------------------------------------------------------------------------------------------
# Malformed GeoJSON and WKT, NaN and infinity, empty and huge geometries, wrong CRS
# ---------------------------------------------------------------------------------------------------------------

BAD_GEOMETRIES: dict[str, tuple[Any, str]] = {
    "not an object": ([1, 2, 3], "geometry"),
    "string": ("POLYGON((114.8 34.8, 114.81 34.8, 114.81 34.81, 114.8 34.8))", "geometry"),
    "no type": ({"coordinates": SQUARE}, "'type'"),
    "unknown type": ({"type": "Polygonn", "coordinates": SQUARE}, "cannot be checked"),
    "point": ({"type": "Point", "coordinates": [114.8, 34.8]}, "cannot be checked"),
    "line": ({"type": "LineString", "coordinates": SQUARE[0]}, "cannot be checked"),
    "collection": ({"type": "GeometryCollection", "geometries": [PARCEL]}, "cannot be checked"),
    "string coordinates": ({"type": "Polygon", "coordinates": "114.8,34.8"}, "not a number"),
    "text in a position": ({"type": "Polygon", "coordinates": [[["114.8", "34.8"]]]}, "not a number"),
    "null in a position": ({"type": "Polygon", "coordinates": [[[114.8, None], [1, 2], [3, 4], [114.8, None]]]}, ""),
    "booleans": ({"type": "Polygon", "coordinates": [[[True, False], [1, 2], [3, 4], [True, False]]]}, "not a number"),
    "one number": ({"type": "Polygon", "coordinates": [[[114.8], [114.81], [114.82], [114.8]]]}, "two numbers"),
    "unclosed ring": ({"type": "Polygon", "coordinates": [SQUARE[0][:-1]]}, "malformed"),
    "two points": ({"type": "Polygon", "coordinates": [SQUARE[0][:2]]}, "malformed"),
    "too deep": ({"type": "Polygon", "coordinates": [SQUARE]}, ""),
    "flat": ({"type": "Polygon", "coordinates": [114.8, 34.8, 114.81, 34.8]}, ""),
    "empty": ({"type": "Polygon", "coordinates": []}, "empty"),
    "empty ring": ({"type": "Polygon", "coordinates": [[]]}, ""),
    "empty multipolygon": ({"type": "MultiPolygon", "coordinates": []}, "empty"),
    "feature without geometry": ({"type": "Feature", "properties": {}, "geometry": None}, "no geometry"),
    "empty collection": ({"type": "FeatureCollection", "features": []}, "no features"),
    "collection of junk": ({"type": "FeatureCollection", "features": [1, "x"]}, "not a GeoJSON Feature"),
    "zero area": ({"type": "Polygon", "coordinates": [[[114.8, 34.8], [114.81, 34.8], [114.8, 34.8]]]}, ""),
    "huge coordinates": (
        {"type": "Polygon", "coordinates": [[[1e300, 1e300], [2e300, 1e300], [2e300, 2e300], [1e300, 1e300]]]},
        "",
    ),
    "outside the earth": ({"type": "Polygon", "coordinates": [[[500, 100], [501, 100], [501, 101], [500, 100]]]}, ""),
    "outside the county": (
        {"type": "Polygon", "coordinates": [[[100, 20], [100.01, 20], [100.01, 20.01], [100, 20]]]},
        "outside",
    ),
    "whole world": (
        {"type": "Polygon", "coordinates": [[[-180, -90], [180, -90], [180, 90], [-180, 90], [-180, -90]]]},
        "",
    ),
}


@pytest.mark.parametrize("case", list(BAD_GEOMETRIES))
def test_malformed_geojson_is_refused_by_name(client: TestClient, engine: Engine, case: str) -> None:
    geometry, words = BAD_GEOMETRIES[case]
    before = counts(engine)
    response = client.post("/api/v1/checks", json={"geometry": geometry})
    refused(response, *([words] if words else []))
    feature = {"type": "Feature", "properties": {}, "geometry": geometry}
    batch = client.post("/api/v1/checks/batch", json={"parcels": {"type": "FeatureCollection", "features": [feature]}})
    no_server_error(batch)  # a batch takes each parcel's problem into its results; the request itself is fine
    upload = client.post(
        "/api/v1/checks/upload",
        files={"file": ("p.geojson", json.dumps({"type": "FeatureCollection", "features": [feature]}).encode())},
    )
    no_server_error(upload)  # GDAL closes an unclosed ring a file holds; anything else is refused
    checks = upload.json()["count"] if upload.status_code == 201 else 0
    assert case == "unclosed ring" or checks == 0, upload.text
    after = counts(engine)
    jobs = 1 if batch.status_code == 202 else 0
    assert after == {**before, "job": before["job"] + jobs, "check_record": before["check_record"] + checks}


NON_FINITE_BODY = '{"geometry": {"type": "Polygon", "coordinates": [[[X, 34.8], [114.81, 34.8], [1, 2], [X, 34.8]]]}}'
RAW_BODIES: dict[str, str | bytes] = {
    **{name: NON_FINITE_BODY.replace("X", name) for name in ("NaN", "Infinity", "-Infinity", "1e999")},
    "truncated": '{"geometry": {"type": "Polygon", "coordinates": [[[114.8, 34.8], [114.81',
    "not json": "POLYGON((114.8 34.8, 114.81 34.8, 114.81 34.81, 114.8 34.8))",
    "empty": "",
    "null": "null",
    "deep nesting": '{"geometry": {"type": "Polygon", "coordinates": ' + "[" * 5000 + "]" * 5000 + "}}",
    "duplicate keys": '{"geometry": {"type": "Polygon", "type": "Point", "coordinates": [114.8, 34.8]}}',
    "bad utf-8": b'{"geometry": {"type": "Polygon\xff\xfe"}}',
    "huge number": '{"geometry": {"type": "Polygon", "coordinates": [[[' + "9" * 5000 + ", 34.8]]]}}",
}


@pytest.mark.parametrize("case", list(RAW_BODIES))
def test_malformed_json_nan_and_infinity_are_refused(client: TestClient, engine: Engine, case: str) -> None:
    before = counts(engine)
    raw = RAW_BODIES[case]
    content = raw if isinstance(raw, bytes) else raw.encode()
    for url in ("/api/v1/checks", "/api/v1/checks/batch"):
        body = content.replace(b'"geometry"', b'"parcels"') if url.endswith("batch") else content
        response = client.post(url, content=body, headers={"content-type": "application/json"})
        said = refused(response)
        if case in ("NaN", "Infinity", "-Infinity", "1e999") and url == "/api/v1/checks":
            assert "non-finite" in json.dumps(said) or "finite" in json.dumps(said) or "detail" in said, said
    assert counts(engine) == before


WRONG_CRS = {
    "degrees as Gauss-Krüger": ({"geometry": PARCEL, "crs": "EPSG:4526"}, "crs_error"),
    "metres as degrees": (
        {"geometry": json.loads(shapely.to_geojson(shapely.box(500_000, 3_850_000, 500_100, 3_850_100)))},
        "crs_error",
    ),
    "wrong zone": (
        {
            "geometry": json.loads(shapely.to_geojson(shapely.box(39_500_000, 3_850_000, 39_500_100, 3_850_100))),
            "crs": "EPSG:4526",
        },
        "crs_error",
    ),
    "unknown code": ({"geometry": PARCEL, "crs": "EPSG:999999"}, "crs_error"),
    "garbage": ({"geometry": PARCEL, "crs": "not a crs"}, "crs_error"),
    "garbage WKT": ({"geometry": PARCEL, "crs": 'GEOGCS["x",DATUM["y"'}, "crs_error"),
    "PROJ string": ({"geometry": PARCEL, "crs": "+proj=nonsense +no_defs"}, "crs_error"),
    "web mercator": ({"geometry": PARCEL, "crs": "EPSG:3857"}, ""),
    "crs in the GeoJSON": ({"geometry": {**PARCEL, "crs": {"type": "name", "properties": {"name": "EPSG:4526"}}}}, ""),
}


@pytest.mark.parametrize("case", list(WRONG_CRS))
def test_wrong_crs_is_refused_by_name(client: TestClient, engine: Engine, case: str) -> None:
    body, error = WRONG_CRS[case]
    before = counts(engine)
    response = client.post("/api/v1/checks", json=body)
    if case == "crs in the GeoJSON":  # a foreign member of GeoJSON is ignored: the request's crs decides
        assert response.status_code == 201, response.text
        return
    said = refused(response)
    if error:
        assert said["error"] == error, said
    assert counts(engine) == before


def test_wkt_crs_of_cgcs2000_is_understood(client: TestClient) -> None:
    import pyproj

    response = client.post("/api/v1/checks", json={"geometry": PARCEL, "crs": pyproj.CRS.from_epsg(4490).to_wkt()})
    assert response.status_code == 201, response.text


WKT_FILES = {
    "p.txt": b"POLYGON((114.8 34.8, 114.81 34.8, 114.81 34.81, 114.8 34.8))",
    "p.geojson": b"POLYGON((114.8 34.8, 114.81 34.8, 114.81 34.81, 114.8 34.8))",
    "p.json": b'{"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": {"type": "Polygon", '
    b'"coordinates": [[[NaN',
    "p.gpkg": b"SQLite format 3\x00" + b"\x00" * 200,
    "p.dxf": b"0\nSECTION\n2\nENTITIES\n0\nLWPOLYLINE\n",
    "p.shp": b"\x00\x00\x27\x0a" + b"\x00" * 96,
    "p.exe": b"MZ\x90\x00",
    "": b"{}",
}


@pytest.mark.parametrize("name", list(WKT_FILES))
def test_malformed_files_are_refused_by_name(client: TestClient, engine: Engine, name: str) -> None:
    before = counts(engine)
    for url in ("/api/v1/checks/upload", "/api/v1/checks/batch", "/api/v1/layers/YJJBNT/versions"):
        response = client.post(url, files={"file": (name, WKT_FILES[name])})
        refused(response)
    assert counts(engine) == before


def test_huge_geometry_within_the_body_limit_is_refused_by_vertex_count(client: TestClient, engine: Engine) -> None:
    ring = [[114.8 + 0.001 * (i % 2), 34.8 + 1e-6 * i] for i in range(25_000)]
    ring.append(ring[0])
    before = counts(engine)
    response = client.post("/api/v1/checks", json={"geometry": {"type": "Polygon", "coordinates": [ring]}})
    refused(response, "vertices", "more than the limit of 20000")
    assert counts(engine) == before


# ---------------------------------------------------------------------------------------------------------------
# SQL injection in every kind of parameter
# ---------------------------------------------------------------------------------------------------------------


def _injected_requests(value: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, url, httpx keyword arguments) with ``value`` in a path, query, JSON, form or header parameter."""
    q = quote(value, safe="")
    return [
        # path parameters
        ("GET", f"/api/v1/checks/{q}", {}),
        ("GET", f"/api/v1/checks/{q}/report.html", {}),
        ("GET", f"/api/v1/jobs/{q}", {}),
        ("GET", f"/api/v1/conflicts/{q}", {}),
        ("GET", f"/api/v1/conflicts/{q}/features.geojson", {}),
        ("GET", f"/api/v1/layers/{q}/versions", {}),
        ("GET", f"/api/v1/layers/{q}/features.geojson", {}),
        ("GET", f"/tiles/{q}/10/850/400.pbf", {}),
        ("PATCH", f"/api/v1/users/{q}", {"json": {"display_name": "x"}}),
        ("DELETE", f"/api/v1/api-keys/{q}", {}),
        # query parameters
        ("GET", "/api/v1/checks", {"params": {"project_number": value}}),
        ("GET", "/api/v1/checks", {"params": {"verdict": value}}),
        ("GET", "/api/v1/checks", {"params": {"bbox": value}}),
        ("GET", "/api/v1/checks", {"params": {"job_id": value}}),
        ("GET", "/api/v1/checks", {"params": {"date_from": value}}),
        ("GET", "/api/v1/search", {"params": {"q": value}}),
        ("GET", "/api/v1/identify", {"params": {"lon": 114.8, "lat": 34.8, "layers": value}}),
        ("GET", "/api/v1/identify", {"params": {"lon": value, "lat": 34.8}}),
        ("GET", "/api/v1/audit", {"params": {"actor": value, "action": value}}),
        ("GET", "/api/v1/audit/export.csv", {"params": {"actor": value}}),
        ("GET", "/api/v1/layers/XZQ/features.geojson", {"params": {"bbox": value}}),
        # JSON fields
        ("POST", "/api/v1/checks", {"json": {"geometry": PARCEL, "project_name": value, "project_number": value}}),
        ("POST", "/api/v1/checks", {"json": {"geometry": PARCEL, "land_use": value[:12]}}),
        ("POST", "/api/v1/checks", {"json": {"geometry": PARCEL, "layers": [value]}}),
        ("POST", "/api/v1/checks", {"json": {"geometry": PARCEL, "crs": value}}),
        ("POST", "/api/v1/checks", {"json": {"geometry": {"type": value, "coordinates": SQUARE}}}),
        (
            "POST",
            "/api/v1/checks/batch",
            {"json": {"parcels": _collection(), "label_field": value, "land_use_field": value}},
        ),
        ("POST", "/api/v1/conflicts", {"json": {"plan_layer": value}}),
        ("POST", "/api/v1/auth/login", {"json": {"username": value, "password": value}}),
        ("POST", "/api/v1/users", {"json": {"username": value, "password": value, "role": "viewer"}}),
        ("POST", "/api/v1/api-keys", {"json": {"name": "k", "scopes": [value]}}),
        # form fields
        ("POST", "/api/v1/auth/token", {"data": {"username": value, "password": value}}),
        ("POST", "/api/v1/checks/upload", {"data": {"land_use": value, "crs": value}, "files": _file()}),
        ("POST", "/api/v1/checks/batch", {"data": {"layers": value, "crs": value}, "files": _file()}),
        ("POST", "/api/v1/layers/YJJBNT/versions", {"data": {"crs": value, "source_layer": value}, "files": _file()}),
    ]


def _collection() -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": {"DKBH": "A"}, "geometry": PARCEL}],
    }


def _file() -> dict[str, Any]:
    return {"file": ("p.geojson", json.dumps(_collection()).encode(), "application/geo+json")}


def _header_requests(value: str) -> list[dict[str, str]]:
    safe = value.replace("\x00", "")  # headers cannot carry NUL at all
    return [
        {"X-API-Key": safe},
        {"Authorization": f"Bearer {safe}"},
        {"Authorization": safe},
        {"Cookie": f"gis_session={quote(safe)}"},
        {"X-Request-ID": safe},
        {"If-None-Match": safe},
    ]


@pytest.mark.parametrize("value", INJECTIONS, ids=range(len(INJECTIONS)))
def test_sql_injection_in_every_parameter_changes_nothing(client: TestClient, engine: Engine, value: str) -> None:
    before = counts(engine)
    created: dict[str, int] = {"check_record": 0, "job": 0}
    for method, url, kwargs in _injected_requests(value):
        started = time.monotonic()
        response = client.request(method, url, **kwargs)
        assert time.monotonic() - started < 2.5, f"{method} {url} took as long as an injected pg_sleep"
        no_server_error(response)
        if response.status_code == 201 and url.startswith("/api/v1/checks"):
            stored = response.json()
            created["check_record"] += stored.get("count", 1)
            if "project_name" in kwargs.get("json", {}):
                assert stored["project"]["name"] == value and stored["project"]["number"] == value
        elif response.status_code == 202:
            created["job"] += 1
        else:
            assert response.status_code in (200, 204, 304, 400, 401, 403, 404, 409, 413, 422), (url, response.text)
    for headers in _header_requests(value):
        response = client.get("/api/v1/checks", headers=headers)
        no_server_error(response)
    after = counts(engine)
    assert after == {k: v + created.get(k, 0) for k, v in before.items()}, (before, after, created)
    with engine.connect() as conn:  # the county is intact
        assert conn.execute(text("SELECT count(*) FROM layer WHERE current_version_id IS NOT NULL")).scalar_one() == 6


def test_injected_api_key_and_token_are_just_wrong_credentials(settings: Settings, engine: Engine) -> None:
    with TestClient(create_app(settings)) as anonymous:
        for value in INJECTIONS:
            safe = value.replace("\x00", "")
            for headers in ({"X-API-Key": safe}, {"Authorization": f"Bearer {safe}"}, {"X-API-Key": "gis_" + safe}):
                response = anonymous.get("/api/v1/checks", headers=headers)
                assert response.status_code == 401, response.text
                refused(response)


def test_injection_is_stored_and_searched_literally(client: TestClient, engine: Engine) -> None:
    value = "2026-YS-' OR '1'='1"
    created = client.post("/api/v1/checks", json={"geometry": PARCEL, "project_number": value})
    assert created.status_code == 201, created.text
    other = client.post("/api/v1/checks", json={"geometry": PARCEL, "project_number": "2026-YS-0002"})
    assert other.status_code == 201
    found = client.get("/api/v1/checks", params={"project_number": value}).json()
    assert [c["id"] for c in found["items"]] == [created.json()["id"]]
    assert client.get("/api/v1/checks", params={"project_number": "' OR '1'='1"}).json()["total"] == 0
