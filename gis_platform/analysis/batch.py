"""Batch checks: many parcels checked as one background job (the results files: :mod:`.batch_results`).

Submitting reads the input once (a GeoJSON FeatureCollection or a file: zipped Shapefile, GeoJSON,
GeoPackage, boundary TXT, DXF), settles the CRS for the whole input and queues a ``batch_check`` job
with one ``batch_item`` per parcel, in input order. Whole-input problems (unreadable file, unknown CRS,
unknown default land use, too many parcels) are errors at once; a parcel that cannot be checked (bad
geometry, outside the county, unknown land-use code …) becomes an **error row** of the job.

The job checks each parcel with :func:`~gis_platform.checks.run_check` (``source="batch"``,
``job_id``): one stored, traceable check record per parcel. A batch of at least
:data:`PROCESS_MIN_PARCELS` parcels is checked in worker processes, one per core (a check is mostly Python
work, which threads of one process share through the GIL); a smaller one in :data:`CHECK_THREADS` threads
of the job runner, which saves starting the processes. Outcomes and progress are committed every
:data:`PROGRESS_EVERY` parcels, in input order, while the next parcels are being checked; a job asked to
stop first stores what is under way. A re-queued job resumes at the first parcel without an outcome (a
check stored after the last commit of a dead worker stays in ``check_record`` but is not part of the job's
results).
"""

from __future__ import annotations

import collections
import io
import json
import math
import multiprocessing
import os
import re
import signal
from collections.abc import Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple, cast

import orjson
import shapely
import sqlalchemy.exc
from sqlalchemy import Engine, text

from ..catalog import Catalog, load_catalog
from ..checks import CheckRequest, run_check
from ..errors import ParcelError, PlatformError
from ..ingest.boundary_txt import DERIVED_COLUMNS
from ..jobs import JobHandle, create_job, get_job
from ..parcel_fields import CLASSIFICATIONS, load_parcel_fields
from ..rules import LEVELS, RuleSet, load_rules
from ..settings import Settings
from ..units import area_figures
from .overlay import AREA_MODEL_NAMES, AreaModel
from .parcel import Parcel, parcels_from_geojson, parse_crs, prepare_parcel
from .parcel_use import (
    FieldChoice,
    ParcelUse,
    SettledFields,
    parcel_label,
    parcel_use,
    problem_entry,
    settle_fields,
    use_source,
)

MAX_BATCH_PARCELS = 10_000
PROGRESS_EVERY = 100
CHECK_THREADS = 2
#: A batch with at least this many parcels to check runs in worker processes (starting them takes ~1 s).
PROCESS_MIN_PARCELS = 500
#: Worker processes for a large batch (0: one per core). With fewer than two cores, threads are used.
CHECK_PROCESSES = 0
#: Parcels sent to a worker process at a time.
PROCESS_CHUNK = 10
RED_LINE_ROLES = ("red_line_farmland", "red_line_ecology", "urban_boundary")
EXPORT_FORMATS = ("csv", "xlsx", "gpkg")
ERROR_VERDICT = "错误"
_PARCEL_PREFIX = re.compile(r"^parcel \d+: ")
#: What makes one parcel an error row rather than failing the job.
PARCEL_ERRORS = (PlatformError, shapely.errors.GEOSException, sqlalchemy.exc.DataError, sqlalchemy.exc.InternalError)


@dataclass(frozen=True)
class BatchOptions:
    """How every parcel of a batch is checked."""

    land_use: str | None = None
    """Default proposed 用地用海 code, for parcels that carry none."""
    land_use_field: str | None = None
    """Property with each parcel's own use: a name, ``auto`` (default: the usual names of
    ``layers/parcel_fields.yaml``) or ``none`` (every parcel gets :attr:`land_use`); settled once at submission
    (:mod:`.parcel_use`, the resolver every upload path shares)."""
    land_use_classification: str | None = None
    """``land_use`` or ``land_survey`` (三调, through the crosswalk); default: as the usual names list the field."""
    label_field: str | None = None
    layers: tuple[str, ...] | None = None
    buffer_m: float = 0.0
    area_model: AreaModel = "ellipsoidal"
    project_name: str | None = None
    project_number: str | None = None
    created_by: str = "anonymous"

    def validated(self, catalog: Catalog) -> BatchOptions:
        if self.land_use:
            catalog.land_use(self.land_use)  # UnknownLandUseError names the code
        if self.area_model not in AREA_MODEL_NAMES:
            raise PlatformError(f"unknown area model {self.area_model!r} (use ellipsoidal or planar)")
        if self.land_use_classification and self.land_use_classification not in CLASSIFICATIONS:
            raise ParcelError(
                f"unknown land_use_classification {self.land_use_classification!r} (use land_use or land_survey)"
            )
        if not 0 <= self.buffer_m <= 5000:
            raise ParcelError(f"buffer_m {self.buffer_m} must be between 0 and 5000 metres")
        layers = tuple(dict.fromkeys(catalog.layer(code).code for code in self.layers)) if self.layers else None
        return replace(self, layers=layers, land_use=(self.land_use or "").strip() or None)

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> BatchOptions:
        """The options stored in a job's ``params`` (or given as form fields); unset values keep their defaults."""
        values = {k: params[k] for k in cls.__dataclass_fields__ if params.get(k) not in (None, "", [])}
        if "layers" in values:
            values["layers"] = tuple(values["layers"])
        return cls(**values)


def _json_value(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value


def _json_text(value: Any) -> str:
    """JSON text of a submitted parcel: orjson (10,000 parcels of 100 vertices in 0.06 s rather than 0.9 s),
    or the standard library for what orjson refuses (integers beyond 64 bits)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False)


def _queue(
    engine: Engine, options: BatchOptions, items: list[dict[str, Any]], params: dict[str, Any]
) -> dict[str, Any]:
    if not items:
        raise ParcelError("the input holds no parcels")
    if len(items) > MAX_BATCH_PARCELS:
        raise ParcelError(f"{len(items)} parcels in one batch, more than the limit of {MAX_BATCH_PARCELS}")
    params = {**params, **asdict(options), "parcels": len(items)}
    rows = io.StringIO()
    with engine.begin() as conn:
        job_id = create_job(
            conn, kind="batch_check", params=params, created_by=options.created_by, progress_total=len(items)
        )
        for seq, item in enumerate(items):
            label = "\\N" if item["label"] is None else _copy_text(item["label"])
            rows.write(f"{job_id}\t{seq}\t{label}\t{_copy_text(_json_text(item['input']))}\n")
        rows.seek(0)
        # 10,000 parcels of 100 vertices: 1.6 s as one JSON array expanded by jsonb_array_elements, 1.2 s by
        # COPY, 0.45 s by COPY with lz4 instead of pglz for the TOASTed JSON (where the server has lz4)
        conn.exec_driver_sql(_LZ4_IN_TRANSACTION)
        with cast(Any, conn.connection.dbapi_connection).cursor() as cursor:
            cursor.copy_expert("COPY batch_item (job_id, seq, label, input) FROM STDIN", rows)
    return get_job(engine, job_id)


_LZ4_IN_TRANSACTION = (
    "SELECT set_config('default_toast_compression', 'lz4', true) FROM pg_settings"
    " WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)"
)


def _copy_text(value: str) -> str:
    """A value in the text format of COPY."""
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def submit_batch_geojson(
    engine: Engine, catalog: Catalog, collection: Any, *, crs: str | None, options: BatchOptions
) -> dict[str, Any]:
    """Queue a batch check of the Features of a GeoJSON FeatureCollection (in ``crs``, default EPSG:4490)."""
    options = options.validated(catalog)
    parse_crs(crs)  # an unknown CRS is an error of the whole request
    features = collection.get("features") if isinstance(collection, dict) else None
    if (
        not isinstance(collection, dict)
        or collection.get("type") != "FeatureCollection"
        or not isinstance(features, list)
    ):
        raise ParcelError("the parcels must be a GeoJSON FeatureCollection with a 'features' list")
    records = [_properties(f) for f in features]
    columns = list(dict.fromkeys(str(k) for r in records for k in r))
    settled = settle_fields(columns, records, _choice(options), load_parcel_fields(catalog))
    items = [{"label": parcel_label(r, settled), "input": f} for r, f in zip(records, features, strict=True)]
    params = {"input": "geojson", "crs": crs or "EPSG:4490", "fields": settled.to_params()}
    return _queue(engine, options, items, params)


def _properties(feature: Any) -> dict[str, Any]:
    properties = feature.get("properties") if isinstance(feature, dict) else None
    return properties if isinstance(properties, dict) else {}


def _choice(options: BatchOptions) -> FieldChoice:
    return FieldChoice(options.land_use_field, options.land_use_classification, options.label_field, options.land_use)


@dataclass
class BatchFile:
    """What an uploaded batch file holds (read in the sandbox, :mod:`gis_platform.sandbox`): each feature as hex
    WKB (None: no geometry) with its properties, and the CRS settled for the whole file."""

    name: str
    columns: list[str]
    records: list[dict[str, Any]]
    wkb: list[str | None]
    crs: str
    crs_notes: list[str]


def read_batch_file(path: Path, settings: Settings, *, crs: str | None) -> BatchFile:
    """Read a batch file within the upload limits (at most :data:`MAX_BATCH_PARCELS` parcels) and settle its CRS."""
    from ..ingest.limits import ReadLimits
    from ..ingest.pipeline import opened_dataset, read_source, resolve_source_crs

    limits = ReadLimits.for_parcels(settings, max_features=MAX_BATCH_PARCELS, hint=" in one batch")
    with opened_dataset(path, settings) as dataset:
        source = read_source(dataset, source_name=path.name, limits=limits)
    resolved = resolve_source_crs(source, crs)
    rows = source.attributes.to_dict(orient="records") if len(source.attributes.columns) else None
    records = [
        {str(k): _json_value(v) for k, v in rows[i].items()} if rows else {} for i in range(len(source.geometries))
    ]
    wkb = [
        shapely.to_wkb(g, hex=True) if g is not None and not shapely.is_empty(g) else None for g in source.geometries
    ]
    return BatchFile(
        name=path.name,
        columns=[str(c) for c in source.attributes.columns if str(c) not in DERIVED_COLUMNS],
        records=records,
        wkb=wkb,
        crs=f"EPSG:{resolved.epsg}" if resolved.epsg else resolved.crs.to_wkt(),
        crs_notes=list(resolved.notes),
    )


def queue_batch_file(
    engine: Engine, catalog: Catalog, batch_file: BatchFile, *, options: BatchOptions
) -> dict[str, Any]:
    """Queue a batch check of every feature of a file read by :func:`read_batch_file`."""
    options = options.validated(catalog)
    settled = settle_fields(batch_file.columns, batch_file.records, _choice(options), load_parcel_fields(catalog))
    items = [
        {"label": parcel_label(properties, settled), "input": {"wkb": wkb, "properties": properties}}
        for wkb, properties in zip(batch_file.wkb, batch_file.records, strict=True)
    ]
    params = {
        "input": "file",
        "file": batch_file.name,
        "crs": batch_file.crs,
        "crs_notes": batch_file.crs_notes,
        "fields": settled.to_params(),
    }
    return _queue(engine, options, items, params)


def submit_batch_file(
    engine: Engine, catalog: Catalog, settings: Settings, path: Path, *, crs: str | None, options: BatchOptions
) -> dict[str, Any]:
    """Queue a batch check of every feature of a file read in this process (the HTTP route reads it in the
    sandbox: :func:`read_batch_file` there, :func:`queue_batch_file` here)."""
    options = options.validated(catalog)
    return queue_batch_file(engine, catalog, read_batch_file(path, settings, crs=crs), options=options)


# --------------------------------------------------------------------------------------------------
# The job
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Outcome:
    seq: int
    land_use: str | None
    check_id: str | None = None
    verdict: str | None = None
    error: str | None = None


class _Item(NamedTuple):
    """One parcel of the job as read from ``batch_item``: its input is JSON text, parsed where it is checked."""

    seq: int
    label: str | None
    input: str


def _no_stop() -> bool:
    return False


class _BatchContext:
    def __init__(self, engine: Engine, catalog: Catalog, rules: RuleSet, settings: Settings, job: JobHandle) -> None:
        self.engine, self.catalog, self.rules, self.settings, self.job = engine, catalog, rules, settings, job
        params = job.params
        self.options = BatchOptions.from_params(params)
        self.crs_text: str = params.get("crs") or "EPSG:4490"
        self.crs = parse_crs(self.crs_text)
        self.fields = load_parcel_fields(catalog)
        # settled at submission; a job queued before that was recorded settles each parcel on its own
        self.settled = SettledFields.from_params(params["fields"]) if params.get("fields") else None

    def parcel(self, item: dict[str, Any], seq: int) -> Parcel:
        limit = self.settings.max_parcel_vertices
        if "wkb" not in item:
            return parcels_from_geojson(
                item,
                self.crs_text,
                plane=self.catalog.survey_plane,
                max_vertices=limit,
                max_parcels=1,
                max_parts=self.settings.max_parcel_parts,
            )[0]
        if not item["wkb"]:
            raise ParcelError("the feature has no geometry")
        geometry = shapely.from_wkb(item["wkb"])
        props = item.get("properties") or {}
        return prepare_parcel(
            geometry,
            self.crs,
            plane=self.catalog.survey_plane,
            max_vertices=limit,
            max_parts=self.settings.max_parcel_parts,
            index=seq,
            properties=props,
            allow_prefix_inference=True,
        )

    def land_use(self, item: Any) -> tuple[ParcelUse, SettledFields]:
        """The parcel's use, read as every upload path reads it (:func:`.parcel_use.parcel_use`)."""
        properties = _properties(item)
        settled = self.settled or settle_fields(list(properties), [properties], _choice(self.options), self.fields)
        return parcel_use(properties, settled, self.fields), settled

    def check(self, row: _Item) -> _Outcome:
        item = orjson.loads(row.input)
        use, settled = self.land_use(item)
        if use.problem is not None:
            problem = problem_entry(row.seq + 1, row.label, use, settled, self.fields)
            return _Outcome(row.seq, None, error=f"{problem['message_zh']} / {problem['message_en']}")
        land_use = use.code
        o = self.options
        try:
            parcel = self.parcel(item, row.seq)
            parcel.label = row.label or parcel.label
            request = CheckRequest(
                parcel=parcel, layers=o.layers, land_use_code=land_use, buffer_m=float(o.buffer_m),
                area_model=o.area_model, project_name=o.project_name, project_number=o.project_number,
                created_by=self.job.created_by, source="batch", job_id=self.job.id,
                land_use_source=use_source(use, settled, self.fields),
            )  # fmt: skip
            document = run_check(self.engine, self.catalog, self.rules, self.settings, request)
        except PARCEL_ERRORS as exc:
            message = exc.message if isinstance(exc, PlatformError) else str(getattr(exc, "orig", exc)).strip()
            return _Outcome(row.seq, land_use, error=_PARCEL_PREFIX.sub("", message))
        return _Outcome(row.seq, land_use, check_id=document["id"], verdict=document["verdict"])

    def check_all(self, rows: Sequence[_Item]) -> list[_Outcome]:
        return [self.check(row) for row in rows]


# --------------------------------------------------------------------------------------------------
# Worker processes
# --------------------------------------------------------------------------------------------------

_worker_context: _BatchContext | None = None


def _start_worker(settings: Settings, job: JobHandle, fingerprints: tuple[str, str]) -> None:
    """Initialiser of a worker process: its own engine, and the catalogue and rules the job runner uses.

    The worker ignores SIGINT and SIGTERM, which a terminal or a service manager sends to the whole process
    group: the job runner finishes and stores the parcels under way, gives the job back to the queue and
    then shuts the workers down (a worker killed first would fail the job instead).
    """
    global _worker_context
    from ..db import make_engine

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

    catalog = load_catalog(settings.layers_dir)
    rules = load_rules(settings.layers_dir, catalog)
    if (catalog.fingerprint, rules.fingerprint) != fingerprints:
        raise PlatformError("the layer catalogue or the rules changed on disk while the batch job was starting")
    _worker_context = _BatchContext(make_engine(settings, pool_size=1), catalog, rules, settings, job)


def _check_in_worker(rows: list[_Item]) -> list[_Outcome]:
    if _worker_context is None:
        raise RuntimeError("batch worker process not initialised")
    return _worker_context.check_all(rows)


def _process_count() -> int:
    cores = os.cpu_count() or 1
    return (CHECK_PROCESSES or cores) if cores > 1 else 0


def _same_files(catalog: Catalog, rules: RuleSet, settings: Settings) -> bool:
    """Whether worker processes, which load the catalogue and rules from disk, get what the runner uses."""
    try:
        on_disk = load_catalog(settings.layers_dir)
        return (on_disk.fingerprint, load_rules(settings.layers_dir, on_disk).fingerprint) == (
            catalog.fingerprint,
            rules.fingerprint,
        )
    except PlatformError:
        return False


class _Checker:
    """Checks chunks of parcels in worker processes or in threads; ``submit`` returns a future of outcomes."""

    def __init__(self, context: _BatchContext, pending: int) -> None:
        self.context = context
        catalog, rules, settings, job = context.catalog, context.rules, context.settings, context.job
        self.processes = _process_count() if pending >= PROCESS_MIN_PARCELS else 0
        self.pool: Executor
        if self.processes and _same_files(catalog, rules, settings):
            # spawn, not fork: the runner's process has threads and pooled connections that a fork would copy
            self.pool = ProcessPoolExecutor(
                max_workers=self.processes,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(settings, replace(job, stop_requested=_no_stop), (catalog.fingerprint, rules.fingerprint)),
            )
            self.chunk = PROCESS_CHUNK
        else:
            threads = settings.batch_check_threads or CHECK_THREADS
            self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"batch-{job.id}")
            self.processes, self.chunk = 0, 1

    def submit(self, rows: list[_Item]) -> list[Future[list[_Outcome]]]:
        chunks = [rows[i : i + self.chunk] for i in range(0, len(rows), self.chunk)]
        if self.processes:
            return [self.pool.submit(_check_in_worker, chunk) for chunk in chunks]
        return [self.pool.submit(self.context.check_all, chunk) for chunk in chunks]

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def _store(engine: Engine, job: JobHandle, outcomes: list[_Outcome], done: int, total: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE batch_item i SET land_use_code = o.land_use, check_id = CAST(o.check_id AS uuid),"
                " verdict = o.verdict, error = o.error"
                " FROM jsonb_to_recordset(CAST(:outcomes AS jsonb))"
                "   AS o(seq int, land_use text, check_id text, verdict text, error text)"
                " WHERE i.job_id = :job AND i.seq = o.seq"
            ),
            {"job": job.id, "outcomes": orjson.dumps([asdict(o) for o in outcomes]).decode()},
        )
        job.progress(conn, done, total)


def run_batch_job(
    engine: Engine, catalog: Catalog, rules: RuleSet, settings: Settings, job: JobHandle
) -> dict[str, Any]:
    """Job handler for ``batch_check``: check every parcel without an outcome yet, then summarise.

    Blocks of :data:`PROGRESS_EVERY` parcels are read in input order; the next block is being checked while
    the outcomes of the current one are committed (at most two blocks under way).
    """
    context = _BatchContext(engine, catalog, rules, settings, job)
    pending = "i.check_id IS NULL AND i.error IS NULL"
    with engine.connect() as conn:
        total, done = conn.execute(
            text(f"SELECT count(*), count(*) FILTER (WHERE NOT ({pending})) FROM batch_item i WHERE job_id = :job"),
            {"job": job.id},
        ).one()
    next_block = text(
        f"SELECT seq, label, input::text FROM batch_item i WHERE job_id = :job AND seq > :after AND {pending}"
        " ORDER BY seq LIMIT :n"
    )
    under_way: collections.deque[list[Future[list[_Outcome]]]] = collections.deque()

    def finish_oldest() -> None:
        nonlocal done
        outcomes = [outcome for future in under_way.popleft() for outcome in future.result()]
        done += len(outcomes)
        _store(engine, job, outcomes, done, total)

    after = -1
    checker = _Checker(context, total - done)
    try:
        while True:
            if job.stop_requested():  # store what is under way, then give the job back
                while under_way:
                    finish_oldest()
                job.check_stop()
            with engine.connect() as conn:
                found = conn.execute(next_block, {"job": job.id, "after": after, "n": PROGRESS_EVERY})
                rows = [_Item(*r) for r in found]
            if rows:
                after = rows[-1].seq
                under_way.append(checker.submit(rows))
            if not under_way:
                break
            if len(under_way) > 1 or not rows:
                finish_oldest()
    finally:
        checker.close()
    return batch_summary(engine, catalog, rules, job.id)


def batch_summary(engine: Engine, catalog: Catalog, rules: RuleSet, job_id: Any) -> dict[str, Any]:
    """Counts by verdict, error rows, and the layer versions the checks used."""
    params = {"job": job_id}
    with engine.connect() as conn:
        counts = conn.execute(
            text(
                "SELECT count(*) AS parcels, count(i.check_id) AS checked, count(i.error) AS errors,"
                " coalesce(sum(c.parcel_area_m2), 0) AS area"
                " FROM batch_item i LEFT JOIN check_record c ON c.id = i.check_id WHERE i.job_id = :job"
            ),
            params,
        ).one()
        by_verdict: dict[str, int] = {
            verdict: int(n)
            for verdict, n in conn.execute(
                text("SELECT verdict, count(*) FROM batch_item WHERE job_id = :job AND verdict IS NOT NULL GROUP BY 1"),
                params,
            )
        }
        versions = conn.execute(
            text(
                "SELECT d.key, array_agg(DISTINCT d.value::int ORDER BY d.value::int) FROM batch_item i"
                " JOIN check_record c ON c.id = i.check_id, jsonb_each_text(c.data_versions) d"
                " WHERE i.job_id = :job GROUP BY d.key ORDER BY d.key"
            ),
            params,
        ).all()
        errors = conn.execute(
            text(
                "SELECT seq, label, error FROM batch_item WHERE job_id = :job AND error IS NOT NULL"
                " ORDER BY seq LIMIT 20"
            ),
            params,
        ).all()
    return {
        "parcels": counts.parcels,
        "checked": counts.checked,
        "errors": counts.errors,
        "verdicts": {level: by_verdict.get(level, 0) for level in LEVELS},
        "checked_area": area_figures(float(counts.area)),
        "data_versions": {code: list(ids) for code, ids in versions},
        "first_errors": [{"seq": r.seq, "label": r.label, "error": r.error} for r in errors],
        "catalog_fingerprint": catalog.fingerprint,
        "rules_fingerprint": rules.fingerprint,
    }
