"""Request ids, structured logs and the request middleware (access log, metrics, outage net).

* **Request id.** Every HTTP request gets an id: the client's ``X-Request-ID`` when it sends a sane one
  (≤ 128 printable ASCII characters), else a fresh one. It is returned in the ``X-Request-ID`` response
  header and put on every log record written while the request runs (a :mod:`contextvars` variable, which
  Starlette carries into the thread pool that runs sync routes).
* **Logs.** :func:`configure_logging` (called once by ``create_app``) installs one handler on the root logger:
  JSON lines (``GIS_LOG_FORMAT=json``, the default) or text (``text``), at ``GIS_LOG_LEVEL``. Each JSON line
  has ``time``, ``level``, ``logger``, ``message``, ``request_id`` and any ``extra`` fields; the access line
  (logger ``gis_platform.access``) adds ``method``, ``path``, ``route``, ``status``, ``duration_ms``, ``client``.
  uvicorn's own loggers go through the same handler and its access log is off (``gis-platform serve``).
* **Middleware.** :class:`RequestMiddleware` is plain ASGI (no per-request task or body buffering): it sets the
  request id, times the request, writes the access line and records the Prometheus metrics by route template.
  A database outage error that reaches it before the first body byte (e.g. from a streaming body) becomes the
  usual 503 JSON body.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from gis_platform.db import is_database_unavailable

from . import metrics
from .errors import DATABASE_UNAVAILABLE

#: Sent with every response: no MIME sniffing, no framing by other sites, no full URLs (with ids) leaked onwards.
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"SAMEORIGIN"),
    (b"referrer-policy", b"same-origin"),
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_HEADER_RAW = REQUEST_ID_HEADER.lower().encode("latin-1")
_SANE_REQUEST_ID = re.compile(rb"^[\x21-\x7e]{1,128}$")  # printable ASCII, no spaces: safe in logs and headers

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("gis_request_id", default=None)

access_log = logging.getLogger("gis_platform.access")
log = logging.getLogger(__name__)

# LogRecord attributes that are not "extra" fields
_RECORD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id", "taskName"}
_RECORD_ATTRS |= {"color_message"}  # uvicorn's copy of the message with terminal colours


def current_request_id() -> str | None:
    """The id of the request being served in this context, if any."""
    return request_id_var.get()


def new_request_id() -> str:
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every record passing the handler (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601, ms), level, logger, message, request_id, extras, exc_info."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            doc["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def make_formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


_HANDLER_NAME = "gis-platform"


def configure_logging(log_format: str = "json", level: str = "INFO", stream: Any = None) -> logging.Handler:
    """Install the platform's handler on the root logger (replacing a previous one of ours); idempotent.

    uvicorn's loggers are made to propagate to it, so a line is written once in one format.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(make_formatter(log_format))
    handler.addFilter(RequestIdFilter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        uv = logging.getLogger(name)
        uv.handlers.clear()
        uv.propagate = True
    uv_access = logging.getLogger("uvicorn.access")  # our access line replaces uvicorn's
    uv_access.handlers.clear()
    uv_access.propagate = False
    # Alembic logs its plugin set-up at INFO each time the readiness check reads the migration scripts
    logging.getLogger("alembic").setLevel(logging.WARNING if root.level > logging.DEBUG else logging.DEBUG)
    return handler


def uvicorn_log_config(log_format: str, level: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for ``uvicorn.run``: the same format as the app, from the first line on."""
    formatter: dict[str, Any] = {"()": f"{__name__}.JsonFormatter"} if log_format == "json" else {"format": TEXT_FORMAT}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": f"{__name__}.RequestIdFilter"}},
        "formatters": {"platform": formatter},
        "handlers": {
            _HANDLER_NAME: {
                "class": "logging.StreamHandler",
                "formatter": "platform",
                "filters": ["request_id"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": [_HANDLER_NAME], "level": level.upper()},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False},  # our access line replaces it
        },
    }


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/api/v1/checks/{check_id}``), never the raw path (bounded labels)."""
    route = scope.get("route")
    # path_format drops converters ({z:int} → {z}); a mount's is "/web/{path}": one label for everything under it
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(path) if path else "<unmatched>"


def _request_id_from(scope: Scope) -> str:
    for name, value in scope.get("headers") or ():
        if name == _REQUEST_ID_HEADER_RAW:
            if _SANE_REQUEST_ID.match(value):
                return str(value.decode("ascii"))
            break
    return new_request_id()


class RequestMiddleware:
    """Request id, access log line, Prometheus metrics; 503 JSON for an outage error that reaches it unanswered."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id_from(scope)
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id  # request.state.request_id (audit entries)
        started = time.perf_counter()
        status = 500
        response_started = False  # the start message has gone to the server
        pending_start: Message | None = None
        header = (_REQUEST_ID_HEADER_RAW, request_id.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            # The start message is held until the first body message: a streaming body that fails on the
            # database before its first chunk still gets the 503 instead of a 200 with a cut-off body.
            nonlocal status, response_started, pending_start
            if message["type"] == "http.response.start":
                status = int(message["status"])
                pending_start = {**message, "headers": [*message.get("headers", ()), header, *SECURITY_HEADERS]}
                return
            if pending_start is not None:
                response_started = True
                start, pending_start = pending_start, None
                await send(start)
            await send(message)

        metrics.IN_PROGRESS.inc()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if not response_started:
                status = 500  # what the server error middleware outside answers, unless it is an outage
            if response_started or not is_database_unavailable(exc):
                raise
            pending_start = None
            # e.g. raised by a streaming body before its first chunk, or outside the exception handlers
            log.warning("database unavailable: %s", type(exc).__name__)
            body = json.dumps(DATABASE_UNAVAILABLE, ensure_ascii=False).encode("utf-8")
            await send_with_id(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"retry-after", b"5"),
                    ],
                }
            )
            await send_with_id({"type": "http.response.body", "body": body})
        finally:
            metrics.IN_PROGRESS.dec()
            duration = time.perf_counter() - started
            route = route_template(scope)
            method = scope.get("method", "")
            metrics.observe_request(method, route, status, duration)
            access_log.info(
                "%s %s %s",
                method,
                scope.get("path", ""),
                status,
                extra={
                    "method": method,
                    "path": scope.get("path", ""),
                    "route": route,
                    "status": status,
                    "duration_ms": round(duration * 1000, 2),
                    "client": (scope.get("client") or ("", 0))[0],
                },
            )
            request_id_var.reset(token)
