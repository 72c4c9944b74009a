"""Fault: PostgreSQL stopped and started again in the middle of a mixed load.

Run: ``scripts/bench.sh fault-db [--clients 8] [--seconds 40] [--at 12] [--down 3]`` — by default on the
project-local cluster in ``var/pgdata`` (``GIS_LOCAL_CLUSTER=1``, port 55432), so that no one else's database
goes down with it; ``GIS_LOCAL_CLUSTER=0 scripts/bench.sh fault-db --allow-system-cluster`` restarts the system
cluster (``pg_ctlcluster``) that serves 127.0.0.1:5432 instead.

The demo county is loaded into a throwaway bench database, ``gis-platform serve --workers 2`` starts, and the
load of ``bench/load.py`` runs at lower concurrency. At ``--at`` seconds the cluster is stopped (``-m fast``:
open transactions are rolled back, connections cut), kept down ``--down`` seconds, and started again; a side
thread tries to connect every 50 ms to time when the database refused and when it accepted again.

Verified:
1. every response is a success (2xx/304) or a 503 whose JSON body says ``database_unavailable``; anything else
   (a 500, another 503 body, a transport error) is a failure;
2. the API recovers by itself: no 503 for a request started more than 5 s after the database accepted
   connections again, and a check succeeds within 5 s of it;
3. no check is lost or half-written: every check answered 201 is fetched again afterwards, 200, with exactly the
   document first returned (sha256 of the JSON), and every stored check row of the run has a complete document.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg2
from sqlalchemy.engine.url import make_url

from .bench_tiles import exit_cleanly_on_sigterm, load_county, machine_load, running_server
from .common import REPO_ROOT, bench_api_key, bench_database_url
from .load import (
    DEFAULT_MIX,
    Event,
    _digest,
    ensure_demo_county,
    make_plan,
    parse_mix,
    print_table,
    run_load,
    summarise,
    write_result,
)

LOCAL_PG_PORT = int(os.environ.get("GIS_LOCAL_PG_PORT", "55432"))
RECOVERY_LIMIT_S = 5.0
DB_KINDS = ("check", "identify", "list")  # kinds that always need the database (tiles may come from the LRU)


def pg_bin(name: str) -> str:
    majors = sorted(os.listdir("/usr/lib/postgresql"), key=lambda v: float(v))
    return f"/usr/lib/postgresql/{majors[-1]}/bin/{name}"


class Cluster:
    """Stop and start the PostgreSQL cluster that serves the bench database."""

    def __init__(self, database_url: str, allow_system: bool) -> None:
        url = make_url(database_url)
        self.port = url.port or 5432
        self.host = url.host or "127.0.0.1"
        if self.host not in ("127.0.0.1", "localhost"):
            raise SystemExit(f"the fault bench restarts a local cluster only, not {self.host}")
        self.data = REPO_ROOT / "var" / "pgdata"
        self.run_dir = REPO_ROOT / "var" / "pgrun"
        if self.port == LOCAL_PG_PORT and (self.data / "PG_VERSION").exists():
            self.kind = "local"
        else:
            self.kind = "system"
            self.version_name = self._system_cluster()
            if not allow_system:
                raise SystemExit(
                    f"the bench database is on the system cluster ({' '.join(self.version_name)}, port {self.port}),"
                    " which other work on this machine may be using: run with GIS_LOCAL_CLUSTER=1 (the default of"
                    " scripts/bench.sh fault-db) or pass --allow-system-cluster"
                )

    def _system_cluster(self) -> tuple[str, str]:
        out = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            version, name, port, *_ = line.split()
            if int(port) == self.port:
                return version, name
        raise SystemExit(f"no system cluster listens on port {self.port} (pg_lsclusters)")

    def _as_postgres(self, cmd: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd

    def describe(self) -> str:
        if self.kind == "local":
            return f"project-local cluster {self.data} (port {self.port})"
        return f"system cluster {' '.join(self.version_name)} (port {self.port})"

    def stop(self) -> None:
        if self.kind == "local":
            cmd = self._as_postgres([pg_bin("pg_ctl"), "-D", str(self.data), "-w", "-t", "60", "stop", "-m", "fast"])
        else:
            cmd = ["pg_ctlcluster", *self.version_name, "stop", "-m", "fast"]
        subprocess.run(cmd, check=True, capture_output=True, timeout=90)

    def start(self) -> None:
        if self.kind == "local":
            options = f"-p {self.port} -k {self.run_dir} -c listen_addresses=127.0.0.1"
            log = str(self.run_dir / "postgresql.log")
            cmd = self._as_postgres([pg_bin("pg_ctl"), "-D", str(self.data), "-l", log, "-w", "-t", "60", "start"])
            cmd += ["-o", options]
        else:
            cmd = ["pg_ctlcluster", *self.version_name, "start"]
        subprocess.run(cmd, check=True, capture_output=True, timeout=90)


class Prober(threading.Thread):
    """Connects every 50 ms: when the database first refused and when it first accepted again."""

    def __init__(self, database_url: str, started: float) -> None:
        super().__init__(daemon=True)
        url = make_url(database_url)
        self.dsn = f"host={url.host} port={url.port or 5432} user={url.username or 'postgres'} dbname={url.database}"
        self.started = started
        self.down_at: float | None = None
        self.up_at: float | None = None
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            now = time.perf_counter() - self.started
            try:
                psycopg2.connect(self.dsn, connect_timeout=1).close()
                if self.down_at is not None and self.up_at is None:
                    self.up_at = now
            except psycopg2.Error:
                if self.down_at is None:
                    self.down_at = now
            self.halt.wait(0.05)


def analyse(events: list[Event], down_at: float, up_at: float) -> dict[str, Any]:
    bad = [e for e in events if not e.ok and not (e.status == 503 and e.error == "database_unavailable")]
    unavailable = [e for e in events if e.status == 503 and e.error == "database_unavailable"]
    late = [e for e in unavailable if e.start > up_at + RECOVERY_LIMIT_S]
    first_ok_check = min((e.end for e in events if e.kind == "check" and e.ok and e.start >= up_at), default=None)
    first_ok_db = min((e.end for e in events if e.kind in DB_KINDS and e.ok and e.start >= up_at), default=None)
    last_503 = max((e.end for e in unavailable), default=None)
    return {
        "db_down_at_s": round(down_at, 3),
        "db_up_at_s": round(up_at, 3),
        "outage_s": round(up_at - down_at, 3),
        "responses_503_unavailable": len(unavailable),
        "failures": len(bad),
        "failures_by_status": _count(f"{e.status} {e.error}" for e in bad),
        "failure_samples": [e.__dict__ for e in bad[:10]],
        "late_503_after_recovery_limit": len(late),
        "first_ok_check_after_db_up_s": round(first_ok_check - up_at, 3) if first_ok_check is not None else None,
        "first_ok_db_request_after_db_up_s": round(first_ok_db - up_at, 3) if first_ok_db is not None else None,
        "last_503_after_db_up_s": round(last_503 - up_at, 3) if last_503 is not None else None,
        "ok_during_outage": sum(1 for e in events if e.ok and down_at <= e.start <= up_at),
        "ok_db_kinds_during_outage": sum(
            1 for e in events if e.ok and e.kind in DB_KINDS and down_at <= e.start and e.end <= up_at
        ),
    }


def _count(items: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return counts


def verify_checks(base_url: str, headers: dict[str, str], database_url: str, events: list[Event]) -> dict[str, Any]:
    """Every check answered 201 is stored with exactly its document; no stored row of the run is half-written."""
    created = {e.check_id: e.digest for e in events if e.check_id}
    missing, changed = [], []
    with httpx.Client(base_url=base_url, headers=headers, trust_env=False, timeout=30) as http:
        for check_id, digest in created.items():
            response = http.get(f"/api/v1/checks/{check_id}")
            if response.status_code != 200:
                missing.append({"id": check_id, "status": response.status_code})
            elif _digest(response.json()) != digest:
                changed.append(check_id)
    url = make_url(database_url)
    with (
        (
            psycopg2.connect(host=url.host, port=url.port or 5432, user=url.username or "postgres", dbname=url.database)
        ) as conn,
        conn.cursor() as cur,
    ):
        cur.execute(
            "SELECT count(*),"
            " count(*) FILTER (WHERE result->>'verdict' IS DISTINCT FROM verdict OR data_versions = '{}'::jsonb"
            "   OR jsonb_typeof(result->'layers') IS DISTINCT FROM 'array' OR NOT result ? 'findings'),"
            " array_agg(id::text)"
            " FROM check_record WHERE project_number LIKE 'LOAD-%'"
        )
        stored, incomplete, ids = cur.fetchone()
    stored_ids = set(ids or [])
    return {
        "checks_answered_201": len(created),
        "refetched_ok": len(created) - len(missing) - len(changed),
        "missing": missing[:20],
        "missing_count": len(missing),
        "document_changed": changed[:20],
        "rows_stored": stored,
        "rows_incomplete": incomplete,
        "rows_not_in_a_201_answer": len(stored_ids - set(created)),  # committed, but the answer was lost (a 503)
        "answered_but_not_stored": len(set(created) - stored_ids),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--at", type=float, default=12.0, help="stop PostgreSQL this many seconds into the load")
    parser.add_argument("--down", type=float, default=3.0, help="seconds PostgreSQL stays stopped")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--mix", default=DEFAULT_MIX)
    parser.add_argument("--dir", type=Path, default=REPO_ROOT / "data" / "demo")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--allow-system-cluster", action="store_true")
    args = parser.parse_args()
    if args.at + args.down + RECOVERY_LIMIT_S + 3 > args.seconds:
        raise SystemExit("--seconds must leave at least 8 s of load after the database is back")
    exit_cleanly_on_sigterm()

    url = bench_database_url()
    cluster = Cluster(url, args.allow_system_cluster)
    ensure_demo_county(args.dir)
    load_county(url, args.dir)
    headers = bench_api_key(url, "bench fault-db")
    before = machine_load()
    with running_server(url, workers=args.workers, log_name="fault-db-server") as server:
        plan = make_plan(server.base_url, headers, parse_mix(args.mix))
        started = time.perf_counter()
        prober = Prober(url, started)
        timeline: dict[str, float] = {}
        fault_error: list[BaseException] = []

        def fault() -> None:
            try:
                time.sleep(args.at)
                timeline["stop_begin_s"] = time.perf_counter() - started
                cluster.stop()
                timeline["stopped_s"] = time.perf_counter() - started
                time.sleep(args.down)
                timeline["start_begin_s"] = time.perf_counter() - started
                cluster.start()
                timeline["started_s"] = time.perf_counter() - started
            except BaseException as exc:  # reported below; the cluster is started again in any case
                fault_error.append(exc)

        prober.start()
        injector = threading.Thread(target=fault, daemon=True)
        injector.start()
        try:
            events, elapsed = asyncio.run(
                run_load(
                    server.base_url,
                    headers,
                    plan,
                    clients=args.clients,
                    seconds=args.seconds,
                    seed=args.seed,
                    started=started,
                )
            )
        finally:
            injector.join(timeout=120)
            prober.halt.set()
            prober.join(timeout=5)
            if fault_error or "started_s" not in timeline:
                cluster.start()  # never leave the cluster down
        if fault_error:
            raise RuntimeError(f"the fault could not be injected: {fault_error[0]!r}")
        if prober.down_at is None or prober.up_at is None:
            raise RuntimeError("the prober did not see the database go down and come back")
        outage = analyse(events, prober.down_at, prober.up_at)
        integrity = verify_checks(server.base_url, headers, url, events)
        summary = summarise(events, elapsed)
        result = {
            "config": {**vars(args), "dir": str(args.dir), "cluster": cluster.describe()},
            "machine_before": before,
            "machine_after": machine_load(),
            "timeline": {k: round(v, 3) for k, v in timeline.items()},
            "outage": outage,
            "integrity": integrity,
            **summary,
            "server_log": str(server.log_path),
        }
    verdicts = {
        "only 2xx/304 or 503 database_unavailable": outage["failures"] == 0,
        "503s seen during the outage": outage["responses_503_unavailable"] > 0,
        f"recovered within {RECOVERY_LIMIT_S:.0f} s": outage["late_503_after_recovery_limit"] == 0
        and outage["first_ok_check_after_db_up_s"] is not None
        and outage["first_ok_check_after_db_up_s"] <= RECOVERY_LIMIT_S,
        "no check lost or changed": integrity["missing_count"] == 0
        and not integrity["document_changed"]
        and integrity["answered_but_not_stored"] == 0,
        "no half-written check row": integrity["rows_incomplete"] == 0,
    }
    result["verdicts"] = verdicts
    print_table(result)
    print(f"cluster: {cluster.describe()}; timeline (s into the load): {result['timeline']}")
    print(
        f"database refused at {outage['db_down_at_s']} s, accepted again at {outage['db_up_at_s']} s;"
        f" 503 database_unavailable: {outage['responses_503_unavailable']}; other failures: {outage['failures']}"
        f" {outage['failures_by_status'] or ''}"
    )
    print(
        f"after the database was back: first check OK in {outage['first_ok_check_after_db_up_s']} s,"
        f" last 503 answered at +{outage['last_503_after_db_up_s']} s"
    )
    print(
        f"checks: {integrity['checks_answered_201']} answered 201, {integrity['refetched_ok']} fetched back identical,"
        f" {integrity['rows_stored']} rows stored ({integrity['rows_not_in_a_201_answer']} whose answer was lost),"
        f" {integrity['rows_incomplete']} incomplete"
    )
    for name, ok in verdicts.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    print(f"load average before {before['loadavg']}, after {result['machine_after']['loadavg']}")
    print(f"written: {write_result('fault-db', result)}")
    if not all(verdicts.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
