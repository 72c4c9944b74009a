"""Run the Alembic migrations programmatically (``gis-platform db upgrade``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from .catalog import load_catalog
from .db import make_engine, normalise_url
from .plane_store import PlaneUpdate, ensure_survey_plane
from .settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", normalise_url(settings.database_url).replace("%", "%%"))
    config.attributes["layers_dir"] = settings.layers_dir  # migration 0010 snapshots the catalogue and rules there
    return config


def upgrade(settings: Settings, revision: str = "head") -> list[PlaneUpdate]:
    """Run the migrations, then bring every stored layer version into the catalogue's survey plane."""
    command.upgrade(alembic_config(settings), revision)
    if revision != "head":
        return []
    engine = make_engine(settings)
    try:
        return ensure_survey_plane(engine, load_catalog(settings.layers_dir).survey_plane)
    finally:
        engine.dispose()


def head_revision(settings: Settings) -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(settings)).get_current_head()
