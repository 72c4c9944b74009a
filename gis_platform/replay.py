"""Replaying and rechecking stored checks.

- A **replay** recomputes a stored check with exactly what it recorded: the layer versions (pinned), the catalogue
  and rule set (loaded from their snapshots by fingerprint), the overlay method and the parcel exactly as sent, in
  a read-only transaction. It answers whether the result is identical (:mod:`gis_platform.check_diff`) and, when
  not, every field that differs. It stores nothing; it is audited (``check.replay``).
- A **recheck** runs the same parcel and options against today's current versions, catalogue and rules, stores a
  new check that carries ``rechecked_from`` (the old row is never updated) and reports what changed. Rechecks are
  left out of the checks-per-month statistics; its audit entry (``check.recheck``) is written with it.

Checks stored before replays existed (no recorded method or request), or computed with another overlay method,
answer ``earlier_method`` instead of a diff that would only show the method's change.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
import shapely
from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from . import audit
from .analysis.overlay import OVERLAY_METHOD
from .analysis.parcel import Parcel, parse_crs, prepare_parcel
from .audit import Actor, AuditEntry
from .catalog import Catalog
from .check_diff import MAX_DIFFERENCES, differences, summarize_changes
from .checks import CheckRequest, compute_check, document_json, run_check
from .config_snapshots import load_snapshot
from .errors import NotFoundError, PlatformError, UnknownLandUseError
from .rules import RuleSet
from .settings import Settings
from .survey_plane import SurveyPlane

IDENTICAL, DIFFERENT, EARLIER_METHOD = "identical", "different", "earlier_method"
#: The parcel was accepted once; a lower vertex limit set since must not stop its replay
REPLAY_MAX_VERTICES = 10**9


class ReplayUnavailableError(PlatformError):
    """A check cannot be recomputed: a layer version it read no longer exists, or it kept no parcel to re-run."""

    code = "replay_unavailable"


@dataclass(frozen=True)
class StoredCheck:
    id: uuid.UUID
    created_at: dt.datetime
    created_by: str
    source: str
    result: dict[str, Any]
    request: dict[str, Any] | None
    method: str | None
    rechecked_from: uuid.UUID | None

    @property
    def summary(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "created_at": self.created_at.isoformat(),
            "verdict": self.result.get("verdict"),
            "source": self.source,
        }


def stored_check(engine: Engine, check_id: str) -> StoredCheck:
    """The stored check with its replay record; :class:`NotFoundError` naming an unknown id."""
    try:
        key = uuid.UUID(str(check_id))
    except ValueError as exc:
        raise NotFoundError(f"没有该检查记录 / no check with id {check_id!r} (not a valid check id)") from exc
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT id, created_at, created_by, source, result, request, method, rechecked_from"
                " FROM check_record WHERE id = :id"
            ),
            {"id": key},
        ).one_or_none()
    if row is None:
        raise NotFoundError(f"没有该检查记录 / no check with id {check_id}")
    return StoredCheck(*row)


def rebuild_parcel(recorded: dict[str, Any], plane: SurveyPlane) -> Parcel:
    """The parcel of a recorded request, prepared again from its coordinates exactly as sent."""
    sent = recorded["parcel"]
    parcel = prepare_parcel(
        shapely.from_wkb(sent["wkb"]),
        parse_crs(sent["crs"]),
        plane=plane,
        max_vertices=REPLAY_MAX_VERTICES,
        properties=recorded.get("properties") or {},
    )
    parcel.label = recorded.get("label")
    return parcel


def _request(stored: StoredCheck, parcel: Parcel, **extra: Any) -> CheckRequest:
    recorded = stored.request or {}
    return CheckRequest(
        parcel=parcel,
        layers=tuple(recorded["layers"]) if recorded.get("layers") else None,
        land_use_code=recorded.get("land_use"),
        land_use_source=recorded.get("land_use_source"),
        buffer_m=float(recorded.get("buffer_m") or 0.0),
        area_model=recorded.get("area_model") or "ellipsoidal",
        project_name=recorded.get("project_name"),
        project_number=recorded.get("project_number"),
        **extra,
    )


def _missing_versions(conn: Connection, pinned: dict[str, int]) -> list[str]:
    found = {
        (code, vid)
        for code, vid in conn.execute(
            text("SELECT l.code, v.id FROM layer_version v JOIN layer l ON l.id = v.layer_id WHERE v.id = ANY(:ids)"),
            {"ids": list(pinned.values())},
        )
    }
    return [f"{code} 版本 id {vid}" for code, vid in sorted(pinned.items()) if (code, vid) not in found]


def _earlier_method(stored: StoredCheck) -> dict[str, Any]:
    recorded = stored.method or "未记录 not recorded"
    if stored.request is None:
        message = (
            "该检查由早期方法计算，未保存重放所需的原始地块与参数，无法复核；请重新提交地块检查"
            f" / computed with an earlier method ({recorded}) that kept no parcel as sent: it cannot be replayed;"
            " check the parcel again"
        )
    else:
        message = (
            f"该检查由早期方法（{recorded}）计算，现行方法为 {OVERLAY_METHOD}，无法按原方法复核；可重新核验"
            f" / computed with an earlier method ({recorded}, now {OVERLAY_METHOD}): it cannot be replayed;"
            " recheck it against today's data"
        )
    return {"status": EARLIER_METHOD, "identical": None, "message": message}


def replay_check(
    engine: Engine, catalog: Catalog, rules: RuleSet, settings: Settings, check_id: str, *, actor: Actor
) -> dict[str, Any]:
    """Recompute a stored check exactly as recorded and compare; stores nothing but its audit entry."""
    stored = stored_check(engine, check_id)
    document = stored.result
    base = {
        "check_id": str(stored.id),
        "check": stored.summary,
        "method": stored.method,
        "current_method": OVERLAY_METHOD,
    }
    if stored.method != OVERLAY_METHOD or stored.request is None:
        answer = {**base, **_earlier_method(stored)}
        _audit(engine, actor, "check.replay", stored, {"status": EARLIER_METHOD})
        return answer
    pinned = {str(code): int(vid) for code, vid in document["data_versions"].items()}
    used_catalog, used_rules = load_snapshot(
        engine, document["catalog_fingerprint"], document["rules_fingerprint"], (catalog, rules)
    )
    parcel = rebuild_parcel(stored.request, used_catalog.survey_plane)
    request = _request(stored, parcel, rechecked_from=stored.rechecked_from)
    # read only: a replay cannot write, and everything it computed is rolled back
    with engine.connect().execution_options(postgresql_readonly=True) as conn:
        missing = _missing_versions(conn, pinned)
        if missing:
            raise ReplayUnavailableError(
                f"该检查所用的图层版本已不存在：{'、'.join(missing)} / layer versions this check read no longer"
                f" exist: {', '.join(missing)}",
                missing_versions=missing,
            )
        recomputed = compute_check(conn, used_catalog, used_rules, settings, request, pinned=pinned)
        conn.rollback()
    recomputed = orjson.loads(document_json(recomputed))  # as it would be stored
    found = differences(document, recomputed)
    status = IDENTICAL if not found else DIFFERENT
    answer = {
        **base,
        "status": status,
        "identical": not found,
        "message": (
            "复核一致：按原数据版本、目录、规则与原始地块重算，结果与原检查完全一致"
            " / identical: recomputed with the recorded layer versions, catalogue, rules and parcel"
            if not found
            else f"复核不一致：{len(found)} 处不同 / not identical: {len(found)} fields differ"
        ),
        "catalog_fingerprint": document["catalog_fingerprint"],
        "rules_fingerprint": document["rules_fingerprint"],
        "data_versions": pinned,
        "differences": found[:MAX_DIFFERENCES],
        "differences_total": len(found),
        "changes": summarize_changes(document, recomputed),
    }
    _audit(engine, actor, "check.replay", stored, {"status": status, "differences": len(found)})
    return answer


def recheck_check(
    engine: Engine,
    catalog: Catalog,
    rules: RuleSet,
    settings: Settings,
    check_id: str,
    *,
    actor: Actor,
    created_by: str,
) -> dict[str, Any]:
    """Run a stored check's parcel and options against today's versions, catalogue and rules; store the new
    check linked to the old one (with its audit entry) and report what changed."""
    stored = stored_check(engine, check_id)
    if stored.request is None:
        raise ReplayUnavailableError(_earlier_method(stored)["message"], check_id=str(stored.id))
    land_use = stored.request.get("land_use")
    if land_use:
        try:
            catalog.land_use(land_use)
        except UnknownLandUseError as exc:
            raise UnknownLandUseError(
                f"该检查的拟用途 {land_use} 已不在现行用地用海分类中 / the check's proposed land use {land_use!r}"
                " is no longer in today's land-use classification",
                code=land_use,
            ) from exc
    parcel = rebuild_parcel(stored.request, catalog.survey_plane)
    request = _request(stored, parcel, created_by=created_by, source="recheck", actor=actor, rechecked_from=stored.id)
    document = run_check(engine, catalog, rules, settings, request)
    return {"check": document, "original": stored.summary, "changes": summarize_changes(stored.result, document)}


def _audit(engine: Engine, actor: Actor, action: str, stored: StoredCheck, details: dict[str, Any]) -> None:
    audit.record_now(engine, AuditEntry(actor, action, f"check:{stored.id}", details=details))
