"""Keeping every stored layer version in the county's survey plane.

An import writes ``feature.geom_plane`` from the file's own coordinates. Versions stored before the survey
plane existed (migration 0008), or in another plane before the catalogue's ``survey_plane`` changed, are
brought into the plane here from their EPSG:4490 geometry (``ST_Transform``, vertex by vertex), one version
per transaction; ``gis-platform db upgrade`` runs it after the migrations. The overlay refuses a version that
is not in the catalogue's plane (:func:`require_plane`), naming this command.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from .errors import ConfigurationError
from .survey_plane import SurveyPlane

__all__ = ["PlaneUpdate", "check_versions_in_plane", "ensure_survey_plane", "require_plane"]

_PARENT_INDEX = "CREATE INDEX IF NOT EXISTS ix_feature_geom_plane ON feature USING gist (geom_plane)"


@dataclass(frozen=True)
class PlaneUpdate:
    """One version brought into the plane."""

    version_id: int
    layer_code: str
    features: int
    seconds: float


def ensure_survey_plane(engine: Engine, plane: SurveyPlane) -> list[PlaneUpdate]:
    """Bring every stored version into ``plane``; return what was done (nothing when all are there)."""
    with engine.connect() as conn:
        pending = conn.execute(
            text(
                "SELECT v.id, l.code FROM layer_version v JOIN layer l ON l.id = v.layer_id"
                " WHERE v.plane_srid IS DISTINCT FROM :srid ORDER BY v.id"
            ),
            {"srid": plane.epsg},
        ).all()
    done = []
    for version_id, code in pending:
        started = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(text("SELECT 1 FROM layer_version WHERE id = :v FOR UPDATE"), {"v": version_id})
            table = _partition(conn, version_id)
            count = 0
            if table is not None:
                count = conn.execute(
                    text(f"UPDATE {table} SET geom_plane = ST_Transform(geom, {int(plane.epsg)})")
                ).rowcount
            conn.execute(
                text("UPDATE layer_version SET plane_srid = :s WHERE id = :v"), {"s": plane.epsg, "v": version_id}
            )
        done.append(PlaneUpdate(int(version_id), str(code), int(count), time.perf_counter() - started))
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
        conn.execute(text(_PARENT_INDEX))  # builds the partitions' indexes that are missing
    return done


def _partition(conn: Connection, version_id: int) -> str | None:
    name = f"feature_v{int(version_id)}"
    exists = conn.execute(text("SELECT to_regclass(:n) IS NOT NULL"), {"n": name}).scalar_one()
    return name if exists else None


def require_plane(versions: Iterable[tuple[str, int, int | None]], plane: SurveyPlane) -> None:
    """Refuse to overlay versions ``(layer code, version id, plane srid)`` not stored in ``plane``."""
    stale = [f"{code} (version id {vid})" for code, vid, srid in versions if srid != plane.epsg]
    if stale:
        raise ConfigurationError(
            f"layer versions {', '.join(stale)} are not stored in the survey plane {plane.label}: run"
            " `gis-platform db upgrade` to bring them into it",
            layers=stale,
        )


def check_versions_in_plane(conn: Connection, version_ids: Iterable[int], plane: SurveyPlane) -> None:
    """:func:`require_plane` for versions named by id (read their layer codes and planes first)."""
    rows = conn.execute(
        text(
            "SELECT l.code, v.id, v.plane_srid FROM layer_version v JOIN layer l ON l.id = v.layer_id"
            " WHERE v.id = ANY(:ids)"
        ),
        {"ids": [int(v) for v in version_ids]},
    ).all()
    require_plane(((r[0], r[1], r[2]) for r in rows), plane)
