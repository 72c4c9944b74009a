"""Engine factory and session settings. Nothing connects at import time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection
from sqlalchemy.engine.url import make_url

from .settings import Settings

# PostgreSQL's parallel query and JIT make short spatial queries several times slower on 2 cores.
_SESSION_SETUP = "SET max_parallel_workers_per_gather = 0; SET jit = off"


def normalise_url(url: str) -> str:
    """Accept ``postgres://`` and ``postgresql://`` URLs and use the psycopg2 driver."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1) if url.startswith("postgres://") else url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return parsed.render_as_string(hide_password=False)


def make_engine(settings: Settings, *, pool_size: int = 5) -> Engine:
    engine = create_engine(
        normalise_url(settings.database_url),
        pool_size=pool_size,
        max_overflow=5,
        pool_pre_ping=True,
        future=True,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        with dbapi_conn.cursor() as cur:
            cur.execute(_SESSION_SETUP)
            if settings.statement_timeout_ms:
                cur.execute("SET statement_timeout = %s", (settings.statement_timeout_ms,))
        dbapi_conn.commit()

    return engine


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in one transaction: committed on success, rolled back on any error."""
    with engine.begin() as conn:
        yield conn


def postgis_version(conn: Connection) -> str | None:
    return conn.execute(text("SELECT extversion FROM pg_extension WHERE extname = 'postgis'")).scalar()
