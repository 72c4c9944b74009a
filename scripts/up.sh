#!/usr/bin/env bash
# Bring up the whole platform with the demo county loaded, then serve it on http://127.0.0.1:8000
#   scripts/up.sh            install what is missing, migrate, generate + import the demo, serve
#   scripts/up.sh --no-serve everything but the server (used by CI and docker)
source "$(dirname "$0")/lib.sh"

SERVE=1
for arg in "$@"; do
  case "$arg" in
    --no-serve) SERVE=0 ;;
    *) die "unknown option $arg (use --no-serve)" ;;
  esac
done

ensure_system_packages
ensure_venv
ensure_web_packages
choose_database_server
ensure_database "${GIS_DATABASE_NAME:-gis_platform}"

GP="$VENV/bin/gis-platform"
log "migrating the database"
"$GP" db upgrade
if [ ! -f "$ROOT/data/demo/manifest.json" ]; then
  log "generating the demo county (data/demo)"
  "$GP" demo generate --out "$ROOT/data/demo"
fi
log "importing the demo county through the import path (unchanged files are skipped)"
"$GP" demo load --dir "$ROOT/data/demo"
"$GP" layers
log "demo accounts and API key (credentials in var/demo-credentials.json, git-ignored)"
"$GP" demo accounts

if [ "$SERVE" -eq 1 ]; then
  log "serving on http://127.0.0.1:${GIS_PORT:-8000}  (API docs: /docs)"
  exec "$GP" serve --host "${GIS_HOST:-127.0.0.1}" --port "${GIS_PORT:-8000}" --workers "${GIS_WORKERS:-1}"
fi
