"""A time budget per request: its SQL is cancelled past it, and the request ends with a clear error.

A check's time is mostly its overlay in PostgreSQL, and a hostile parcel (many parts spread over many red-line
features) can make that run for minutes while holding a connection and a thread. Inside :func:`time_budget`,
every transaction begun on an engine prepared with :func:`install` first sets ``statement_timeout`` for itself
(``SET LOCAL``) to what is left of the budget, or refuses to begin once nothing is left; a statement cancelled
that way, or the refusal, becomes :class:`~gis_platform.errors.TimeBudgetError` naming the budget (503), and the
transaction rolls back, so nothing is stored. Python work between statements is counted too: it uses up the
budget the next transaction sees.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2.errors
from sqlalchemy import Engine, event, exc

from .errors import TimeBudgetError

#: (deadline on time.monotonic(), budget in seconds) of the request running in this context
_deadline: contextvars.ContextVar[tuple[float, float] | None] = contextvars.ContextVar("time_budget", default=None)
#: The least statement_timeout set: a budget nearly spent still gives a statement this long (PostgreSQL reads 0 as
#: "no limit").
MIN_STATEMENT_MS = 1


def budget_error(budget_s: float) -> TimeBudgetError:
    return TimeBudgetError(
        f"请求超过时间预算 {budget_s:g} 秒，已取消，未保存 / the request went past its time budget of {budget_s:g} s"
        " and was cancelled; nothing was stored. Retry later, or simplify the parcel or split the file",
        budget_s=budget_s,
        retry_after_s=5,
    )


@contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    """Run the block within ``seconds``: its transactions get a ``statement_timeout`` of what is left."""
    token = _deadline.set((time.monotonic() + seconds, seconds))
    try:
        yield
    except exc.DBAPIError as error:
        if isinstance(error.orig, psycopg2.errors.QueryCanceled):
            raise budget_error(seconds) from error
        raise
    finally:
        _deadline.reset(token)


def remaining_ms() -> int | None:
    """Milliseconds left of this context's budget (None: no budget); TimeBudgetError when none are left."""
    current = _deadline.get()
    if current is None:
        return None
    deadline, budget = current
    left = deadline - time.monotonic()
    if left <= 0:
        raise budget_error(budget)
    return max(int(left * 1000), MIN_STATEMENT_MS)


def install(engine: Engine) -> None:
    """Give ``engine``'s transactions the statement timeout of the budget they run in (once per engine)."""
    if event.contains(engine, "begin", _on_begin):
        return
    event.listen(engine, "begin", _on_begin)


def _on_begin(conn: Any) -> None:
    left = remaining_ms()
    if left is None:
        return
    # the driver's own cursor: this runs while SQLAlchemy begins the transaction, the SET LOCAL is its first statement
    with conn.connection.dbapi_connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = %s", (left,))
