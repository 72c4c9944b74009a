# Shared setup steps for scripts/up.sh and scripts/test.sh (sourced, not run).
# Installs only what is missing: Debian packages, the Python venv, and a PostGIS database.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
VAR="$ROOT/var"
LOCAL_PG_PORT="${GIS_LOCAL_PG_PORT:-55432}"
APT_PACKAGES=(postgresql postgresql-contrib gdal-bin python3-venv curl ca-certificates libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fontconfig fonts-noto-cjk poppler-utils)

log() { printf '\033[1;34m[gis-platform]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[gis-platform] error:\033[0m %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_missing() {
  local pkg missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  echo "${missing[@]:-}"
}

APT_UPDATED=0
apt_install() {
  local missing
  missing="$(apt_missing "$@")"
  [ -z "${missing// /}" ] && return 0
  log "installing Debian packages: $missing"
  if [ "$APT_UPDATED" -eq 0 ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
  # shellcheck disable=SC2086
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
}

pg_major() {
  # The newest PostgreSQL server installed from Debian's packages.
  ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1
}

ensure_system_packages() {
  apt_install "${APT_PACKAGES[@]}"
  local major
  major="$(pg_major)"
  [ -n "$major" ] || die "PostgreSQL server binaries not found under /usr/lib/postgresql"
  apt_install "postgresql-${major}-postgis-3"
}

ensure_venv() {
  local stamp="$VENV/.requirements.sha256" want
  want="$(cat "$ROOT/requirements.lock" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
  if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  local py="${PYTHON:-python3.11}"
  command -v "$py" >/dev/null 2>&1 || py=python3
  "$py" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' \
    || die "Python 3.11 is required ($py is $("$py" --version 2>&1)); set PYTHON=/path/to/python3.11"
  log "creating the Python environment in .venv"
  [ -x "$VENV/bin/python" ] || "$py" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$VENV/bin/python" -m pip install -q -r "$ROOT/requirements.lock"
  "$VENV/bin/python" -m pip install -q --no-deps -e "$ROOT"
  echo "$want" > "$stamp"
}

# Front-end packages (Leaflet and plugins) come from npm into web/node_modules: the map works offline.
ensure_web_packages() {
  [ -f "$ROOT/web/package.json" ] || return 0
  command -v npm >/dev/null 2>&1 || apt_install nodejs npm
  local stamp="$ROOT/web/node_modules/.lock.sha256" want
  want="$(cat "$ROOT/web/package.json" "$ROOT/web/package-lock.json" 2>/dev/null | sha256sum | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  log "installing front-end packages (npm ci in web/)"
  (cd "$ROOT/web" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > "$stamp"
}

# A real headless browser for the web map tests: Debian's Chromium (no browser downloads).
ensure_browser() {
  apt_install chromium chromium-driver fonts-noto-cjk
}

server_answers() {  # host port
  "/usr/lib/postgresql/$(pg_major)/bin/pg_isready" -q -h "$1" -p "$2" -t 3
}

psql_admin() {  # url-less admin psql against the chosen server
  psql -X -q -v ON_ERROR_STOP=1 -h "$PGHOST_CHOSEN" -p "$PGPORT_CHOSEN" -U postgres -d postgres "$@"
}

start_local_cluster() {
  local bin data run
  bin="/usr/lib/postgresql/$(pg_major)/bin"
  data="$VAR/pgdata"
  run="$VAR/pgrun"
  mkdir -p "$VAR"
  if [ "$(id -u)" -eq 0 ]; then
    install -d -o postgres -g postgres -m 700 "$data"
    install -d -o postgres -g postgres "$run"
    local runas=(runuser -u postgres --)
  else
    mkdir -p "$data" "$run"; chmod 700 "$data"
    local runas=()
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    log "creating a project-local PostgreSQL cluster in var/pgdata"
    "${runas[@]}" "$bin/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  if ! server_answers 127.0.0.1 "$LOCAL_PG_PORT"; then
    log "starting the project-local PostgreSQL on 127.0.0.1:$LOCAL_PG_PORT"
    "${runas[@]}" "$bin/pg_ctl" -D "$data" -l "$run/postgresql.log" -w -t 60 start \
      -o "-p $LOCAL_PG_PORT -k $run -c listen_addresses=127.0.0.1" >/dev/null
  fi
}

# Sets DATABASE_SERVER_URL (no database name) and PGHOST_CHOSEN/PGPORT_CHOSEN.
choose_database_server() {
  if [ -n "${DATABASE_URL:-}" ]; then
    log "using DATABASE_URL"
    return 0
  fi
  # GIS_LOCAL_CLUSTER=1 always uses the project-local cluster (isolation, or to try the no-server path)
  if [ "${GIS_LOCAL_CLUSTER:-0}" != "1" ] && server_answers 127.0.0.1 5432; then
    PGHOST_CHOSEN=127.0.0.1; PGPORT_CHOSEN=5432
  else
    start_local_cluster
    PGHOST_CHOSEN=127.0.0.1; PGPORT_CHOSEN="$LOCAL_PG_PORT"
  fi
  export PGHOST_CHOSEN PGPORT_CHOSEN
  DATABASE_SERVER_URL="postgresql://postgres@${PGHOST_CHOSEN}:${PGPORT_CHOSEN}"
  export DATABASE_SERVER_URL
}

ensure_database() {  # name -> exports GIS_DATABASE_URL
  local name="$1"
  if [ -n "${DATABASE_URL:-}" ]; then
    export GIS_DATABASE_URL="$DATABASE_URL"
    return 0
  fi
  if [ -z "$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$name'")" ]; then
    log "creating database $name"
    psql_admin -c "CREATE DATABASE \"$name\""
  fi
  psql -X -q -h "$PGHOST_CHOSEN" -p "$PGPORT_CHOSEN" -U postgres -d "$name" -c "CREATE EXTENSION IF NOT EXISTS postgis" \
    || die "PostGIS could not be enabled in $name: is postgresql-$(pg_major)-postgis-3 installed for this server?"
  export GIS_DATABASE_URL="${DATABASE_SERVER_URL}/${name}"
}
