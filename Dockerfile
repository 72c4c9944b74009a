# API image: Debian bookworm (Python 3.11, GDAL, PostgreSQL client) + the pinned Python dependencies.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends gdal-bin postgresql-client nodejs npm \
        libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fontconfig fonts-noto-cjk \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.lock pyproject.toml README.md ./
RUN pip install -r requirements.lock
COPY gis_platform ./gis_platform
COPY api ./api
COPY layers ./layers
COPY data ./data
COPY web ./web
RUN cd web && npm ci --no-audit --no-fund --loglevel=error
RUN pip install --no-deps -e .

EXPOSE 8000
# Wait for the database (compose healthcheck), migrate, load the demo county through the import path,
# create the demo accounts (var/demo-credentials.json, on the 'credentials' volume), serve.
CMD ["sh", "-c", "gis-platform db upgrade && ( [ -f data/demo/manifest.json ] || gis-platform demo generate ) && gis-platform demo load && gis-platform demo accounts && gis-platform serve --host 0.0.0.0 --port 8000 --workers ${GIS_WORKERS:-2}"]
