"""Limits over HTTP: request body size, upload size, unsafe zips, vertex count, parcels per request.

Each is refused with a 4xx JSON body whose message names the limit or the problem, and leaves the database as
it was.
"""

from __future__ import annotations

import io
import json
import stat
import threading
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from api.limits import FORM_OVERHEAD_BYTES, request_limit
from gis_platform.settings import Settings

from .helpers import auth_headers

pytestmark = pytest.mark.db

PARCEL = {"type": "Polygon", "coordinates": [[[114.8, 34.8], [114.801, 34.8], [114.801, 34.801], [114.8, 34.8]]]}
COUNTED_TABLES = ("layer", "layer_version", "feature", "check_record", "job", "app_user", "api_key", "user_session")


def db_counts(engine: Engine) -> dict[str, int]:
    """Row counts of the tables a request could change (the audit trail aside: refusals may be audited)."""
    with engine.connect() as conn:
        return {t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()) for t in COUNTED_TABLES}


def limited_client(settings: Settings, engine: Engine, **limits: Any) -> TestClient:
    return TestClient(create_app(settings.model_copy(update=limits)), headers=auth_headers(engine))


@pytest.fixture
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    limits = {"max_request_bytes": 20_000, "max_upload_bytes": 10_000, "max_zip_members": 5}
    with limited_client(settings, engine, **limits) as test_client:
        yield test_client


def assert_refused(response: Any, status: int, error: str, *words: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["error"] == error, body
    for word in words:
        assert word in body["message"], (word, body)
    return body


# ---------------------------------------------------------------------------------------------------------------
# Request body size (api/limits.py)
# ---------------------------------------------------------------------------------------------------------------


def test_default_request_limit_is_the_upload_limit_plus_form_overhead(settings: Settings) -> None:
    assert request_limit(settings.model_copy(update={"max_request_bytes": 0})) == (
        settings.max_upload_bytes + FORM_OVERHEAD_BYTES
    )
    assert request_limit(settings.model_copy(update={"max_request_bytes": 1234})) == 1234


def test_declared_body_over_the_limit_is_refused_unread(client: TestClient, engine: Engine) -> None:
    before = db_counts(engine)
    big = {"geometry": PARCEL, "project_name": "x" * 30_000}
    response = client.post("/api/v1/checks", json=big)
    body = assert_refused(response, 413, "request_too_large", "20000 bytes")
    assert body["details"]["limit_bytes"] == 20_000
    assert response.headers.get("x-request-id")  # inside the request middleware: logged and counted
    assert db_counts(engine) == before


def test_chunked_body_is_counted_and_stopped_at_the_limit(client: TestClient, engine: Engine) -> None:
    before = db_counts(engine)
    sent: list[int] = []

    def chunks() -> Iterator[bytes]:
        payload = json.dumps({"geometry": PARCEL, "project_name": "x" * 50_000}).encode()
        for i in range(0, len(payload), 4096):
            sent.append(i)
            yield payload[i : i + 4096]

    response = client.post("/api/v1/checks", content=chunks(), headers={"content-type": "application/json"})
    assert_refused(response, 413, "request_too_large", "20000 bytes")
    assert db_counts(engine) == before


def test_chunked_multipart_upload_is_stopped_at_the_limit(client: TestClient, engine: Engine) -> None:
    boundary = "fuzzboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="p.geojson"\r\n'
        "Content-Type: application/geo+json\r\n\r\n"
    ).encode()

    def chunks() -> Iterator[bytes]:
        yield head
        for _ in range(10):
            yield b" " * 4096
        yield f"\r\n--{boundary}--\r\n".encode()

    for url in ("/api/v1/checks/upload", "/api/v1/checks/batch", "/api/v1/layers/YJJBNT/versions"):
        response = client.post(
            url, content=chunks(), headers={"content-type": f"multipart/form-data; boundary={boundary}"}
        )
        assert_refused(response, 413, "request_too_large", "20000 bytes")


def test_bodies_within_the_limit_pass(client: TestClient) -> None:
    response = client.post("/api/v1/checks", json={"geometry": PARCEL})
    assert response.status_code != 413, response.text
    assert client.get("/api/v1/checks").status_code == 200


def test_malformed_content_length_is_a_400() -> None:
    from api.limits import RequestSizeLimitMiddleware

    async def app(scope: Any, receive: Any, send: Any) -> None:  # never reached
        raise AssertionError("the body limit let a malformed Content-Length through")

    messages: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    import anyio

    middleware = RequestSizeLimitMiddleware(app, Settings(max_request_bytes=100))
    headers = [(b"content-length", b"12; DROP TABLE")]
    scope: dict[str, Any] = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    # a thread of its own: an event loop left current in this thread by another test must not matter
    worker = threading.Thread(target=anyio.run, args=(middleware.__call__, scope, receive, send))
    worker.start()
    worker.join(10)
    assert messages[0]["status"] == 400
    assert json.loads(messages[1]["body"])["error"] == "bad_request"


# ---------------------------------------------------------------------------------------------------------------
# Upload size
# ---------------------------------------------------------------------------------------------------------------


def test_files_over_the_upload_limit_name_it_on_every_upload_route(client: TestClient, engine: Engine) -> None:
    before = db_counts(engine)
    payload = ("parcel.geojson", b" " * 12_000)  # over the 10,000-byte upload limit, under the request limit
    for url in ("/api/v1/checks/upload", "/api/v1/checks/batch", "/api/v1/layers/YJJBNT/versions"):
        response = client.post(url, files={"file": payload})
        assert_refused(response, 422, "invalid_parcel", "upload limit of 10000 bytes")
    assert db_counts(engine) == before


# ---------------------------------------------------------------------------------------------------------------
# Unsafe zips (gis_platform/ingest/archive.py)
# ---------------------------------------------------------------------------------------------------------------


def _zip(members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in members:
            zf.writestr(info, data)
    return buffer.getvalue()


def _symlink(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


GEOJSON = json.dumps(
    {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": PARCEL}]}
)
UNSAFE_ZIPS: dict[str, tuple[list[tuple[zipfile.ZipInfo | str, bytes]], str]] = {
    "traversal": ([("../../evil.geojson", GEOJSON.encode())], "escapes the archive with '..'"),
    "absolute": ([("/etc/evil.geojson", GEOJSON.encode())], "absolute path"),
    "windows drive": ([("C:/evil.geojson", GEOJSON.encode())], "absolute path"),
    "symlink": ([(_symlink("link.geojson"), b"/etc/passwd")], "symbolic link"),
    "members": ([(f"f{i}.txt", b"x") for i in range(8)], "8 members, more than the limit of 5"),
    "bomb": ([("bomb.geojson", b"\0" * (3 * 1024 * 1024))], "possible zip bomb"),
}


@pytest.mark.parametrize("case", list(UNSAFE_ZIPS))
def test_unsafe_zips_are_refused_with_the_reason(client: TestClient, engine: Engine, case: str) -> None:
    members, reason = UNSAFE_ZIPS[case]
    data = _zip(members)
    assert len(data) < 10_000  # within the upload limit: the archive check itself refuses it
    before = db_counts(engine)
    for url in ("/api/v1/checks/upload", "/api/v1/checks/batch", "/api/v1/layers/YJJBNT/versions"):
        response = client.post(url, files={"file": ("parcels.zip", data, "application/zip")})
        assert_refused(response, 422, "unsafe_archive", reason)
    assert db_counts(engine) == before


def test_corrupt_zip_is_a_named_input_error(client: TestClient, engine: Engine) -> None:
    data = _zip([("p.geojson", GEOJSON.encode())])[:-40]
    response = client.post("/api/v1/checks/upload", files={"file": ("p.zip", data, "application/zip")})
    assert_refused(response, 422, "input_file_error", "p.zip")


# ---------------------------------------------------------------------------------------------------------------
# Vertex count and parcels per request
# ---------------------------------------------------------------------------------------------------------------


def _many_vertices(n: int) -> dict[str, Any]:
    circle = shapely.Point(114.8, 34.8).buffer(0.001, quad_segs=n // 4)
    return json.loads(shapely.to_geojson(circle))


def test_vertex_limit_is_named(settings: Settings, engine: Engine) -> None:
    with limited_client(settings, engine, max_parcel_vertices=100) as client:
        before = db_counts(engine)
        response = client.post("/api/v1/checks", json={"geometry": _many_vertices(400)})
        body = assert_refused(response, 422, "invalid_parcel", "more than the limit of 100", "vertices")
        assert body["details"]["vertices"] > 100
        collection = {
            "type": "FeatureCollection",
            "features": [{"type": "Feature", "properties": {}, "geometry": _many_vertices(400)}],
        }
        upload = client.post("/api/v1/checks/upload", files={"file": ("p.geojson", json.dumps(collection).encode())})
        assert_refused(upload, 422, "invalid_parcel", "more than the limit of 100")
        assert db_counts(engine) == before


def test_parcels_per_request_are_limited(settings: Settings, engine: Engine) -> None:
    feature = {"type": "Feature", "properties": {}, "geometry": PARCEL}
    with limited_client(settings, engine, max_parcels_per_request=2) as client:
        before = db_counts(engine)
        two = {"type": "FeatureCollection", "features": [feature, feature]}
        response = client.post("/api/v1/checks", json={"geometry": two})
        assert_refused(response, 422, "invalid_parcel", "2 parcels in one request, more than the limit of 1")
        three = {"type": "FeatureCollection", "features": [feature] * 3}
        upload = client.post("/api/v1/checks/upload", files={"file": ("p.geojson", json.dumps(three).encode())})
        assert_refused(upload, 422, "invalid_parcel", "3 parcels, more than the limit of 2", "batch")
        assert db_counts(engine) == before


def test_batch_parcel_limit_is_named(client: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from gis_platform.analysis import batch

    monkeypatch.setattr(batch, "MAX_BATCH_PARCELS", 3)
    feature = {"type": "Feature", "properties": {}, "geometry": PARCEL}
    before = db_counts(engine)
    response = client.post(
        "/api/v1/checks/batch", json={"parcels": {"type": "FeatureCollection", "features": [feature] * 4}}
    )
    assert_refused(response, 422, "invalid_parcel", "4 parcels in one batch, more than the limit of 3")
    assert db_counts(engine) == before
