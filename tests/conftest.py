"""Shared fixtures: a real PostGIS test database, migrated once, emptied between tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from gis_platform.catalog import Catalog, load_catalog
from gis_platform.db import make_engine
from gis_platform.settings import Settings


def _test_database_url() -> str:
    url = os.environ.get("GIS_TEST_DATABASE_URL")
    if not url:
        pytest.fail("GIS_TEST_DATABASE_URL is not set: run the suite with scripts/test.sh", pytrace=False)
    return url


@pytest.fixture(scope="session")
def settings() -> Settings:
    # tiles see a re-import at once (the service default remembers the current version for 1 s)
    return Settings(database_url=_test_database_url(), import_batch_size=1000, tile_version_ttl_s=0.0)


@pytest.fixture(scope="session")
def catalog(settings: Settings) -> Catalog:
    return load_catalog(settings.layers_dir)


@pytest.fixture(scope="session")
def migrated_engine(settings: Settings) -> Iterator[Engine]:
    from gis_platform import migrate

    migrate.upgrade(settings)
    engine = make_engine(settings)
    yield engine
    engine.dispose()


def empty_layer_store(engine: Engine) -> None:
    with engine.begin() as conn:
        partitions = (
            conn.execute(text("SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'feature'::regclass"))
            .scalars()
            .all()
        )
        for table in partitions:
            conn.execute(text(f"DROP TABLE {table}"))
        conn.execute(
            text(
                "TRUNCATE layer, layer_version, check_record, job, app_user, user_session, api_key"
                " RESTART IDENTITY CASCADE"
            )
        )


@pytest.fixture
def engine(migrated_engine: Engine) -> Iterator[Engine]:
    """The migrated test database with an empty layer store."""
    empty_layer_store(migrated_engine)
    yield migrated_engine
