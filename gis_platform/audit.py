"""The audit trail (全过程留痕): who did what, when, from where, with what outcome.

Entries are written in the same transaction as the change they describe wherever there is one (a check,
an import, a user or key change), so a change without its entry cannot be committed. ``audit_event`` is
append-only: a trigger refuses UPDATE, DELETE and TRUNCATE (migration 0004).
"""

from __future__ import annotations

import csv
import datetime as dt
import getpass
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, Engine, text

from .db import conditions, fetch_page

ACTOR_KINDS = ("user", "api_key", "anonymous", "cli", "system")
OUTCOMES = ("ok", "denied", "failed")
EXPORT_COLUMNS = (
    "id",
    "at",
    "actor",
    "actor_kind",
    "role",
    "action",
    "target",
    "outcome",
    "ip",
    "request_id",
    "details",
)


@dataclass(frozen=True)
class Actor:
    """Who acts, and from where: a logged-in user, an API key, the CLI or the service itself."""

    name: str
    kind: str
    role: str | None = None
    ip: str | None = None
    request_id: str | None = None


def cli_actor() -> Actor:
    """The operating-system user running ``gis-platform`` on the server."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Actor(name=f"cli:{user}", kind="cli", role="admin")


SYSTEM = Actor(name="system", kind="system")


@dataclass(frozen=True)
class AuditEntry:
    actor: Actor
    action: str
    target: str | None = None
    outcome: str = "ok"
    details: dict[str, Any] | None = None

    def with_target(self, target: str) -> AuditEntry:
        return replace(self, target=target)


INSERT_SQL = (
    "INSERT INTO audit_event (actor, actor_kind, role, action, target, outcome, ip, request_id, details)"
    " VALUES (:actor, :actor_kind, :role, :action, :target, :outcome, :ip, :request_id, CAST(:details AS jsonb))"
)


def entry_params(entry: AuditEntry) -> dict[str, Any]:
    """Bind parameters of :data:`INSERT_SQL` (also used inside other statements' CTEs)."""
    return {
        "actor": entry.actor.name[:200],
        "actor_kind": entry.actor.kind,
        "role": entry.actor.role,
        "action": entry.action,
        "target": entry.target,
        "outcome": entry.outcome,
        "ip": entry.actor.ip,
        "request_id": entry.actor.request_id,
        "details": json.dumps(entry.details, ensure_ascii=False, default=str) if entry.details else None,
    }


def record(conn: Connection, entry: AuditEntry) -> None:
    """Append one entry inside the caller's transaction."""
    conn.execute(text(INSERT_SQL), entry_params(entry))


def record_now(engine: Engine, entry: AuditEntry) -> None:
    """Append one entry in a transaction of its own (logins, downloads, refusals)."""
    with engine.begin() as conn:
        record(conn, entry)


@dataclass(frozen=True)
class AuditFilter:
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    actor: str | None = None
    action: str | None = None
    outcome: str | None = None
    limit: int = 100
    offset: int = 0

    def where(self) -> tuple[str, dict[str, Any]]:
        return conditions(
            ("since", self.since, "at >= :since"),
            ("until", self.until, "at < :until"),
            ("actor", self.actor, "actor = :actor"),
            ("action", self.action, "action = :action"),
            ("outcome", self.outcome, "outcome = :outcome"),
        )


def _row_dict(row: Any) -> dict[str, Any]:
    item = dict(row._mapping)
    item["at"] = item["at"].isoformat()
    return item


def list_events(engine: Engine, filters: AuditFilter) -> dict[str, Any]:
    where, params = filters.where()
    with engine.connect() as conn:
        total, rows = fetch_page(
            conn,
            columns=", ".join(EXPORT_COLUMNS),
            table="audit_event",
            where=where,
            params=params,
            order_by="id DESC",
            limit=filters.limit,
            offset=filters.offset,
        )
    return {"total": total, "limit": filters.limit, "offset": filters.offset, "items": [_row_dict(r) for r in rows]}


def export_csv(engine: Engine, filters: AuditFilter) -> Iterator[str]:
    """Every matching entry, oldest first, as CSV text chunks (UTF-8 with BOM so Excel shows the Chinese)."""
    where, params = filters.where()
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow(EXPORT_COLUMNS)
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, max_row_buffer=2000).execute(
            text(f"SELECT {', '.join(EXPORT_COLUMNS)} FROM audit_event WHERE {where} ORDER BY id"), params
        )
        for row in result:
            item = _row_dict(row)
            item["details"] = json.dumps(item["details"], ensure_ascii=False) if item["details"] is not None else ""
            writer.writerow([item[c] if item[c] is not None else "" for c in EXPORT_COLUMNS])
            if buffer.tell() > 64_000:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()
