"""Platform settings: one object, read once from the environment (prefix ``GIS_``) and passed in."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    """Configuration of the core, the CLI and the API."""

    model_config = SettingsConfigDict(env_prefix="GIS_", env_file=None, extra="ignore")

    database_url: str = Field(
        default="postgresql+psycopg2://postgres@127.0.0.1:5432/gis_platform",
        validation_alias=AliasChoices("GIS_DATABASE_URL", "DATABASE_URL"),
        description="SQLAlchemy URL of the PostGIS database.",
    )
    layers_dir: Path = Field(default=REPO_ROOT / "layers", description="Folder of the layer catalogue data.")
    # Import limits: guard against zip bombs and absurd uploads.
    max_zip_members: int = 200
    max_uncompressed_bytes: int = 2 * 1024**3
    max_compression_ratio: float = 200.0
    import_batch_size: int = Field(default=20_000, description="features read, prepared and COPYed per batch")
    # Compliance checks
    max_parcel_vertices: int = 20_000
    max_parcels_per_request: int = 1_000
    max_upload_bytes: int = 50 * 1024 * 1024
    max_parcel_parts: int = Field(
        default=200, ge=1, description="polygons in one multi-part parcel (the overlay grows with parts × features)"
    )
    max_file_vertices: int = Field(
        default=1_000_000, ge=1, description="vertices in one uploaded parcel or batch file, counted while reading"
    )
    max_dxf_entities: int = Field(
        default=20_000, ge=1, description="entities in an uploaded DXF's model space, counted before it is parsed"
    )
    check_time_budget_s: float = Field(
        default=30.0, gt=0, description="time one check request may take (its SQL cancelled past it)"
    )
    upload_time_budget_s: float = Field(
        default=300.0, gt=0, description="time the checks of one uploaded file may take together (then: batch)"
    )
    # The sandbox: uploaded files are read in warm worker processes with limits (gis_platform/sandbox.py)
    sandbox_workers: int = Field(default=2, ge=1, le=32, description="warm sandbox workers per server process")
    sandbox_cpu_s: float = Field(default=20.0, gt=0, description="CPU seconds to read one uploaded file")
    sandbox_wall_s: float = Field(default=30.0, gt=0, description="wall-clock seconds to read one uploaded file")
    sandbox_memory_mb: int = Field(default=1024, ge=64, description="sandbox worker RSS while reading an upload")
    sandbox_import_cpu_s: float = Field(default=900.0, gt=0, description="CPU seconds of one import over HTTP")
    sandbox_import_wall_s: float = Field(default=1800.0, gt=0, description="wall seconds of one import over HTTP")
    sandbox_import_memory_mb: int = Field(default=3072, ge=64, description="worker RSS during an import over HTTP")
    sandbox_queue_timeout_s: float = Field(
        default=30.0, ge=0, description="how long a request waits for a free sandbox worker (then 503)"
    )
    sandbox_dir: Path | None = Field(
        default=None, description="where sandbox workspaces live (default: the system temp dir); swept at start"
    )
    batch_check_threads: int = Field(default=0, ge=0, le=16, description="threads per batch job (0: the default, 2)")
    # Web map
    basemap_url: str | None = Field(
        default=None, description="optional online XYZ basemap template, e.g. Tianditu with a key; off by default"
    )
    basemap_attribution: str = ""
    dem_path: Path | None = Field(default=None, description="DEM GeoTIFF for the offline hillshade basemap")
    tile_cache_entries: int = 2048
    tile_version_ttl_s: float = Field(default=1.0, description="how long tiles trust a layer's current version")
    udb_expansion_limit: float = Field(default=1.3, description="城镇开发边界扩展倍数 limit")
    statement_timeout_ms: int = 0
    # Access control (issue #5)
    anonymous_read: bool = Field(
        default=False, description="open the map and dashboard read-only without login (trusted intranets only)"
    )
    session_idle_minutes: int = Field(default=60, ge=1, description="web session idle timeout")
    session_max_hours: int = Field(default=12, ge=1, description="absolute lifetime of a web session")
    access_token_minutes: int = Field(default=30, ge=1, description="lifetime of a bearer token from /auth/token")
    session_cookie_secure: bool = Field(default=False, description="send the session cookie over HTTPS only")
    auth_cache_ttl_s: float = Field(default=5.0, ge=0, description="how long a worker trusts a checked credential")
    min_password_length: int = Field(default=10, ge=8)
    rate_limit_user_per_minute: int = Field(
        default=3000, ge=0, description="requests per user per minute (0: off); map tiles count, so keep it high"
    )
    rate_limit_api_key_per_minute: int = Field(default=1200, ge=0, description="default per API key (0: off)")
    rate_limit_anonymous_per_minute: int = Field(default=300, ge=0, description="per client address (0: off)")
    login_attempts_per_minute: int = Field(default=10, ge=1, description="login attempts per address and name")
    max_request_bytes: int = Field(
        default=0, ge=0, description="largest request body (0: max_upload_bytes + 1 MiB of form overhead)"
    )
    # Operations
    log_format: Literal["json", "text"] = Field(
        default="json", description="log lines as JSON objects (one per line) or plain text"
    )
    log_level: str = Field(default="INFO", description="root log level: DEBUG, INFO, WARNING, ERROR")
    db_connect_timeout_s: int = Field(
        default=5, ge=0, description="give up connecting to PostgreSQL after this many seconds (0: no limit)"
    )


def load_settings() -> Settings:
    return Settings()
