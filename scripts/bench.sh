#!/usr/bin/env bash
# Run a benchmark against a throwaway bench database:  scripts/bench.sh import [--repeat N]
#   import | checks | tiles | paint           benchmarks (bench/README.md)
#   load                                       50 clients × 60 s of mixed requests (bench/load.py)
#   fault-db                                   PostgreSQL stopped and started mid-load (bench/fault_db_restart.py);
#                                              on the project-local cluster unless GIS_LOCAL_CLUSTER=0
#   fault-import                               an import killed with SIGKILL mid-way (bench/fault_import_kill.py)
#   hostile                                    issue 13's hostile uploads; a second client's p95 idle vs under attack
#                                              (bench/bench_hostile.py)
#   compare checks|import --base DIR          this tree against another checkout, interleaved rounds
#                                              (bench/compare_trees.py; DIR needs its own .venv)
source "$(dirname "$0")/lib.sh"
unset DATABASE_URL
name="${1:-}"; shift || true
case "$name" in
  import|checks|tiles|paint) module="bench.bench_$name" ;;
  load) module="bench.load" ;;
  fault-db)
    module="bench.fault_db_restart"
    # the fault stops the cluster: by default the project-local one, which nothing else uses
    export GIS_LOCAL_CLUSTER="${GIS_LOCAL_CLUSTER:-1}" ;;
  fault-import) module="bench.fault_import_kill" ;;
  hostile) module="bench.bench_hostile" ;;
  compare) module="bench.compare_trees" ;;
  *) die "usage: scripts/bench.sh import|checks|tiles|paint|load|fault-db|fault-import|hostile|compare [args]" ;;
esac
ensure_system_packages
ensure_venv
choose_database_server
BENCH_DB="gis_bench_$$"
cleanup() { psql_admin -c "DROP DATABASE IF EXISTS \"$BENCH_DB\" WITH (FORCE)" >/dev/null 2>&1 || true; }
trap cleanup EXIT
ensure_database "$BENCH_DB"
export GIS_BENCH_DATABASE_URL="$GIS_DATABASE_URL"
export GIS_BENCH_SERVER_URL="${DATABASE_SERVER_URL:-postgresql://postgres@127.0.0.1:5432}"
unset GIS_DATABASE_URL
cd "$ROOT"
"$VENV/bin/python" -m "$module" "$@"
