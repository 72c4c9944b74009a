"""Schemathesis against the platform's own OpenAPI spec: no server error over at least 1,000 generated requests.

Every operation of ``/openapi.json`` gets schema-conforming (positive) and schema-violating (negative) requests,
authenticated as an admin, on a small county so checks, identify, tiles and searches reach real code. Nothing is
excluded; operations that start background work or render PDFs get fewer examples (see ``FEWER``).
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from sqlalchemy import Engine

from api.app import create_app
from api.schemas import EXAMPLE_PARCEL
from gis_platform import accounts
from gis_platform.audit import Actor
from gis_platform.catalog import Catalog
from gis_platform.ingest.pipeline import import_file
from gis_platform.settings import Settings

from .helpers import auth_headers, ensure_user, write_geojson

schemathesis = pytest.importorskip("schemathesis")
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.python import asgi  # noqa: E402

pytestmark = [pytest.mark.db, pytest.mark.slow]

MIN_REQUESTS = 1000
POSITIVE_EXAMPLES = 32
NEGATIVE_EXAMPLES = 22
#: Operations that start jobs, import files or render PDFs: fewer examples, to keep the run short.
FEWER = {
    ("POST", "/api/v1/checks/batch"): "starts a background job per accepted request",
    ("POST", "/api/v1/conflicts"): "starts a background conflict analysis per request",
    ("POST", "/api/v1/layers/{code}/versions"): "imports a file (a new layer version) per accepted request",
    ("GET", "/api/v1/checks/{check_id}/report.pdf"): "renders a PDF when the check exists",
    ("GET", "/api/v1/conflicts/{job_id}/features.gpkg"): "writes a GeoPackage when the job exists",
    ("GET", "/api/v1/jobs/{job_id}/results.{fmt}"): "writes a results file when the job exists",
}
FEWER_EXAMPLES = 6
REAL_EXAMPLES = 15


def _county(engine: Engine, catalog: Catalog, settings_: Settings, tmp_path: Path) -> None:
    from .test_checks import DLTB, DLTB_PROPS, ECOLOGY, FARMLAND, PLAN, PLAN_USES, TOWN_A, TOWN_B, URBAN

    def load(code: str, geoms: list[Any], props: list[dict[str, Any]]) -> None:
        import_file(engine, catalog, settings_, write_geojson(tmp_path / f"{code}.geojson", geoms, props), code)

    towns = [{"XZQDM": "410001001", "XZQMC": "城关镇"}, {"XZQDM": "410001002", "XZQMC": "王庄乡"}]
    load("XZQ", [TOWN_A, TOWN_B], towns)
    load("YJJBNT", FARMLAND, [{"YJJBNTTBBH": f"JB{i}", "DLBM": "0103"} for i in range(2)])
    load("STBHHX", ECOLOGY, [{"BSM": f"ST{i}", "HXMC": "黄河湿地"} for i in range(2)])
    load("CZKFBJ", URBAN, [{"BSM": "U1", "GHFQMC": "城镇集中建设区"}])
    load("YDYHGHFQ", PLAN, [{"BSM": f"P{i}", "YDYHFLDM": c, "YDYHFLMC": n} for i, (c, n) in enumerate(PLAN_USES)])
    load("DLTB", DLTB, DLTB_PROPS)


def _token(engine: Engine) -> str:
    user = ensure_user(engine, "admin", "fuzz-admin")
    secret, _ = accounts.create_session(
        engine, user, kind="bearer", lifetime=dt.timedelta(hours=1), actor=Actor("fuzz-admin", "user", "admin")
    )
    return secret


@pytest.fixture
def fuzz_app(settings: Settings, engine: Engine, catalog: Catalog, tmp_path: Path) -> Iterator[Any]:
    _county(engine, catalog, settings, tmp_path)
    # no rate limit: a thousand requests a minute from one admin is the point here, not abuse
    unlimited = settings.model_copy(update={"rate_limit_user_per_minute": 0, "max_upload_bytes": 256 * 1024})
    app = create_app(unlimited)
    with TestClient(app, headers=auth_headers(engine)) as client:  # lifespan: engine, authenticator, job runner
        check = client.post("/api/v1/checks", json={"geometry": EXAMPLE_PARCEL, "project_number": "FUZZ-1"})
        batch = client.post("/api/v1/checks/batch", json={"parcels": _collection(EXAMPLE_PARCEL)})
        conflicts = client.post("/api/v1/conflicts", json={})
        assert (check.status_code, batch.status_code, conflicts.status_code) == (201, 202, 202)
        _wait_for_jobs(client, [batch.json()["id"], conflicts.json()["id"]])
        app.state.fuzz_ids = {
            "check_id": check.json()["id"],
            "/api/v1/jobs/": batch.json()["id"],
            "/api/v1/conflicts/": conflicts.json()["id"],
        }
        yield app
    asgi.shutdown_lifespans()


def _collection(geometry: dict[str, Any]) -> dict[str, Any]:
    feature = {"type": "Feature", "properties": {"DKBH": "A-01"}, "geometry": geometry}
    return {"type": "FeatureCollection", "features": [feature]}


def _wait_for_jobs(client: TestClient, ids: list[str]) -> None:
    deadline = time.monotonic() + 60
    for job in ids:
        while client.get(f"/api/v1/jobs/{job}").json()["status"] not in ("succeeded", "failed"):
            assert time.monotonic() < deadline, f"job {job} did not finish"
            time.sleep(0.1)


def _real_path_parameters(app: Any, path: str) -> dict[str, str] | None:
    """Path parameters naming things that exist, so the operation reaches past its 404 (None: nothing to name).

    ``{username}`` and ``{key}`` stay generated: fixing them to the fuzzing admin would let PATCH demote or
    deactivate the very account sending the requests.
    """
    ids = app.state.fuzz_ids
    names = set(re.findall(r"\{(\w+)\}", path))
    fixed: dict[str, str] = {}
    if "check_id" in names:
        fixed["check_id"] = ids["check_id"]
    if "job_id" in names:
        fixed["job_id"] = next(v for k, v in ids.items() if path.startswith(k))
    if "code" in names:
        fixed["code"] = "YJJBNT"
    return fixed or None


class Fuzzer:
    """Sends generated requests for one operation after another, counting them and collecting server errors."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.token = _token(engine)
        self.sent: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.failures: list[str] = []

    def send(self, label: str, case: Any) -> None:
        # logging out ends the session it is sent with: give it a session of its own
        credential = _token(self.engine) if label == "POST /api/v1/auth/logout" else self.token
        self.sent[label] += 1
        try:
            response = case.call(headers={"Authorization": f"Bearer {credential}"})
        except Exception as exc:  # an exception escaping the app is a server error too
            self.failures.append(f"{label}: {type(exc).__name__}: {exc} <- {case.as_curl_command()}")
            return
        self.statuses[response.status_code] += 1
        if response.status_code >= 500:
            self.failures.append(f"{label} -> {response.status_code} {response.text[:300]} <- {case.as_curl_command()}")

    def fuzz(
        self, operation: Any, mode: GenerationMode, examples: int, path_parameters: dict[str, str] | None = None
    ) -> None:
        label = f"{operation.method.upper()} {operation.path}"

        @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
        @settings(
            max_examples=examples,
            phases=[Phase.explicit, Phase.generate],  # no shrinking: every failure is collected, not minimised
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            self.send(label, case)

        try:
            run()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE, label  # no input to break (e.g. GET /health): nothing to send


def test_no_server_error_over_a_thousand_generated_requests(fuzz_app: Any, engine: Engine) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30
    fuzzer = Fuzzer(engine)
    started = time.monotonic()
    for operation in operations:
        key = (operation.method.upper(), operation.path)
        fuzzer.fuzz(operation, GenerationMode.POSITIVE, FEWER_EXAMPLES if key in FEWER else POSITIVE_EXAMPLES)
        fuzzer.fuzz(operation, GenerationMode.NEGATIVE, FEWER_EXAMPLES if key in FEWER else NEGATIVE_EXAMPLES)
        real = _real_path_parameters(fuzz_app, operation.path)
        if real:  # the same operation on a check, job or layer that exists
            fuzzer.fuzz(operation, GenerationMode.POSITIVE, FEWER_EXAMPLES if key in FEWER else REAL_EXAMPLES, real)
            fuzzer.fuzz(operation, GenerationMode.NEGATIVE, FEWER_EXAMPLES, real)
    elapsed = time.monotonic() - started

    total = sum(fuzzer.sent.values())
    print(f"\n{total} generated requests over {len(operations)} operations in {elapsed:.1f} s: {fuzzer.statuses}")
    print(dict(fuzzer.sent))
    assert fuzzer.failures == [], "\n".join(fuzzer.failures[:40])
    assert total >= MIN_REQUESTS, dict(fuzzer.sent)
    assert all(fuzzer.sent[f"{op.method.upper()} {op.path}"] > 0 for op in operations), fuzzer.sent
