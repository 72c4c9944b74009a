#!/usr/bin/env bash
# Run the whole test suite (ruff, mypy, pytest) on real PostGIS in a throwaway database.
#   scripts/test.sh [pytest args...]
source "$(dirname "$0")/lib.sh"
# The suite makes its own throwaway database on the local server; it never uses the platform's
# DATABASE_URL. To run against another server, set GIS_TEST_DATABASE_URL to an empty PostGIS database.
PRESET_TEST_URL="${GIS_TEST_DATABASE_URL:-}"
unset DATABASE_URL

ensure_system_packages
ensure_venv
ensure_web_packages
ensure_browser

TEST_DB="gis_test_$$_$(date +%s)"
if [ -n "$PRESET_TEST_URL" ]; then
  export GIS_TEST_DATABASE_URL="$PRESET_TEST_URL"
else
  choose_database_server
  cleanup() { psql_admin -c "DROP DATABASE IF EXISTS \"$TEST_DB\" WITH (FORCE)" >/dev/null 2>&1 || true; }
  trap cleanup EXIT
  ensure_database "$TEST_DB"
  export GIS_TEST_DATABASE_URL="$GIS_DATABASE_URL"
fi
# Tests must not touch the platform's own database.
unset GIS_DATABASE_URL

cd "$ROOT"
log "ruff"
"$VENV/bin/ruff" check gis_platform api data tests bench
log "mypy"
"$VENV/bin/mypy" gis_platform api
log "pytest (database $TEST_DB)"
"$VENV/bin/python" -m pytest "$@"
