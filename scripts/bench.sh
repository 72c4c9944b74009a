#!/usr/bin/env bash
# Run a benchmark against a throwaway bench database:  scripts/bench.sh import [--repeat N]
source "$(dirname "$0")/lib.sh"
unset DATABASE_URL
ensure_system_packages
ensure_venv
choose_database_server
name="${1:-}"; shift || true
case "$name" in
  import|checks|tiles|paint) ;;
  *) die "usage: scripts/bench.sh import|checks|tiles|paint [args]" ;;
esac
BENCH_DB="gis_bench_$$"
cleanup() { psql_admin -c "DROP DATABASE IF EXISTS \"$BENCH_DB\" WITH (FORCE)" >/dev/null 2>&1 || true; }
trap cleanup EXIT
ensure_database "$BENCH_DB"
export GIS_BENCH_DATABASE_URL="$GIS_DATABASE_URL"
unset GIS_DATABASE_URL
cd "$ROOT"
"$VENV/bin/python" -m "bench.bench_$name" "$@"
