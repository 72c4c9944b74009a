"""One table maps domain errors to HTTP statuses; routes never build error JSON themselves."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError

from gis_platform import errors

STATUS_BY_ERROR: list[tuple[type[errors.PlatformError], int]] = [
    (errors.UnknownLayerError, 404),
    (errors.UnknownLandUseError, 422),
    (errors.NotFoundError, 404),
    (errors.ParcelError, 422),
    (errors.UnsafeArchiveError, 422),
    (errors.InputFileError, 422),
    (errors.ConfigurationError, 500),
    (errors.DatabaseError, 503),
    (errors.PlatformError, 400),
]


def status_for(error: errors.PlatformError) -> int:
    return next(status for cls, status in STATUS_BY_ERROR if isinstance(error, cls))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(errors.PlatformError)
    async def platform_error(_request: Request, exc: errors.PlatformError) -> JSONResponse:
        return JSONResponse(exc.to_dict(), status_code=status_for(exc))

    @app.exception_handler(OperationalError)
    async def database_down(_request: Request, exc: OperationalError) -> JSONResponse:
        return JSONResponse(
            {"error": "database_unavailable", "message": "数据库暂不可用 / the database is unavailable, retry shortly"},
            status_code=503,
        )
