"""Request body size limit: plain ASGI, before any route reads a byte.

A request whose ``Content-Length`` exceeds the limit is answered 413 at once, its body unread. A body without
a length (chunked) or longer than it declared is counted as it streams and stopped at the limit: the route's
read fails and the client gets the same 413, whatever the route made of the failed read. The limit is
``settings.max_request_bytes``, or ``max_upload_bytes`` + 1 MiB of form overhead when that is 0, so a file
just over the upload limit still gets the upload limit's own message (``api/uploads.py``).
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gis_platform.settings import Settings

FORM_OVERHEAD_BYTES = 1024 * 1024


def request_limit(settings: Settings) -> int:
    """The largest request body the API accepts, in bytes."""
    return settings.max_request_bytes or settings.max_upload_bytes + FORM_OVERHEAD_BYTES


class RequestTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes the limit (an HTTPException, so routes re-raise it)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than the limit of {limit} bytes")


def _error(status: int, error: str, message: str, **details: object) -> tuple[Message, Message]:
    body = json.dumps({"error": error, "message": message, "details": details}, ensure_ascii=False).encode()
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    }
    return start, {"type": "http.response.body", "body": body}


def too_large(limit: int, size: int | None = None) -> tuple[Message, Message]:
    declared = f" ({size} bytes declared)" if size is not None else ""
    message = f"请求体过大 / request body larger than the limit of {limit} bytes{declared}"
    return _error(413, "request_too_large", message, limit_bytes=limit)


class RequestSizeLimitMiddleware:
    """Refuse request bodies larger than ``request_limit(settings)`` with 413 and a JSON body naming the limit."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.limit = request_limit(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit
        declared = _content_length(scope)
        if declared == -1:
            for message in _error(400, "bad_request", "Content-Length is not a non-negative integer"):
                await send(message)
            return
        if declared is not None and declared > limit:
            for message in too_large(limit, declared):
                await send(message)
            return

        received = 0
        exceeded = False
        started = False

        async def counted_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise RequestTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise RequestTooLarge(limit)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # the route's answer to its failed read is replaced by the 413 below
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except RequestTooLarge:
            if started:
                raise
        if exceeded and not started:
            for message in too_large(limit):
                await send(message)


def _content_length(scope: Scope) -> int | None:
    """The declared body length; None when there is none, -1 when it is not a number."""
    largest: int | None = None
    for name, value in scope.get("headers") or ():
        if name.lower() == b"content-length":
            text = value.decode("latin-1").strip()
            if not text.isdigit():
                return -1
            largest = max(largest or 0, int(text))
    return largest
