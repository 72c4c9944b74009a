"""A large batch runs in worker processes: the same outcomes and check documents as in threads.

The threshold is lowered so that the six parcels of ``tests/test_jobs.py`` take the process path.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, text

from gis_platform.analysis import batch
from gis_platform.catalog import Catalog
from gis_platform.rules import RuleSet
from gis_platform.settings import Settings

from .test_jobs import county, rules, run_core, submit_batch_core  # noqa: F401 - fixtures

pytestmark = pytest.mark.db

VOLATILE = ("id", "created_at")


def outcomes(engine: Engine, job_id: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT i.seq, i.label, i.land_use_code, i.verdict, i.error, c.source, c.job_id::text, c.result"
                " FROM batch_item i LEFT JOIN check_record c ON c.id = i.check_id WHERE i.job_id = :job ORDER BY seq"
            ),
            {"job": job_id},
        ).all()
    return [(*r[:5], r.source, r.job_id == job_id, r.result and r.result["verdict"], r.result) for r in rows]


def test_a_large_batch_runs_in_worker_processes(
    county: Engine,  # noqa: F811
    catalog: Catalog,
    rules: RuleSet,  # noqa: F811
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    in_threads = submit_batch_core(county, catalog)
    assert run_core(county, catalog, rules, settings, in_threads).status == "succeeded"

    pools: list[int] = []

    class CountingPool(batch.ProcessPoolExecutor):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pools.append(kwargs["max_workers"])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(batch, "ProcessPoolExecutor", CountingPool)
    monkeypatch.setattr(batch, "PROCESS_MIN_PARCELS", 1)
    monkeypatch.setattr(batch, "CHECK_PROCESSES", 2)
    monkeypatch.setattr(batch, "PROCESS_CHUNK", 2)
    monkeypatch.setattr(batch, "PROGRESS_EVERY", 3)
    in_processes = submit_batch_core(county, catalog)
    row = run_core(county, catalog, rules, settings, in_processes)
    assert row.status == "succeeded", row.error
    assert pools == [2]
    assert row.summary["parcels"] == 6 and (row.summary["checked"], row.summary["errors"]) == (3, 3)

    threads, processes = outcomes(county, in_threads), outcomes(county, in_processes)
    assert [r[:8] for r in processes] == [r[:8] for r in threads]
    for a, b in zip(threads, processes, strict=True):  # the same documents, apart from ids and times
        if a[-1] is not None:
            assert {k: v for k, v in a[-1].items() if k not in VOLATILE} == {
                k: v for k, v in b[-1].items() if k not in VOLATILE
            }
