"""Which features of a polygon layer version may overlap another, found while the version is written.

A check's overlap with a layer is the area of the union of its pieces, never their sum, because red-line
features may overlap each other. The union is the dearest step of a check (~0.6 ms of its ~2.5 ms overlay on the
benchmark county), and in a well-kept layer (farmland patches, a coverage of 三调 patches) no two features
overlap, so their pieces never do and the union is their sum. GEOS coverage validation (shapely) names every
polygon whose edges do not match its neighbours' — every polygon that overlaps another is among them — in
~1.3 s for 130,315 patches. It runs in a thread on the plane geometries the import already holds, while
PostgreSQL loads and indexes the version; the version records the source numbers of the features it named
(``layer_version.overlap_fids``: empty when none, NULL when unknown), and an overlay unions only the pieces of a
layer when one of them comes from a named feature.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import numpy as np
import shapely

from .store import RowBatch

__all__ = ["MAX_NAMED", "CoverageWatch"]

log = logging.getLogger(__name__)

#: More named features than this and the version records "unknown" (an overlay then always unions).
MAX_NAMED = 50_000


class CoverageWatch:
    """Collects a polygon version's plane geometries as they stream past, then validates them in a thread."""

    def __init__(self, geometry_type: str) -> None:
        self._active = geometry_type == "polygon"
        self._planes: list[np.ndarray] = []
        self._fids: list[np.ndarray] = []
        self._thread: threading.Thread | None = None
        self._named: list[int] | None = None

    def watched(self, batches: Iterator[RowBatch]) -> Iterator[RowBatch]:
        """``batches`` unchanged; after the last one the validation starts in a thread of its own."""
        for batch in batches:
            if self._active:
                self._planes.append(batch.plane)
                self._fids.append(batch.source_fids)
            yield batch
        if self._active:
            self._thread = threading.Thread(target=self._validate, name="coverage-validation", daemon=True)
            self._thread.start()

    def _validate(self) -> None:
        try:
            planes = np.concatenate(self._planes) if self._planes else np.empty(0, dtype=object)
            fids = np.concatenate(self._fids) if self._fids else np.empty(0, dtype=np.int64)
            self._planes, self._fids = [], []
            edges = shapely.coverage_invalid_edges(planes)
            named = fids[~shapely.is_empty(edges)]
            self._named = [int(f) for f in named] if named.size <= MAX_NAMED else None
        except Exception:  # a geometry GEOS cannot validate: unknown, and every overlay unions (always right)
            log.exception("coverage validation failed; overlays of this version will union their pieces")
            self._named = None

    def named(self) -> list[int] | None:
        """The source numbers of the features that may overlap another (None: not known)."""
        if self._thread is None:
            return None
        self._thread.join()
        return self._named
