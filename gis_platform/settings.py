"""Platform settings: one object, read once from the environment (prefix ``GIS_``) and passed in."""

from __future__ import annotations

from pathlib import Path

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


def load_settings() -> Settings:
    return Settings()
