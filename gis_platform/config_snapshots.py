"""Catalogue and rule-set texts kept by fingerprint, so an old check's replay loads the rules it was judged by.

A check records :attr:`Catalog.fingerprint` and :attr:`RuleSet.fingerprint`. The files behind them are kept in
``config_snapshot`` (kind ``catalog``: catalog.yaml, landuse.yaml and land_survey_codes.yaml; kind ``rules``:
rules.yaml), one row per fingerprint, written once and never changed: migration 0010 stores the files of its
day, and every process stores the catalogue and rules it runs with before its first check (insert-if-missing,
one query per process). :func:`load_snapshot` rebuilds a catalogue and rule set from their rows, checks that
they have the recorded fingerprints, and keeps them by fingerprint for the life of the process.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from .catalog import CATALOG_FILES, Catalog, catalog_fingerprint, load_catalog
from .errors import ConfigurationError, PlatformError
from .rules import RULES_FILE, RuleSet, load_rules, rules_fingerprint

log = logging.getLogger(__name__)

CATALOG = "catalog"
RULES = "rules"


class SnapshotMissingError(PlatformError):
    """A check names a catalogue or rule set whose files the platform does not hold."""

    code = "snapshot_missing"


@dataclass(frozen=True)
class Snapshot:
    """The files of one catalogue or rule set (name → UTF-8 text), with their fingerprint."""

    kind: str
    fingerprint: str
    files: dict[str, str]


def _read(directory: Path, names: tuple[str, ...]) -> dict[str, bytes]:
    return {name: (directory / name).read_bytes() for name in names}


def read_snapshots(catalog_dir: Path, rules_dir: Path | None = None) -> tuple[Snapshot, Snapshot]:
    """The catalogue files in ``catalog_dir`` and rules.yaml in ``rules_dir`` (default the same) as snapshots.

    The fingerprints are computed exactly as :func:`~gis_platform.catalog.load_catalog` and
    :func:`~gis_platform.rules.load_rules` compute them. Raises ``OSError`` or ``UnicodeDecodeError`` for a
    missing or non-UTF-8 file.
    """
    catalog_bytes = _read(catalog_dir, CATALOG_FILES)
    rules_bytes = _read(rules_dir or catalog_dir, (RULES_FILE,))
    return (
        Snapshot(CATALOG, catalog_fingerprint(catalog_bytes), {k: v.decode("utf-8") for k, v in catalog_bytes.items()}),
        Snapshot(RULES, rules_fingerprint(rules_bytes[RULES_FILE]), {RULES_FILE: rules_bytes[RULES_FILE].decode()}),
    )


def store_snapshots(conn: Connection, snapshots: tuple[Snapshot, ...]) -> int:
    """Store each snapshot unless its fingerprint is already kept; the number of rows written."""
    written = 0
    for snapshot in snapshots:
        written += conn.execute(
            text(
                "INSERT INTO config_snapshot (kind, fingerprint, files) VALUES (:kind, :fp, CAST(:files AS jsonb))"
                " ON CONFLICT (kind, fingerprint) DO NOTHING"
            ),
            {"kind": snapshot.kind, "fp": snapshot.fingerprint, "files": orjson.dumps(snapshot.files).decode()},
        ).rowcount
    return written


#: (database URL, catalogue fingerprint, rules fingerprint) whose snapshots this process knows to be stored
_stored: set[tuple[Any, str, str]] = set()
_stored_lock = threading.Lock()


def ensure_running_snapshot(engine: Engine, catalog: Catalog, rules: RuleSet) -> None:
    """Store the files of the catalogue and rules this process runs with, if the database lacks them.

    One query per process and database; the files are read only when a row is missing, and stored only when they
    still have the running fingerprints (files edited on disk since the start are not what the checks use: a
    warning is logged and replays of those checks will name the missing snapshot).
    """
    key = (engine.url, catalog.fingerprint, rules.fingerprint)
    if key in _stored:
        return
    with _stored_lock, engine.begin() as conn:
        if key in _stored:
            return
        present = {
            (r.kind, r.fingerprint)
            for r in conn.execute(
                text(
                    "SELECT kind, fingerprint FROM config_snapshot WHERE (kind = 'catalog' AND fingerprint = :c)"
                    " OR (kind = 'rules' AND fingerprint = :r)"
                ),
                {"c": catalog.fingerprint, "r": rules.fingerprint},
            )
        }
        if len(present) < 2:
            try:
                snapshots = read_snapshots(catalog.directory, rules.path.parent)
            except (OSError, UnicodeDecodeError) as exc:
                log.warning("catalogue and rules snapshot not stored: %s", exc)
                return
            if (snapshots[0].fingerprint, snapshots[1].fingerprint) != (catalog.fingerprint, rules.fingerprint):
                log.warning("catalogue and rules snapshot not stored: the files changed on disk since they were loaded")
                _stored.add(key)  # do not read them again for every check
                return
            store_snapshots(conn, snapshots)
    _stored.add(key)


def _files(conn: Connection, kind: str, fingerprint: str) -> dict[str, str] | None:
    found = conn.execute(
        text("SELECT files FROM config_snapshot WHERE kind = :kind AND fingerprint = :fp"),
        {"kind": kind, "fp": fingerprint},
    ).scalar_one_or_none()
    return dict(found) if found is not None else None


_loaded: OrderedDict[tuple[str, str], tuple[Catalog, RuleSet]] = OrderedDict()
_loaded_lock = threading.Lock()
MAX_LOADED = 16


def load_snapshot(
    engine: Engine, catalog_fp: str, rules_fp: str, running: tuple[Catalog, RuleSet]
) -> tuple[Catalog, RuleSet]:
    """The catalogue and rule set with these fingerprints: the running ones when they match, else rebuilt from
    their snapshots (validated as at start-up) and kept by fingerprint.

    Raises :class:`SnapshotMissingError` naming a fingerprint the platform holds no files for.
    """
    if (running[0].fingerprint, running[1].fingerprint) == (catalog_fp, rules_fp):
        return running
    key = (catalog_fp, rules_fp)
    with _loaded_lock:
        if key in _loaded:
            _loaded.move_to_end(key)
            return _loaded[key]
    with engine.connect() as conn:
        catalog_files, rules_files = _files(conn, CATALOG, catalog_fp), _files(conn, RULES, rules_fp)
    missing = [f"{kind} {fp[:12]}…" for kind, fp, files in (("目录 catalogue", catalog_fp, catalog_files),
               ("规则 rules", rules_fp, rules_files)) if files is None]  # fmt: skip
    if missing:
        raise SnapshotMissingError(
            f"未保存该检查所用的图层目录或规则文件 / the platform holds no copy of the {' and '.join(missing)}"
            " this check was computed with",
            missing=missing,
        )
    assert catalog_files is not None and rules_files is not None
    loaded = _build(catalog_files, rules_files)
    if (loaded[0].fingerprint, loaded[1].fingerprint) != key:
        raise ConfigurationError(
            f"保存的图层目录或规则文件已损坏 / the kept copy of catalogue {catalog_fp[:12]}… or rules {rules_fp[:12]}…"
            " no longer has its fingerprint"
        )
    with _loaded_lock:
        _loaded[key] = loaded
        while len(_loaded) > MAX_LOADED:
            _loaded.popitem(last=False)
    return loaded


def _build(catalog_files: dict[str, str], rules_files: dict[str, str]) -> tuple[Catalog, RuleSet]:
    """Load the files through the ordinary loaders, from a private temporary folder removed right after."""
    folder = Path(tempfile.mkdtemp(prefix="gis-snapshot-"))
    try:
        for name, content in {**catalog_files, **rules_files}.items():
            if "/" in name or "\\" in name or name.startswith("."):
                raise ConfigurationError(f"保存的文件名无效 / a kept file has an unusable name {name!r}")
            (folder / name).write_bytes(content.encode("utf-8"))
        catalog = load_catalog(folder)
        return catalog, load_rules(folder, catalog)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
