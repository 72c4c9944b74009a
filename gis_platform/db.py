"""Engine factory and session settings. Nothing connects at import time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2
import psycopg2.errors
from sqlalchemy import Engine, create_engine, event, exc, text
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


def libpq_dsn(url: str) -> str:
    """The database URL as libpq takes it (``postgresql://``), for a plain psycopg2 connection."""
    return make_url(normalise_url(url)).set(drivername="postgresql").render_as_string(hide_password=False)


def make_engine(settings: Settings, *, pool_size: int = 5) -> Engine:
    url = normalise_url(settings.database_url)
    connect_args: dict[str, Any] = {}
    if settings.db_connect_timeout_s and make_url(url).drivername == "postgresql+psycopg2":
        # a database host that does not answer fails the request after this long instead of hanging it
        connect_args["connect_timeout"] = settings.db_connect_timeout_s
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=5,
        # a pooled connection is pinged on checkout: after a database restart the first request reconnects
        # instead of failing on a dead socket, and a disconnect invalidates every older pooled connection
        pool_pre_ping=True,
        connect_args=connect_args,
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


def is_database_unavailable(error: BaseException | None) -> bool:
    """Whether an error means the database cannot be reached (down, restarting, connection lost, pool exhausted).

    True for SQLAlchemy's ``OperationalError`` / ``InterfaceError`` and any ``DBAPIError`` that invalidated its
    connection, for pool checkout timeouts and disconnections, and for the same psycopg2 errors raised unwrapped;
    also when such an error is the cause or context of ``error``. A bad statement (``ProgrammingError``, an
    integrity violation) is not an outage, nor is a statement cancelled by ``statement_timeout``.
    """
    for _ in range(8):  # the __cause__/__context__ chain, bounded
        if error is None:
            return False
        if isinstance(error, psycopg2.errors.QueryCanceled) or (
            isinstance(error, exc.DBAPIError) and isinstance(error.orig, psycopg2.errors.QueryCanceled)
        ):
            return False
        if isinstance(error, exc.DBAPIError) and (
            error.connection_invalidated or isinstance(error, exc.OperationalError | exc.InterfaceError)
        ):
            return True
        if isinstance(error, exc.DisconnectionError | exc.TimeoutError):
            return True
        if isinstance(error, psycopg2.OperationalError | psycopg2.InterfaceError):
            return True
        error = error.__cause__ or error.__context__
    return False


def conditions(*terms: tuple[str, Any, str]) -> tuple[str, dict[str, Any]]:
    """A WHERE condition and its parameters from ``(name, value, clause)`` terms, keeping those whose value is set.

    Each ``clause`` is fixed SQL naming ``:name``; the value is only ever a bound parameter. With no term set the
    condition is ``TRUE``.
    """
    kept = [(name, value, clause) for name, value, clause in terms if value is not None]
    return " AND ".join(clause for _, _, clause in kept) or "TRUE", {name: value for name, value, _ in kept}


def fetch_page(
    conn: Connection,
    *,
    columns: str,
    table: str,
    where: str,
    params: dict[str, Any],
    order_by: str,
    limit: int,
    offset: int,
) -> tuple[int, list[Any]]:
    """How many rows of ``table`` match ``where`` in all, and one page of them in ``order_by`` order."""
    total = conn.execute(text(f"SELECT count(*) FROM {table} WHERE {where}"), params).scalar_one()
    rows = conn.execute(
        text(f"SELECT {columns} FROM {table} WHERE {where} ORDER BY {order_by} LIMIT :limit OFFSET :offset"),
        {**params, "limit": limit, "offset": offset},
    ).all()
    return int(total), list(rows)
