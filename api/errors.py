"""One table maps domain errors to HTTP statuses; routes never build error JSON themselves."""

from __future__ import annotations

import psycopg2
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from gis_platform import accounts, errors
from gis_platform.config_snapshots import SnapshotMissingError
from gis_platform.db import is_database_unavailable
from gis_platform.replay import ReplayUnavailableError

STATUS_BY_ERROR: list[tuple[type[errors.PlatformError], int]] = [
    (accounts.AuthenticationError, 401),
    (accounts.PermissionDenied, 403),
    (accounts.RateLimitExceeded, 429),
    (accounts.AccountError, 422),
    (errors.UnknownLayerError, 404),
    (errors.UnknownLandUseError, 422),
    (errors.NotFoundError, 404),
    (ReplayUnavailableError, 409),
    (SnapshotMissingError, 409),
    (errors.ParcelError, 422),
    (errors.UnsafeArchiveError, 422),
    (errors.FileLimitError, 413),  # more features, vertices or entities than one upload may hold
    (errors.ProcessingLimitError, 413),  # reading it went past the sandbox's CPU, wall-time or memory limit
    (errors.InputFileError, 422),
    (errors.SandboxBusyError, 503),
    (errors.TimeBudgetError, 503),
    (errors.ConfigurationError, 500),
    (errors.DatabaseError, 503),
    (errors.PlatformError, 400),
]


def status_for(error: errors.PlatformError) -> int:
    return next(status for cls, status in STATUS_BY_ERROR if isinstance(error, cls))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(errors.PlatformError)
    async def platform_error(request: Request, exc: errors.PlatformError) -> Response:
        if isinstance(exc, accounts.AuthenticationError) and _browser_navigation(request):
            # a report link opened after the session ended: back to the map, which asks for the login first
            return RedirectResponse("/", status_code=303)
        return JSONResponse(exc.to_dict(), status_code=status_for(exc), headers=_headers(exc))

    async def database_down(_request: Request, exc: Exception) -> JSONResponse:
        # OperationalError: server down, restarting, connection refused or lost, statement timeout. Other driver
        # errors are an outage only when they cost the connection (``is_database_unavailable``); else a bug: 500.
        if getattr(getattr(exc, "orig", None), "pgcode", None) in TEXT_REFUSED_SQLSTATES:
            return invalid_text_response()  # a NUL (\u0000) in a JSON document the request wrote
        if not (isinstance(exc, OperationalError) or is_database_unavailable(exc)):
            raise exc
        return database_unavailable_response()

    for cls in (DBAPIError, DisconnectionError, PoolTimeoutError, psycopg2.OperationalError, psycopg2.InterfaceError):
        app.add_exception_handler(cls, database_down)

    async def nul_in_text(_request: Request, exc: Exception) -> JSONResponse:
        # psycopg2 refuses a NUL character in a text value before sending it: bad input, not a server error
        if "NUL (0x00)" not in str(exc):
            raise exc
        return invalid_text_response()

    app.add_exception_handler(ValueError, nul_in_text)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler, except that undecodable bytes in the input (a body that is not UTF-8) are shown
        # with replacement characters instead of failing the error response itself with a 500
        detail = jsonable_encoder(exc.errors(), custom_encoder={bytes: lambda b: b.decode("utf-8", "replace")})
        return JSONResponse({"detail": detail}, status_code=422)


#: SQLSTATEs of text PostgreSQL cannot store: untranslatable character (a \u0000 in jsonb), not in repertoire
TEXT_REFUSED_SQLSTATES = frozenset({"22P05", "22021"})


def invalid_text_response() -> JSONResponse:
    message = "文本中不能含 NUL 字符 / text values may not contain NUL (\\u0000) characters"
    return JSONResponse({"error": "invalid_text", "message": message}, status_code=422)


DATABASE_UNAVAILABLE = {
    "error": "database_unavailable",
    "message": "数据库暂不可用 / the database is unavailable, retry shortly",
}


def database_unavailable_response() -> JSONResponse:
    """The 503 every request gets while PostgreSQL cannot be reached."""
    return JSONResponse(DATABASE_UNAVAILABLE, status_code=503, headers={"Retry-After": "5"})


def _headers(exc: errors.PlatformError) -> dict[str, str] | None:
    if isinstance(exc, accounts.AuthenticationError):
        return {"WWW-Authenticate": "Bearer"}
    if isinstance(exc, accounts.RateLimitExceeded):
        return {"Retry-After": str(exc.details.get("retry_after_s", 60))}
    if isinstance(exc, errors.SandboxBusyError | errors.TimeBudgetError):
        return {"Retry-After": str(exc.details.get("retry_after_s", 5))}
    return None


def _browser_navigation(request: Request) -> bool:
    """A page the browser navigates to (a report link), not a script's or the web map's fetch."""
    return (
        request.method == "GET"
        and "text/html" in request.headers.get("accept", "")
        and request.headers.get("sec-fetch-mode", "navigate") == "navigate"
    )
